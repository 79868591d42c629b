package analysis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/relcheck/relcheck/report"
)

// Sample is one SLI's value at one sampling.
type Sample struct {
	SLI   string    `json:"sli"`
	At    time.Time `json:"at"`
	Value float64   `json:"value"`
	// Err is why there is no value (no series, no answer): a failed
	// sample, never a pass.
	Err string `json:"error,omitempty"`
	Met bool   `json:"met"`
}

// String is the sample as a progress line.
func (s Sample) String() string {
	if s.Err != "" {
		return fmt.Sprintf("%s: no value (%s)", s.SLI, s.Err)
	}
	mark := "ok"
	if !s.Met {
		mark = "FAILS"
	}
	return fmt.Sprintf("%s = %s %s", s.SLI, fmtValue(s.Value), mark)
}

// Baseline is the SLIs' values before the switch.
type Baseline map[string]float64

// Analyzer runs a Config against a Querier.
type Analyzer struct {
	Config  Config
	Querier Querier
	// Now is the clock; Sleep waits (for tests); both default to real time.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// New is an Analyzer of c against its Prometheus.
func New(c Config) (*Analyzer, error) {
	c = c.WithDefaults()
	p, err := NewPrometheus(c.Prometheus, time.Duration(c.Timeout))
	if err != nil {
		return nil, err
	}
	return &Analyzer{Config: c, Querier: p}, nil
}

func (a *Analyzer) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Analyzer) sleep(ctx context.Context, d time.Duration) error {
	if a.Sleep != nil {
		return a.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Preflight queries every SLI once, before anything is switched: an
// unreachable Prometheus, a query with no single value or a malformed one
// is an input error (exit 2) while nothing has changed yet. It returns
// the values: the baseline the bake's samples are compared with.
func (a *Analyzer) Preflight(ctx context.Context) (Baseline, error) {
	b := Baseline{}
	at := a.now()
	for _, s := range a.Config.SLIs {
		v, err := a.Querier.Query(ctx, s.Query, at)
		if err != nil {
			return nil, report.Inputf("analysis: SLI %s cannot be measured before the upgrade, so nothing was switched: %v (analysis.prometheus %s; check the query in Prometheus' web UI)", s.Name, err, a.Config.Prometheus)
		}
		b[s.Name] = v
	}
	if err := a.checkBurn(ctx, at); err != nil {
		if _, firing := err.(*BurnError); !firing {
			return nil, report.Inputf("analysis: the SLO's burn rate cannot be measured before the upgrade, so nothing was switched: %v", err)
		}
	}
	return b, nil
}

// FailedError is a failed analysis: the SLI, its values before and after,
// the condition, and how many samples failed.
type FailedError struct {
	SLI       string
	Condition Condition
	Before    float64
	HasBefore bool
	Last      Sample
	Failures  int
	Limit     int
}

func (e *FailedError) Error() string {
	before := "no value before"
	if e.HasBefore {
		before = fmt.Sprintf("%s before the switch", fmtValue(e.Before))
	}
	now := fmtValue(e.Last.Value) + " after it"
	if e.Last.Err != "" {
		now = "no value after it (" + e.Last.Err + ")"
	}
	return fmt.Sprintf("SLI %s failed its condition %s in %d sample(s) (failureLimit %d): %s, %s", e.SLI, e.Condition, e.Failures, e.Limit, now, before)
}

// Bake samples every SLI each interval for the bake time and fails as
// soon as one SLI has failed more than FailureLimit samples: the caller
// rolls back at once. progress, if set, gets each sample.
func (a *Analyzer) Bake(ctx context.Context, before Baseline, progress func(Sample)) ([]Sample, error) {
	return a.BakeSince(ctx, before, a.now(), progress)
}

// BakeSince is Bake for a switch made at switched: the comparisons'
// baseline ends there (a bake re-run after a crash keeps its "before").
func (a *Analyzer) BakeSince(ctx context.Context, before Baseline, switched time.Time, progress func(Sample)) ([]Sample, error) {
	c := a.Config.WithDefaults()
	conds := map[string]Condition{}
	for _, s := range c.SLIs {
		cond, err := ParseCondition(s.Condition)
		if err != nil {
			return nil, err
		}
		conds[s.Name] = cond
	}
	interval, bake := time.Duration(c.Interval), time.Duration(c.Bake)
	n := int(bake / interval)
	failures := map[string]int{}
	var all []Sample
	for i := 0; i < n; i++ {
		if err := a.sleep(ctx, interval); err != nil {
			return all, err
		}
		at := a.now()
		// The SLO's burn-rate alerts: one firing rolls back at once.
		if err := a.checkBurn(ctx, at); err != nil {
			if ctx.Err() != nil {
				return all, ctx.Err()
			}
			return all, err
		}
		for _, s := range c.SLIs {
			smp := Sample{SLI: s.Name, At: at}
			v, err := a.Querier.Query(ctx, s.Query, at)
			if ctx.Err() != nil {
				return all, ctx.Err()
			}
			if err != nil {
				smp.Err = err.Error()
			} else {
				smp.Value, smp.Met = v, conds[s.Name].Met(v)
			}
			all = append(all, smp)
			if progress != nil {
				progress(smp)
			}
			if !smp.Met {
				failures[s.Name]++
				if failures[s.Name] > c.FailureLimit {
					b, ok := before[s.Name]
					return all, &FailedError{SLI: s.Name, Condition: conds[s.Name], Before: b, HasBefore: ok, Last: smp, Failures: failures[s.Name], Limit: c.FailureLimit}
				}
			}
		}
	}
	return all, a.compare(ctx, switched, all, conds)
}

// compare judges the SLIs with compare set against the baseline, the
// time before the switch (compare.go).
func (a *Analyzer) compare(ctx context.Context, switched time.Time, after []Sample, conds map[string]Condition) error {
	c := a.Config.WithDefaults()
	end := a.now()
	alpha := c.CompareAlpha()
	baseline := time.Duration(c.Baseline)
	for _, s := range c.SLIs {
		switch s.Compare {
		case "samples":
			rq, ok := a.Querier.(RangeQuerier)
			if !ok {
				continue
			}
			before, err := rq.QueryRange(ctx, s.Query, switched.Add(-baseline), switched, time.Duration(c.Interval))
			if err != nil {
				return &WorseError{SLI: s.Name, Why: fmt.Sprintf("no samples before the switch to compare with (%v): not judged as passing", err)}
			}
			var vals []float64
			for _, smp := range after {
				if smp.SLI == s.Name && smp.Err == "" {
					vals = append(vals, smp.Value)
				}
			}
			tol := float64(s.Tolerance) / 100
			if s.Tolerance == 0 {
				tol = 0.10
			}
			op := conds[s.Name].Op
			if err := compareSamples(s.Name, before, vals, op == "<" || op == "<=", alpha, tol); err != nil {
				return err
			}
		case "counts":
			if err := a.compareCounts(ctx, s, switched, baseline, end, alpha); err != nil {
				return err
			}
		}
	}
	return nil
}

// CompareAlpha is each comparison's one-sided significance level: the
// analysis' DefaultAlpha shared among the SLIs compared (Bonferroni), so
// that an unchanged release is rolled back by any of them at most that
// often.
func (c Config) CompareAlpha() float64 {
	n := 0
	for _, s := range c.SLIs {
		if s.Compare != "" {
			n++
		}
	}
	if n == 0 {
		return DefaultAlpha
	}
	return DefaultAlpha / float64(n)
}

// Plan says what the analysis will do, for --dry-run and status.
func (c Config) Plan() string {
	c = c.WithDefaults()
	var slis []string
	for _, s := range c.SLIs {
		slis = append(slis, s.Name+" "+s.Condition)
	}
	plan := fmt.Sprintf("after each hop, for %s: every %s %s from %s; more than %d failed sample(s) of one SLI rolls back",
		c.Bake, c.Interval, strings.Join(slis, ", "), c.Prometheus, c.FailureLimit)
	var compared []string
	for _, s := range c.SLIs {
		if s.Compare != "" {
			compared = append(compared, s.Name+" ("+s.Compare+")")
		}
	}
	if len(compared) > 0 {
		plan += fmt.Sprintf("; then %s compared with the %s before the switch, one-sided at α=%.2g each", strings.Join(compared, ", "), c.Baseline, c.CompareAlpha())
	}
	return plan
}

func fmtValue(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
