package apicompat

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

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

// DefaultConfig is the api section when relcheck.yaml does not set it.
func DefaultConfig() Config {
	return Config{Packages: []string{"./..."}, Deprecation: Deprecation{MinReleases: 1}}
}

// ruleID is the shape of every rule id: gate/kebab-name.
var ruleID = regexp.MustCompile(`^[a-z]+/[a-z0-9]+(-[a-z0-9]+)*$`)

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
