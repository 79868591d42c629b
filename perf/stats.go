// Package perf is relcheck's performance gate: the repository's Go
// benchmarks, built at the base and at the head and run in duet rounds (at
// the same time, one per CPU) or interleaved rounds on the same machine,
// compared with statistics that say how much they can see.
//
// Where things are:
//
//	check.go        Options, Check, the rule ids, the rounds
//	bench.go        building and running the benchmark binaries
//	affinity_*.go   pinning a duet's processes to CPUs
//	stats.go        the statistics (two samples, and paired) and the verdicts
//	qualify.go      what the gate can see on this machine (perf qualify)
//	scenario.go     load scenarios (vegeta) and their SLO thresholds
//	scenario_db.go  a scenario's database and the program's own metrics
//	results.go      saved results and perf compare
//	history.go      the perf history file and its chart
//	config.go       the perf section of relcheck.yaml
package perf

import (
	"fmt"
	"math"
	"slices"

	"github.com/aclements/go-moremath/stats"
)

// Verdict is what a comparison of base and head concluded.
type Verdict string

const (
	// Regression: head is slower, significantly and beyond the threshold.
	Regression Verdict = "regression"
	// Improvement: head is faster, significantly and beyond the threshold.
	Improvement Verdict = "improvement"
	// Same: no change beyond the threshold, and the run could have seen one.
	Same Verdict = "same"
	// Unstable: too noisy or too few samples to tell; never "no regression".
	Unstable Verdict = "unstable"
)

// Stats are the thresholds of a comparison.
type Stats struct {
	// Alpha is the one-sided significance level (e.g. 0.01).
	Alpha float64
	// Threshold is the smallest relative change that matters (0.05: 5%).
	Threshold float64
	// Confidence of the reported interval of the ratio; 0: 1 − 2·Alpha,
	// the interval that matches the one-sided test.
	Confidence float64
}

// minSamples is the smallest sample per side benchmath gives a finite 95%
// interval for, and below which nothing is judged.
const minSamples = 6

// Comparison of one benchmark's metric at base and at head.
type Comparison struct {
	Base, Head []float64 `json:"-"`
	N1         int       `json:"nBase"`
	N2         int       `json:"nHead"`
	BaseMedian float64   `json:"baseMedian"`
	HeadMedian float64   `json:"headMedian"`
	// Ratio is head/base (Hodges–Lehmann estimate on the log scale), with
	// its distribution-free confidence interval [Lo, Hi].
	Ratio float64 `json:"ratio"`
	Lo    float64 `json:"ratioLo"`
	Hi    float64 `json:"ratioHi"`
	// P is the one-sided Mann-Whitney U p-value for "head is slower"
	// (for "head is faster" when the verdict is an improvement).
	P       float64 `json:"p"`
	Verdict Verdict `json:"verdict"`
	// Detectable is the smallest relative change this run could have told
	// from noise: half the width of the ratio's interval.
	Detectable float64 `json:"detectable"`
	Why        string  `json:"why,omitempty"`
}

// Compare judges a metric where lower is better (time per operation) from
// samples at base and head. The one-sided p-values are the Mann-Whitney U
// test's (the test benchmath's AssumeNothing runs, there two-sided).
func (st Stats) Compare(base, head []float64) Comparison {
	c := Comparison{Base: base, Head: head, N1: len(base), N2: len(head), P: 1}
	if c.N1 == 0 || c.N2 == 0 {
		c.Verdict, c.Why = Unstable, "no samples"
		return c
	}
	c.BaseMedian, c.HeadMedian = median(base), median(head)
	c.Ratio, c.Lo, c.Hi = ratioInterval(base, head, st.confidence())
	c.Detectable = (c.Hi - c.Lo) / 2
	pSlower, pFaster := oneSided(base, head)
	c.P = pSlower
	if c.N1 < minSamples || c.N2 < minSamples {
		c.Verdict, c.Why = Unstable, fmt.Sprintf("too few samples (%d and %d; at least %d each are needed)", c.N1, c.N2, minSamples)
		return c
	}
	st.decide(&c, pFaster)
	return c
}

// decide sets c's verdict from its one-sided p-values (c.P for "slower",
// pFaster) and its ratio and interval.
func (st Stats) decide(c *Comparison, pFaster float64) {
	switch {
	case c.P < st.Alpha && c.Ratio > 1+st.Threshold:
		c.Verdict = Regression
	case pFaster < st.Alpha && c.Ratio < 1-st.Threshold:
		c.Verdict, c.P = Improvement, pFaster
	case c.Hi <= 1+st.Threshold:
		c.Verdict = Same // a slowdown above the threshold is ruled out
	default:
		c.Verdict, c.Why = Unstable, fmt.Sprintf("too noisy: a slowdown of up to %.1f%% cannot be ruled out, and changes smaller than ±%.1f%% cannot be told from noise in this run", 100*(c.Hi-1), 100*c.Detectable)
	}
}

// confidence of the ratio's interval: the one matching the one-sided test
// at Alpha (0.98 for 0.01), unless set.
func (st Stats) confidence() float64 {
	if st.Confidence > 0 {
		return st.Confidence
	}
	return 1 - 2*st.Alpha
}

// oneSided returns the Mann-Whitney U test's p-values for "head is slower"
// and "head is faster" (1 when all values are equal).
func oneSided(base, head []float64) (slower, faster float64) {
	slower, faster = 1, 1
	if r, err := stats.MannWhitneyUTest(base, head, stats.LocationLess); err == nil {
		slower = r.P
	}
	if r, err := stats.MannWhitneyUTest(base, head, stats.LocationGreater); err == nil {
		faster = r.P
	}
	return slower, faster
}

// ratioInterval estimates head/base as exp of the Hodges–Lehmann shift of
// the logarithms (the median of all pairwise differences), with the
// distribution-free interval that inverts the Mann-Whitney test (Moses).
func ratioInterval(base, head []float64, confidence float64) (ratio, lo, hi float64) {
	positive := func(xs []float64) []float64 {
		return slices.DeleteFunc(slices.Clone(xs), func(x float64) bool { return !(x > 0) || math.IsInf(x, 0) })
	}
	base, head = positive(base), positive(head)
	var d []float64
	for _, b := range base {
		for _, h := range head {
			d = append(d, math.Log(h)-math.Log(b))
		}
	}
	if len(d) == 0 {
		return 1, 1, 1
	}
	slices.Sort(d)
	n1, n2 := float64(len(base)), float64(len(head))
	z := normalQuantile(1 - (1-confidence)/2)
	k := int(math.Floor(n1*n2/2 - z*math.Sqrt(n1*n2*(n1+n2+1)/12)))
	k = max(1, min(k, len(d)))
	return math.Exp(median(d)), math.Exp(d[k-1]), math.Exp(d[len(d)-k])
}

// normalQuantile is the standard normal quantile function (Acklam's
// rational approximation, relative error below 1.2e-9).
func normalQuantile(p float64) float64 {
	a := []float64{-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00}
	b := []float64{-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01}
	c := []float64{-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00}
	d := []float64{7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00}
	const low = 0.02425
	switch {
	case p < low:
		q := math.Sqrt(-2 * math.Log(p))
		return (((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q + c[5]) / ((((d[0]*q+d[1])*q+d[2])*q+d[3])*q + 1)
	case p <= 1-low:
		q := p - 0.5
		r := q * q
		return (((((a[0]*r+a[1])*r+a[2])*r+a[3])*r+a[4])*r + a[5]) * q / (((((b[0]*r+b[1])*r+b[2])*r+b[3])*r+b[4])*r + 1)
	default:
		q := math.Sqrt(-2 * math.Log(1-p))
		return -(((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q + c[5]) / ((((d[0]*q+d[1])*q+d[2])*q+d[3])*q + 1)
	}
}

// ExactChange compares a count that barely varies between runs of the same
// code (allocs/op, B/op): it got worse when every head run counted more
// than every base run (amortised growth or a pool emptied by the GC make
// single runs differ). from and to are the medians.
func ExactChange(base, head []float64) (from, to float64, worse bool) {
	if len(base) == 0 || len(head) == 0 {
		return 0, 0, false
	}
	return median(base), median(head), slices.Min(head) > slices.Max(base)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// confirmAlpha is the one-sided level at which the fresh rounds alone must
// point the same way as the first ones.
const confirmAlpha = 0.1

// Confirm judges a first comparison that found a regression together with
// fresh rounds: the regression stands when all rounds together still show
// it and the fresh rounds alone point the same way (head slower, p below
// confirmAlpha). Pooling keeps the power of the first rounds for a real
// slowdown; a first result that was a fluke is diluted by the fresh rounds
// and rarely repeated by them.
func (st Stats) Confirm(first, again Comparison) Comparison {
	pooled := st.Compare(append(slices.Clone(first.Base), again.Base...), append(slices.Clone(first.Head), again.Head...))
	return st.settle(first, again, pooled)
}

// ComparePaired judges a metric where lower is better from paired samples:
// base[i] and head[i] ran at the same time (a duet round), so they saw the
// same interference and their ratio cancels most of it. The test is the
// one-sided Wilcoxon signed-rank test on log(head[i]/base[i]); the ratio
// is exp of the one-sample Hodges–Lehmann estimate (the median of the
// Walsh averages), with the interval that inverts the test.
func (st Stats) ComparePaired(base, head []float64) Comparison {
	n := min(len(base), len(head))
	c := Comparison{Base: base, Head: head, N1: n, N2: n, P: 1}
	var d []float64
	for i := 0; i < n; i++ {
		if base[i] > 0 && head[i] > 0 && !math.IsInf(base[i], 0) && !math.IsInf(head[i], 0) {
			d = append(d, math.Log(head[i]/base[i]))
		}
	}
	c.N1, c.N2 = len(d), len(d)
	if len(d) == 0 {
		c.Verdict, c.Why = Unstable, "no pairs"
		return c
	}
	c.BaseMedian, c.HeadMedian = median(base[:n]), median(head[:n])
	c.Ratio, c.Lo, c.Hi = pairedInterval(d, st.confidence())
	c.Detectable = (c.Hi - c.Lo) / 2
	pSlower, pFaster := SignedRankTest(d)
	c.P = pSlower
	if len(d) < minSamples {
		c.Verdict, c.Why = Unstable, fmt.Sprintf("too few pairs (%d; at least %d are needed)", len(d), minSamples)
		return c
	}
	st.decide(&c, pFaster)
	return c
}

// ConfirmPaired is Confirm for paired samples: the first pairs and the
// fresh ones pooled must still show the regression, and the fresh pairs
// alone must point the same way (p below confirmAlpha).
func (st Stats) ConfirmPaired(first, again Comparison) Comparison {
	pooled := st.ComparePaired(append(slices.Clone(first.Base), again.Base...), append(slices.Clone(first.Head), again.Head...))
	return st.settle(first, again, pooled)
}

// settle is the common part of Confirm and ConfirmPaired.
func (st Stats) settle(first, again, pooled Comparison) Comparison {
	switch {
	case pooled.Verdict == Regression && again.Ratio > 1 && again.P < confirmAlpha:
		return pooled
	case pooled.Verdict == Same:
		pooled.Why = fmt.Sprintf("a %+.1f%% change in the first rounds was not confirmed by fresh rounds (%+.1f%%)", 100*(first.Ratio-1), 100*(again.Ratio-1))
		return pooled
	default:
		why := pooled.Why
		if why == "" {
			why = fmt.Sprintf("the fresh rounds alone showed %+.1f%% (p=%.2g)", 100*(again.Ratio-1), again.P)
		}
		pooled.Verdict = Unstable
		pooled.Why = "a regression in the first rounds was not confirmed by fresh rounds: " + why
		return pooled
	}
}

// SignedRankTest is the Wilcoxon signed-rank test of the differences d
// (zeros dropped, tied magnitudes given their mean rank): the one-sided
// p-values for "d is shifted above 0" and "below 0". Exact (by counting
// the 2^n sign patterns' rank sums) for up to 40 differences without ties,
// the normal approximation with continuity and tie corrections otherwise.
func SignedRankTest(d []float64) (above, below float64) {
	var x []float64
	for _, v := range d {
		if v != 0 && !math.IsNaN(v) {
			x = append(x, v)
		}
	}
	n := len(x)
	if n == 0 {
		return 1, 1
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmpFloat(math.Abs(x[a]), math.Abs(x[b])) })
	ranks := make([]float64, n)
	ties := false
	tieTerm := 0.0
	for i := 0; i < n; {
		j := i
		for j+1 < n && math.Abs(x[idx[j+1]]) == math.Abs(x[idx[i]]) {
			j++
		}
		r := float64(i+j+2) / 2
		for k := i; k <= j; k++ {
			ranks[idx[k]] = r
		}
		if t := float64(j - i + 1); t > 1 {
			ties = true
			tieTerm += t*t*t - t
		}
		i = j + 1
	}
	wPlus := 0.0
	for i, v := range x {
		if v > 0 {
			wPlus += ranks[i]
		}
	}
	total := float64(n*(n+1)) / 2
	if !ties && n <= 40 {
		// counts[s] is how many sign patterns have rank sum s.
		max := n * (n + 1) / 2
		counts := make([]float64, max+1)
		counts[0] = 1
		for r := 1; r <= n; r++ {
			for s := max; s >= r; s-- {
				counts[s] += counts[s-r]
			}
		}
		all := math.Pow(2, float64(n))
		w := int(math.Round(wPlus))
		for s := w; s <= max; s++ {
			above += counts[s]
		}
		for s := 0; s <= w; s++ {
			below += counts[s]
		}
		return above / all, below / all
	}
	mean := total / 2
	sd := math.Sqrt(float64(n*(n+1)*(2*n+1))/24 - tieTerm/48)
	if sd == 0 {
		return 1, 1
	}
	zAbove := (wPlus - mean - 0.5) / sd
	zBelow := (wPlus - mean + 0.5) / sd
	return 1 - normalCDF(zAbove), normalCDF(zBelow)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func normalCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// pairedInterval is exp of the median of the Walsh averages of d (the
// one-sample Hodges–Lehmann estimate) and of the order statistics that
// bound it at the given confidence (Tukey's interval for the signed-rank
// test, normal approximation).
func pairedInterval(d []float64, confidence float64) (ratio, lo, hi float64) {
	var w []float64
	for i := range d {
		for j := i; j < len(d); j++ {
			w = append(w, (d[i]+d[j])/2)
		}
	}
	slices.Sort(w)
	n := float64(len(d))
	z := normalQuantile(1 - (1-confidence)/2)
	k := int(math.Floor(n*(n+1)/4 - z*math.Sqrt(n*(n+1)*(2*n+1)/24)))
	k = max(1, min(k, len(w)))
	return math.Exp(median(w)), math.Exp(w[k-1]), math.Exp(w[len(w)-k])
}
