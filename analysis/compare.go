package analysis

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/relcheck/relcheck/perf"
)

// Worse than before: at the end of a bake whose samples all met their
// conditions, an SLI with compare set is compared with the baseline, the
// time before the switch (twice the bake by default), so that "worse than
// before" is decided with a stated confidence and not only against a fixed
// bound. The compared SLIs share DefaultAlpha (Config.CompareAlpha).
//
//   compare: samples  the SLI's samples before (a range query at the same
//                     interval) and after: one-sided Mann-Whitney U test and
//                     the Hodges–Lehmann ratio, as Kayenta's judge does
//                     (perf's statistics, which the perf gate uses);
//   compare: counts   errors and total as counts over the bake (queries with
//                     $window): the exact conditional binomial test of two
//                     Poisson rates (are there more errors per event after?).

// DefaultAlpha bounds how often the comparisons together roll back an
// unchanged release.
const DefaultAlpha = 0.01

// RangeQuerier evaluates a PromQL expression over a time range.
type RangeQuerier interface {
	QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]float64, error)
}

// WorseError is an SLI that is worse after the switch than before, with
// the figures that decided it.
type WorseError struct {
	SLI, Why string
}

func (e *WorseError) Error() string {
	return fmt.Sprintf("SLI %s is worse than before the switch: %s", e.SLI, e.Why)
}

// RateTest is the one-sided p-value of "the rate of errors per event is
// higher after than before", given kBefore errors in nBefore events and
// kAfter in nAfter: conditional on the kBefore+kAfter errors, under equal
// rates each is after with probability nAfter/(nBefore+nAfter); the
// p-value is the binomial tail P(X ≥ kAfter). Exact, for any counts.
func RateTest(kBefore, nBefore, kAfter, nAfter float64) float64 {
	if nBefore <= 0 || nAfter <= 0 {
		return 1
	}
	k, n := math.Round(kAfter), math.Round(kBefore+kAfter)
	if n == 0 || k <= 0 {
		return 1
	}
	p := nAfter / (nBefore + nAfter)
	// P(X ≥ k) for X ~ Binomial(n, p), summed in logs.
	lp, lq := math.Log(p), math.Log1p(-p)
	lgn, _ := math.Lgamma(n + 1)
	total := 0.0
	for x := k; x <= n; x++ {
		a, _ := math.Lgamma(x + 1)
		b, _ := math.Lgamma(n - x + 1)
		total += math.Exp(lgn - a - b + x*lp + (n-x)*lq)
	}
	return math.Min(1, total)
}

// compareSamples judges an SLI's samples after the switch against those
// before; higher says whether a higher value is worse (a "<" condition).
func compareSamples(name string, before, after []float64, higherWorse bool, alpha, threshold float64) error {
	st := perf.Stats{Alpha: alpha, Threshold: threshold}
	base, head := before, after
	if !higherWorse {
		base, head = after, before
	}
	for _, xs := range [][]float64{base, head} {
		for _, x := range xs {
			if !(x > 0) {
				return nil // the ratio's log scale needs positive values: not judged
			}
		}
	}
	c := st.Compare(base, head)
	if c.Verdict != perf.Regression {
		return nil
	}
	ratio, lo, hi := c.Ratio, c.Lo, c.Hi
	dir := "higher"
	if !higherWorse {
		ratio, lo, hi, dir = 1/c.Ratio, 1/c.Hi, 1/c.Lo, "lower"
	}
	return &WorseError{SLI: name, Why: fmt.Sprintf("%s ×%.3g (Hodges–Lehmann; %.0f%% interval ×%.3g–×%.3g), p=%.2g < α=%.2g (Mann-Whitney U, one-sided, %d samples before and %d after), beyond the %.0f%% tolerance",
		dir, ratio, 100*(1-2*alpha), lo, hi, c.P, alpha, len(before), len(after), 100*threshold)}
}

// compareCounts judges an SLI's error counts over the bake against the
// same length of time before the switch.
func (a *Analyzer) compareCounts(ctx context.Context, s SLI, switched time.Time, baseline time.Duration, end time.Time, alpha float64) error {
	q := func(expr string, window time.Duration, at time.Time) (float64, error) {
		return a.Querier.Query(ctx, strings.ReplaceAll(expr, "$window", promDuration(window)), at)
	}
	kb, err1 := q(s.Errors, baseline, switched)
	nb, err2 := q(s.Total, baseline, switched)
	ka, err3 := q(s.Errors, end.Sub(switched), end)
	na, err4 := q(s.Total, end.Sub(switched), end)
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return &WorseError{SLI: s.Name, Why: fmt.Sprintf("its counts cannot be compared (%v): not judged as passing", err)}
		}
	}
	p := RateTest(kb, nb, ka, na)
	if p < alpha && ka/na > kb/nb {
		return &WorseError{SLI: s.Name, Why: fmt.Sprintf("%.0f errors in %.0f events after (%.3g%%), %.0f in %.0f before (%.3g%%): p=%.2g < α=%.2g (exact conditional binomial test, one-sided)",
			ka, na, 100*ka/na, kb, nb, 100*kb/nb, p, alpha)}
	}
	return nil
}
