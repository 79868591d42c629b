// Package analysis judges a release after it is switched on, by the
// operator's own service level indicators: PromQL queries against the
// operator's Prometheus, each with a success condition, sampled at an
// interval during a bake time (Argo Rollouts' vocabulary: bake, interval,
// failureLimit). A hop whose analysis fails is rolled back like one that
// fails its health check.
//
//	analysis.go   Config, SLI, Condition, Validate
//	run.go        Preflight (before the switch) and Bake (after it)
//	prometheus.go the query client (prometheus/client_golang's API client)
package analysis

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/relcheck/relcheck/config"
)

// Config is the subscription's analysis section.
type Config struct {
	// Prometheus is the operator's Prometheus (its HTTP API).
	Prometheus string `yaml:"prometheus"`
	// Bake is how long the release is watched after the switch; Interval
	// how often the SLIs are sampled meanwhile.
	Bake     config.Duration `yaml:"bake"`
	Interval config.Duration `yaml:"interval"`
	// Baseline is how long before the switch the SLIs with compare set
	// are taken from (default twice the bake: the history before the
	// switch costs no waiting, and a longer baseline narrows its side of
	// the comparison; compare.go).
	Baseline config.Duration `yaml:"baseline,omitempty"`
	// FailureLimit is how many failed samples of one SLI are tolerated:
	// one more fails the analysis.
	FailureLimit int `yaml:"failureLimit"`
	// SLO, when set, adds its burn-rate alerts to every sample (slo.go).
	SLO  *SLO  `yaml:"slo,omitempty"`
	SLIs []SLI `yaml:"slis"`
	// Timeout bounds each query (default 10s).
	Timeout config.Duration `yaml:"timeout,omitempty"`
}

// SLI is one service level indicator: a PromQL query whose value must meet
// the condition.
type SLI struct {
	Name      string `yaml:"name"`
	Query     string `yaml:"query"`
	Condition string `yaml:"condition"`
	// Compare also judges the SLI against the same length of time before
	// the switch (compare.go): "samples" or "counts" ("": not compared).
	Compare string `yaml:"compare,omitempty"`
	// Errors and Total are, for compare: counts, PromQL counts of bad
	// and of all events over $window (increase(…[$window])).
	Errors string `yaml:"errors,omitempty"`
	Total  string `yaml:"total,omitempty"`
	// Tolerance is the relative change compare: samples lets pass
	// (default 10%).
	Tolerance config.Percent `yaml:"tolerance,omitempty"`
}

// Defaults of a Config's unset values.
const (
	DefaultBake     = 15 * time.Minute
	DefaultInterval = time.Minute
	DefaultTimeout  = 10 * time.Second
)

// WithDefaults is c with its unset durations set.
func (c Config) WithDefaults() Config {
	if c.Bake == 0 {
		c.Bake = config.Duration(DefaultBake)
	}
	if c.Interval == 0 {
		c.Interval = config.Duration(DefaultInterval)
	}
	if c.Timeout == 0 {
		c.Timeout = config.Duration(DefaultTimeout)
	}
	if c.Baseline == 0 {
		c.Baseline = 2 * c.Bake
	}
	return c
}

// Validate checks the values; the errors name the key.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &config.Error{Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if !strings.HasPrefix(c.Prometheus, "http://") && !strings.HasPrefix(c.Prometheus, "https://") {
		return bad("prometheus", "%q is not an http(s) URL of a Prometheus, like http://127.0.0.1:9090", c.Prometheus)
	}
	c = c.WithDefaults()
	if d := time.Duration(c.Interval); d < time.Second || d > time.Hour {
		return bad("interval", "must be between 1s and 1h")
	}
	if d := time.Duration(c.Bake); d < time.Duration(c.Interval) || d > 7*24*time.Hour {
		return bad("bake", "must be between the interval (%s) and 7d", c.Interval)
	}
	if d := time.Duration(c.Baseline); d < time.Duration(c.Interval) || d > 30*24*time.Hour {
		return bad("baseline", "must be between the interval (%s) and 30d", c.Interval)
	}
	if d := time.Duration(c.Timeout); d < 100*time.Millisecond || d > 5*time.Minute {
		return bad("timeout", "must be between 100ms and 5m")
	}
	if c.FailureLimit < 0 || c.FailureLimit > 1000 {
		return bad("failureLimit", "must be between 0 and 1000")
	}
	if c.SLO != nil {
		if key, err := c.SLO.validate(); err != nil {
			return bad("slo."+key, "%v", err)
		}
	}
	if len(c.SLIs) == 0 {
		return bad("slis", "give at least one SLI: name, query and condition")
	}
	seen := map[string]bool{}
	for i, s := range c.SLIs {
		key := fmt.Sprintf("slis[%d]", i)
		switch {
		case s.Name == "":
			return bad(key+".name", "missing")
		case seen[s.Name]:
			return bad(key+".name", "%q is there twice", s.Name)
		case strings.TrimSpace(s.Query) == "":
			return bad(key+".query", "missing: a PromQL expression with one value, like sum(rate(http_requests_total{code=~\"5..\"}[1m])) / sum(rate(http_requests_total[1m]))")
		}
		seen[s.Name] = true
		if _, err := ParseCondition(s.Condition); err != nil {
			return bad(key+".condition", "%v", err)
		}
		switch s.Compare {
		case "", "samples":
		case "counts":
			if !strings.Contains(s.Errors, "$window") || !strings.Contains(s.Total, "$window") {
				return bad(key+".errors", "compare: counts needs errors and total, counts over $window, like sum(increase(http_requests_total{code=~\"5..\"}[$window]))")
			}
		default:
			return bad(key+".compare", "must be samples or counts, not %q", s.Compare)
		}
		if s.Tolerance < 0 || s.Tolerance > 1000 {
			return bad(key+".tolerance", "must be between 0%% and 1000%%")
		}
	}
	return nil
}

// Condition is a comparison a sample must meet: "< 0.01".
type Condition struct {
	Op    string
	Value float64
}

// ParseCondition parses "< 0.01", "<= 0.3", "> 0.99", ">= 100".
func ParseCondition(s string) (Condition, error) {
	t := strings.TrimSpace(s)
	for _, op := range []string{"<=", ">=", "<", ">"} {
		if rest, ok := strings.CutPrefix(t, op); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil || v != v {
				break
			}
			return Condition{Op: op, Value: v}, nil
		}
	}
	return Condition{}, fmt.Errorf("%q is not a condition like \"< 0.01\" (operators <, <=, >, >=, then a number)", s)
}

// Met reports whether v meets the condition.
func (c Condition) Met(v float64) bool {
	switch c.Op {
	case "<":
		return v < c.Value
	case "<=":
		return v <= c.Value
	case ">":
		return v > c.Value
	case ">=":
		return v >= c.Value
	}
	return false
}

func (c Condition) String() string { return c.Op + " " + strconv.FormatFloat(c.Value, 'g', -1, 64) }
