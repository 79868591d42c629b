package apicompat

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/relcheck/relcheck/config"
)

// Config is the api section of relcheck.yaml.
type Config struct {
	// Packages are the package patterns that form the public API.
	Packages []string `yaml:"packages"`
	// Report is the optional API report file, relative to the module.
	Report      string      `yaml:"report"`
	Deprecation Deprecation `yaml:"deprecation"`
	// Experimental are package patterns exempt from the gate: reported,
	// never failing.
	Experimental []string `yaml:"experimental"`
	Ignore       []Ignore `yaml:"ignore"`
	// CompatTests runs the base release's external tests and Examples
	// against the head's packages (compat.go); CompatTimeout bounds each
	// side's run (default 5m); CompatIgnore lists tests whose failure at
	// head is accepted, each with a reason.
	CompatTests   bool            `yaml:"compatTests"`
	CompatTimeout config.Duration `yaml:"compatTimeout"`
	CompatIgnore  []CompatIgnore  `yaml:"compatIgnore"`
	// OpenAPI lists OpenAPI documents (relative to the module) whose HTTP
	// API is compared like the Go API (openapi.go).
	OpenAPI []string `yaml:"openapi"`
}

// CompatIgnore accepts that a test of the base release fails at head:
// Test is "TestName" (in any package) or "import/path.TestName".
type CompatIgnore struct {
	Test   string `yaml:"test"`
	Reason string `yaml:"reason"`
}

// DefaultCompatTimeout bounds each side's run of the compat tests.
const DefaultCompatTimeout = 5 * time.Minute

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

// DefaultConfig is the api section when relcheck.yaml does not set it.
func DefaultConfig() Config {
	return Config{Packages: []string{"./..."}, Deprecation: Deprecation{MinReleases: 1}, CompatTimeout: config.Duration(DefaultCompatTimeout)}
}

// ruleID is the shape of every rule id: gate/kebab-name.
var ruleID = regexp.MustCompile(`^[a-z]+/[a-z0-9]+(-[a-z0-9]+)*$`)

// compatTestName is the shape of a top-level test or example function.
var compatTestName = regexp.MustCompile(`^(Test|Example|Fuzz)[A-Za-z0-9_]*$`)

// Validate checks values whose type is right but whose meaning is not. Its
// error is a *config.Error whose Key is relative to the section
// ("deprecation.minDays", "ignore[0]"), with the line of an ignore entry.
func (c Config) Validate() error {
	bad := func(line int, key, format string, args ...any) error {
		return &config.Error{Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if c.Deprecation.MinReleases < 0 || c.Deprecation.MinReleases > 1000 {
		return bad(0, "deprecation.minReleases", "must be between 0 and 1000")
	}
	if c.Deprecation.MinDays < 0 || c.Deprecation.MinDays > 36500 {
		return bad(0, "deprecation.minDays", "must be between 0 and 36500")
	}
	for _, p := range c.Packages {
		if strings.TrimSpace(p) == "" {
			return bad(0, "packages", "empty package pattern")
		}
	}
	if r := c.Report; r != "" {
		if filepath.IsAbs(r) || strings.HasPrefix(filepath.ToSlash(filepath.Clean(r)), "../") {
			return bad(0, "report", "%q must be a path inside the project", r)
		}
	}
	if d := time.Duration(c.CompatTimeout); d != 0 && (d < time.Second || d > 2*time.Hour) {
		return bad(0, "compatTimeout", "must be between 1s and 2h")
	}
	for i, doc := range c.OpenAPI {
		if doc == "" || filepath.IsAbs(doc) || strings.HasPrefix(filepath.ToSlash(filepath.Clean(doc)), "../") {
			return bad(0, fmt.Sprintf("openapi[%d]", i), "%q must be a path inside the module, like api/openapi.yaml", doc)
		}
	}
	for i, ci := range c.CompatIgnore {
		key := fmt.Sprintf("compatIgnore[%d]", i)
		name := ci.Test[strings.LastIndex(ci.Test, ".")+1:]
		switch {
		case strings.TrimSpace(ci.Test) == "":
			return bad(0, key, "test is required: the name of a test or example of the base release, like TestParse or example.com/lib.ExampleParse")
		case !compatTestName.MatchString(name):
			return bad(0, key+".test", "test %q is not a test or example name like TestParse or example.com/lib.ExampleParse", ci.Test)
		case strings.TrimSpace(ci.Reason) == "":
			return bad(0, key, "reason is required: say why this test of the base release may fail at head")
		}
	}
	for i, ig := range c.Ignore {
		key := fmt.Sprintf("ignore[%d]", i)
		switch {
		case ig.Rule == "":
			return bad(ig.Line, key, "rule is required (e.g. api/incompatible)")
		case !ruleID.MatchString(ig.Rule):
			return bad(ig.Line, key, "rule %q is not a rule id of the form gate/kebab-name", ig.Rule)
		case strings.TrimSpace(ig.Reason) == "":
			return bad(ig.Line, key, "reason is required: say why this finding may be ignored")
		case strings.HasPrefix(ig.Rule, "api/") && !slices.Contains(Rules, ig.Rule):
			return bad(ig.Line, key, "%s", unknownRule(ig.Rule, "api", Rules))
		case ig.Symbol != "" && !strings.Contains(ig.Symbol, "."):
			return bad(ig.Line, key, "symbol %q must be fully qualified, like example.com/lib.%s", ig.Symbol, ig.Symbol)
		}
		if ig.Until != "" {
			if _, err := config.ParseUntil(ig.Until); err != nil {
				return bad(ig.Line, key, "%v", err)
			}
		}
	}
	return nil
}

// unknownRule says that rule is none of a gate's rules, suggesting the
// closest or listing them.
func unknownRule(rule, gate string, rules []string) string {
	msg := fmt.Sprintf("unknown rule %q", rule)
	if s := config.Suggest(rule, rules); s != "" {
		return msg + fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg + " (" + gate + " rules: " + strings.Join(rules, ", ") + ")"
}
