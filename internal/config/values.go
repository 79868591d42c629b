package config

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written in Go syntax, plus "d" for days ("30d",
// "1d12h").
type Duration time.Duration

// ParseDuration parses Go duration syntax extended with a day unit.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var days int64
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("invalid duration %q: days must be a whole number before \"d\"", s)
		}
		days = n
		s = s[i+1:]
		if s == "" {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use Go syntax plus d for days, like 30d or 1h30m", s)
	}
	return time.Duration(days)*24*time.Hour + d, nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as ParseDuration reads it.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

func (d Duration) String() string {
	t := time.Duration(d)
	if t > 0 && t%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", t/(24*time.Hour))
	}
	return t.String()
}

// reBenchtime is what go test accepts as -test.benchtime.
var reBenchtime = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m)|[1-9][0-9]*x)$`)

// Percent is a percentage written as "5%" or a plain number 5.
type Percent float64

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(n.Value), "%"))
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("invalid percentage %q: write it like 5%%", n.Value)
	}
	*p = Percent(v)
	return nil
}

var ruleID = regexp.MustCompile(`^[a-z]+/[a-z0-9]+(-[a-z0-9]+)*$`)

// validate checks values whose type is right but whose meaning is not.
func validate(file string, root *yaml.Node, c *Config) error {
	bad := func(key, format string, args ...any) error {
		return &Error{File: file, Line: lineOf(root, key), Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if c.API.Deprecation.MinReleases < 0 {
		return bad("api.deprecation.minReleases", "must be 0 or more")
	}
	if c.API.Deprecation.MinDays < 0 {
		return bad("api.deprecation.minDays", "must be 0 or more")
	}
	for _, p := range c.API.Packages {
		if strings.TrimSpace(p) == "" {
			return bad("api.packages", "empty package pattern")
		}
	}
	for i, ig := range c.API.Ignore {
		key := fmt.Sprintf("api.ignore[%d]", i)
		e := func(msg string) error { return &Error{File: file, Line: ig.Line, Key: key, Msg: msg} }
		if ig.Rule == "" {
			return e("rule is required (e.g. api/incompatible)")
		}
		if !ruleID.MatchString(ig.Rule) {
			return e(fmt.Sprintf("rule %q is not a rule id of the form gate/kebab-name", ig.Rule))
		}
		if strings.TrimSpace(ig.Reason) == "" {
			return e("reason is required: say why this finding may be ignored")
		}
		if ig.Until != "" {
			if _, err := ParseUntil(ig.Until); err != nil {
				return e(err.Error())
			}
		}
	}
	for i, ig := range c.Migrations.Ignore {
		key := fmt.Sprintf("migrations.ignore[%d]", i)
		e := func(msg string) error { return &Error{File: file, Line: ig.Line, Key: key, Msg: msg} }
		if ig.Rule == "" {
			return e("rule is required (e.g. migrations/locking)")
		}
		if !strings.HasPrefix(ig.Rule, "migrations/") || !ruleID.MatchString(ig.Rule) {
			return e(fmt.Sprintf("rule %q is not a rule id of the migrations gate (migrations/kebab-name)", ig.Rule))
		}
		if strings.TrimSpace(ig.File) == "" {
			return e("file is required: the migration file (or a glob like migrations/0140_*.up.sql) whose finding is accepted")
		}
		if _, err := path.Match(ig.File, ""); err != nil {
			return e(fmt.Sprintf("file %q is not a valid glob: %v", ig.File, err))
		}
		if strings.TrimSpace(ig.Reason) == "" {
			return e("reason is required: say why this finding may be ignored")
		}
		if ig.Until != "" {
			if _, err := ParseUntil(ig.Until); err != nil {
				return e(err.Error())
			}
		}
	}
	switch c.Migrations.Dialect {
	case "postgres", "sqlite":
	default:
		return bad("migrations.dialect", "%q is not supported: use postgres or sqlite", c.Migrations.Dialect)
	}
	if c.Migrations.BudgetShare <= 0 || c.Migrations.BudgetShare > 1 {
		return bad("migrations.budgetShare", "must be above 0 and at most 1 (a share of the error budget)")
	}
	for _, n := range c.Migrations.ProbeSizes {
		if n < 1 || n > 100_000_000 {
			return bad("migrations.probeSizes", "row counts must be between 1 and 100000000")
		}
	}
	for t, n := range c.Migrations.Sizes {
		if n < 0 {
			return bad("migrations.sizes", "row count for %q must not be negative", t)
		}
	}
	if c.SLO.Objective <= 0 || c.SLO.Objective >= 100 {
		return bad("slo.objective", "must be a percentage between 0 and 100, like 99.9")
	}
	if c.SLO.Window <= 0 {
		return bad("slo.window", "must be a positive duration, like 30d")
	}
	if c.SLO.BudgetRemaining < 0 || c.SLO.BudgetRemaining > 1 {
		return bad("slo.budgetRemaining", "must be a fraction between 0 and 1")
	}
	if c.Perf.Benchmarks.Rounds < 6 {
		return bad("perf.benchmarks.rounds", "must be at least 6: fewer samples per side cannot show a significant change")
	}
	if !reBenchtime.MatchString(c.Perf.Benchmarks.Benchtime) {
		return bad("perf.benchmarks.benchtime", "must be a duration like 100ms or 2s, or an iteration count like 1000x")
	}
	if c.Perf.Benchmarks.Alpha <= 0 || c.Perf.Benchmarks.Alpha >= 0.5 {
		return bad("perf.benchmarks.alpha", "must be a significance level above 0 and below 0.5 (e.g. 0.01)")
	}
	if p := minOneSidedP(c.Perf.Benchmarks.Rounds); c.Perf.Benchmarks.Alpha <= p {
		return bad("perf.benchmarks.alpha", "with %d rounds the smallest possible p-value is %.2g, so no slowdown could ever be significant: raise rounds or alpha", c.Perf.Benchmarks.Rounds, p)
	}
	if c.Perf.Benchmarks.Threshold < 0 {
		return bad("perf.benchmarks.threshold", "must not be negative")
	}
	if _, err := regexp.Compile(c.Perf.Benchmarks.Pattern); err != nil {
		return bad("perf.benchmarks.pattern", "not a valid regular expression: %v", err)
	}
	return nil
}

// Until is the parsed expiry of a suppression: a version or a date.
type Until struct {
	Version *semver.Version
	Date    time.Time
}

// ParseUntil parses an api.ignore until value.
func ParseUntil(s string) (Until, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return Until{Date: t}, nil
	}
	if strings.HasPrefix(s, "v") {
		if v, err := semver.StrictNewVersion(strings.TrimPrefix(s, "v")); err == nil {
			return Until{Version: v}, nil
		}
	}
	return Until{}, fmt.Errorf("until %q is neither a version like v1.6.0 nor a date like 2026-12-31", s)
}

// Expired reports whether the suppression no longer applies, given the next
// version and today's date.
func (u Until) Expired(next *semver.Version, now time.Time) bool {
	if u.Version != nil {
		return next != nil && !next.LessThan(u.Version)
	}
	return !u.Date.IsZero() && !now.Before(u.Date)
}

// minOneSidedP is the smallest one-sided p-value of a Mann-Whitney U test
// with n samples per side: 1 / C(2n, n), when every head sample is slower.
func minOneSidedP(n int) float64 {
	p := 1.0
	for i := 1; i <= n; i++ {
		p *= float64(i) / float64(n+i)
	}
	return p
}
