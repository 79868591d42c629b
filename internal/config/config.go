// Package config reads relcheck.yaml: the per-repository settings of every
// gate. Every key is optional; unknown keys and bad values are errors that name
// the key and its line, so a typo never silently disables a check.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FileName is the configuration file looked up at the repository root.
const FileName = "relcheck.yaml"

// Config is the whole of relcheck.yaml.
type Config struct {
	API        API        `yaml:"api"`
	Migrations Migrations `yaml:"migrations"`
	SLO        SLO        `yaml:"slo"`
	Perf       Perf       `yaml:"perf"`
	Channels   Channels   `yaml:"channels"`
}

// API configures the api gate.
type API struct {
	Packages     []string    `yaml:"packages"`
	Report       string      `yaml:"report"`
	Deprecation  Deprecation `yaml:"deprecation"`
	Experimental []string    `yaml:"experimental"`
	Ignore       []Ignore    `yaml:"ignore"`
}

// Deprecation is the window a deprecated identifier must survive before removal.
type Deprecation struct {
	MinReleases int `yaml:"minReleases"`
	MinDays     int `yaml:"minDays"`
}

// Ignore suppresses findings of one rule for one symbol, for a reason, possibly
// until a version or a date.
type Ignore struct {
	Rule   string `yaml:"rule"`
	Symbol string `yaml:"symbol"`
	Reason string `yaml:"reason"`
	// Until is a version (v1.6.0: expires once the next version reaches it)
	// or a date (2026-12-31: expires on that day). Empty: never expires.
	Until string `yaml:"until"`
	// Line is where the entry stands in the file, for messages.
	Line int `yaml:"-"`
}

// Migrations configures the migrations gate.
type Migrations struct {
	Dir         string           `yaml:"dir"`
	Dialect     string           `yaml:"dialect"`
	DatabaseURL string           `yaml:"databaseURL"`
	Deprecated  []string         `yaml:"deprecated"`
	Sizes       map[string]int64 `yaml:"sizes"`
	BudgetShare float64          `yaml:"budgetShare"`
	// ProbeSizes are the row counts the touched tables are seeded with to
	// measure blocking (PostgreSQL); empty turns the measurement off.
	ProbeSizes []int64 `yaml:"probeSizes"`
	// MeasureEverySize turns off the early stop: every probe size is
	// measured, and the report says how well the smaller sizes predicted
	// the largest.
	MeasureEverySize bool `yaml:"measureEverySize"`
	// Reversible: every new migration needs a down file, and up → down →
	// up must give back the same schema. False for up-only projects.
	Reversible bool `yaml:"reversible"`
	// Ignore suppresses findings of a rule in a file, for a reason.
	Ignore []MigrationIgnore `yaml:"ignore"`
}

// MigrationIgnore suppresses the findings of one rule in migration files
// (a path relative to the project, a base name, or a glob), for a reason,
// possibly until a version or a date.
type MigrationIgnore struct {
	Rule   string `yaml:"rule"`
	File   string `yaml:"file"`
	Reason string `yaml:"reason"`
	Until  string `yaml:"until"`
	// Line is where the entry stands in the file, for messages.
	Line int `yaml:"-"`
}

// SLO is the service level objective operators are assumed to hold.
type SLO struct {
	Objective       float64  `yaml:"objective"`
	Window          Duration `yaml:"window"`
	BudgetRemaining float64  `yaml:"budgetRemaining"`
}

// Perf configures the perf gate.
type Perf struct {
	Benchmarks Benchmarks  `yaml:"benchmarks"`
	Scenarios  []yaml.Node `yaml:"scenarios"` // shape defined by the perf gate
}

// Benchmarks configures the go test -bench part of the perf gate.
type Benchmarks struct {
	Packages  []string `yaml:"packages"`
	Pattern   string   `yaml:"pattern"`
	Rounds    int      `yaml:"rounds"`
	Threshold Percent  `yaml:"threshold"`
	// Benchtime is -test.benchtime of each run ("100ms", or "1000x").
	Benchtime string `yaml:"benchtime"`
	// Alpha is the one-sided significance level of a regression.
	Alpha float64 `yaml:"alpha"`
}

// Channels configures where releases are published.
type Channels struct {
	Repo string `yaml:"repo"`
	Key  string `yaml:"key"`
}

// Default returns the configuration used when relcheck.yaml is absent; Load
// starts from it, so absent keys keep these values.
func Default() *Config {
	return &Config{
		API: API{
			Packages:    []string{"./..."},
			Deprecation: Deprecation{MinReleases: 1},
		},
		Migrations: Migrations{Dir: "migrations", Dialect: "postgres", BudgetShare: 0.1, ProbeSizes: []int64{10000, 100000, 1000000}, Reversible: true},
		SLO:        SLO{Objective: 99.9, Window: Duration(30 * 24 * time.Hour), BudgetRemaining: 1},
		Perf: Perf{Benchmarks: Benchmarks{
			Packages: []string{"./..."}, Pattern: ".", Rounds: 10, Threshold: 5, Benchtime: "100ms", Alpha: 0.01,
		}},
		Channels: Channels{Key: "cosign.key"},
	}
}

// Error is a problem with the configuration file: exit code 2.
type Error struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted path, e.g. "api.deprecation.minDays"
	Msg  string
}

// ExitCode is 2: a configuration error is the user's to fix (report's
// ExitUsage).
func (e *Error) ExitCode() int { return 2 }

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		fmt.Fprintf(&b, "%s: ", e.Key)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads path. A missing file is not an error when optional is true: the
// defaults are returned.
func Load(path string, optional bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if optional && errors.Is(err, fs.ErrNotExist) {
			return Default(), nil
		}
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read: %v", err)}
	}
	return Parse(filepath.Base(path), data)
}

// LoadFor loads the configuration of the project in dir: file when given
// (it must exist), else relcheck.yaml in dir if there is one. It returns the
// path it read (or would have read).
func LoadFor(dir, file string) (*Config, string, error) {
	if file != "" {
		c, err := Load(file, false)
		return c, file, err
	}
	path := filepath.Join(dir, FileName)
	c, err := Load(path, true)
	return c, path, err
}

// Parse parses the contents of a relcheck.yaml; name is used in messages.
func Parse(name string, data []byte) (*Config, error) {
	cfg := Default()
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return cfg, nil
		}
		return nil, yamlError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: name, Line: extra.Line, Msg: "more than one YAML document; relcheck.yaml holds one"}
	}
	if len(doc.Content) == 0 {
		return cfg, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return cfg, nil
	}
	if err := checkKeys(name, root, reflect.TypeOf(Config{}), ""); err != nil {
		return nil, err
	}
	if err := root.Decode(cfg); err != nil {
		return nil, yamlError(name, err)
	}
	// Default lists are replaced, not merged, by what the file says; record
	// where ignore entries stand.
	if n := lookup(root, "api", "ignore"); n != nil && n.Kind == yaml.SequenceNode {
		for i, item := range n.Content {
			if i < len(cfg.API.Ignore) {
				cfg.API.Ignore[i].Line = item.Line
			}
		}
	}
	if n := lookup(root, "migrations", "ignore"); n != nil && n.Kind == yaml.SequenceNode {
		for i, item := range n.Content {
			if i < len(cfg.Migrations.Ignore) {
				cfg.Migrations.Ignore[i].Line = item.Line
			}
		}
	}
	if err := validate(name, root, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// yamlError turns a yaml.v3 error ("yaml: line 3: …") into an *Error.
func yamlError(name string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return parseYAMLMsg(name, te.Errors[0])
	}
	return parseYAMLMsg(name, err.Error())
}

func parseYAMLMsg(name, msg string) *Error {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if strings.Contains(msg, "found character that cannot start any token") {
		msg += " (tabs cannot indent YAML: use spaces)"
	}
	e := &Error{File: name, Msg: msg}
	if strings.HasPrefix(msg, "line ") {
		rest := msg[len("line "):]
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				e.Line = n
				e.Msg = strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return e
}

// checkKeys walks a mapping node against the yaml tags of t and reports the
// first key that t does not have, or a value of the wrong shape.
func checkKeys(file string, n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(yaml.Node{}) {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return &Error{File: file, Line: n.Line, Key: path, Msg: fmt.Sprintf("expected a mapping of keys, got %s", kindName(n))}
		}
		fields := map[string]reflect.StructField{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			fields[tag] = f
			names = append(names, tag)
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := join(path, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				msg := fmt.Sprintf("unknown key %q", k.Value)
				if s := Suggest(k.Value, names); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				} else {
					msg += fmt.Sprintf(" (known keys: %s)", strings.Join(names, ", "))
				}
				return &Error{File: file, Line: k.Line, Key: key, Msg: msg}
			}
			if seen[k.Value] {
				return &Error{File: file, Line: k.Line, Key: key, Msg: "key given twice"}
			}
			seen[k.Value] = true
			if err := checkKeys(file, v, f.Type, key); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return &Error{File: file, Line: n.Line, Key: path, Msg: fmt.Sprintf("expected a list, got %s", kindName(n))}
		}
		for i, item := range n.Content {
			if err := checkKeys(file, item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return &Error{File: file, Line: n.Line, Key: path, Msg: fmt.Sprintf("expected a mapping, got %s", kindName(n))}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkKeys(file, n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	default:
		if n.Kind != yaml.ScalarNode {
			return &Error{File: file, Line: n.Line, Key: path, Msg: fmt.Sprintf("expected a single value, got %s", kindName(n))}
		}
		var probe = reflect.New(t)
		if err := n.Decode(probe.Interface()); err != nil {
			msg := fmt.Sprintf("%q is not a valid %s", n.Value, typeName(t))
			if _, ok := probe.Interface().(yaml.Unmarshaler); ok {
				msg = err.Error()
			}
			return &Error{File: file, Line: n.Line, Key: path, Msg: msg}
		}
	}
	return nil
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "whole number"
	case reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean (true or false)"
	case reflect.String:
		return "string"
	}
	return t.String()
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// lookup finds the value node at a path of mapping keys.
func lookup(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// lineOf returns the line of the value at a dotted key path, or 0.
func lineOf(root *yaml.Node, path string) int {
	if n := lookup(root, strings.Split(path, ".")...); n != nil {
		return n.Line
	}
	return 0
}

// Suggest returns the known name closest to s, if it is close enough to be
// a typo; empty otherwise.
func Suggest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := distance(strings.ToLower(s), strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
