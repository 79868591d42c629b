package migrations

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/relcheck/relcheck/config"
)

// Config is the migrations section of relcheck.yaml.
type Config struct {
	// Dir holds golang-migrate files NNN_name.up.sql / NNN_name.down.sql,
	// relative to the project.
	Dir string `yaml:"dir"`
	// Dialect is postgres or sqlite.
	Dialect string `yaml:"dialect"`
	// DatabaseURL is a server to create scratch databases on; empty: a
	// throwaway cluster is started.
	DatabaseURL string `yaml:"databaseURL"`
	// Deprecated are "table" or "table.column" the application no longer
	// uses; a drop is allowed only for objects listed at the base release.
	Deprecated []string `yaml:"deprecated"`
	// Sizes are the production row counts of tables, for extrapolation.
	Sizes map[string]int64 `yaml:"sizes"`
	// BudgetShare is the share of the error budget a migration may spend.
	BudgetShare float64 `yaml:"budgetShare"`
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
	Ignore []Ignore `yaml:"ignore"`
}

// Ignore suppresses the findings of one rule in migration files (a path
// relative to the project, a base name, or a glob), for a reason, possibly
// until a version or a date.
type Ignore struct {
	Rule   string `yaml:"rule"`
	File   string `yaml:"file"`
	Reason string `yaml:"reason"`
	Until  string `yaml:"until"`
	// Line is where the entry stands in the file, for messages.
	Line int `yaml:"-"`
}

// SLO is the service level objective operators are assumed to hold: the
// error budget a migration's blocking time is measured against.
type SLO struct {
	Objective       float64         `yaml:"objective"`
	Window          config.Duration `yaml:"window"`
	BudgetRemaining float64         `yaml:"budgetRemaining"`
}

// DefaultConfig is the migrations section when relcheck.yaml does not set it.
func DefaultConfig() Config {
	return Config{Dir: "migrations", Dialect: "postgres", BudgetShare: 0.1, ProbeSizes: []int64{10000, 100000, 1000000}, Reversible: true}
}

// DefaultSLO is the slo section when relcheck.yaml does not set it.
func DefaultSLO() SLO {
	return SLO{Objective: 99.9, Window: config.Duration(30 * 24 * time.Hour), BudgetRemaining: 1}
}

// maxRows bounds a declared table size: a trillion rows.
const maxRows = 1e12

// Validate checks values whose type is right but whose meaning is not. Its
// error is a *config.Error whose Key is relative to the section.
func (c Config) Validate() error {
	bad := func(line int, key, format string, args ...any) error {
		return &config.Error{Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	for i, ig := range c.Ignore {
		key := fmt.Sprintf("ignore[%d]", i)
		switch {
		case ig.Rule == "":
			return bad(ig.Line, key, "rule is required (e.g. migrations/locking)")
		case !slices.Contains(Rules, ig.Rule):
			msg := fmt.Sprintf("unknown rule %q", ig.Rule)
			if s := config.Suggest(ig.Rule, Rules); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				msg += " (migrations rules: " + strings.Join(Rules, ", ") + ")"
			}
			return bad(ig.Line, key, "%s", msg)
		case strings.TrimSpace(ig.File) == "":
			return bad(ig.Line, key, "file is required: the migration file (or a glob like migrations/0140_*.up.sql) whose finding is accepted")
		}
		if _, err := path.Match(ig.File, ""); err != nil {
			return bad(ig.Line, key, "file %q is not a valid glob: %v", ig.File, err)
		}
		if strings.TrimSpace(ig.Reason) == "" {
			return bad(ig.Line, key, "reason is required: say why this finding may be ignored")
		}
		if ig.Until != "" {
			if _, err := config.ParseUntil(ig.Until); err != nil {
				return bad(ig.Line, key, "%v", err)
			}
		}
	}
	switch c.Dialect {
	case "postgres", "sqlite":
	default:
		return bad(0, "dialect", "%q is not supported: use postgres or sqlite", c.Dialect)
	}
	if c.BudgetShare <= 0 || c.BudgetShare > 1 {
		return bad(0, "budgetShare", "must be above 0 and at most 1 (a share of the error budget)")
	}
	for _, n := range c.ProbeSizes {
		if n < 1 || n > 100_000_000 {
			return bad(0, "probeSizes", "row counts must be between 1 and 100000000")
		}
	}
	for t, n := range c.Sizes {
		if n < 0 || n > maxRows {
			return bad(0, "sizes", "row count for %q must be between 0 and %d", t, int64(maxRows))
		}
	}
	return nil
}

// Validate checks the objective, window and remaining budget.
func (s SLO) Validate() error {
	bad := func(key, msg string) error { return &config.Error{Key: key, Msg: msg} }
	if s.Objective <= 0 || s.Objective >= 100 {
		return bad("objective", "must be a percentage between 0 and 100, like 99.9")
	}
	if s.Window <= 0 || s.Window > config.Duration(3660*24*time.Hour) {
		return bad("window", "must be a positive duration of at most 3660d, like 30d")
	}
	if s.BudgetRemaining < 0 || s.BudgetRemaining > 1 {
		return bad("budgetRemaining", "must be a fraction between 0 and 1")
	}
	return nil
}
