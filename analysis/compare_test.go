package analysis

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/relcheck/relcheck/config"
)

func TestRateTest(t *testing.T) {
	// Exact small cases: 3 errors after and none before, equal traffic:
	// P(X ≥ 3 | n=3, p=1/2) = 1/8.
	if p := RateTest(0, 100, 3, 100); math.Abs(p-0.125) > 1e-12 {
		t.Errorf("RateTest(0,100,3,100) = %v, want 0.125", p)
	}
	// With twice the traffic after, p=2/3: P(X ≥ 2 | n=2) = 4/9.
	if p := RateTest(0, 100, 2, 200); math.Abs(p-4.0/9) > 1e-12 {
		t.Errorf("RateTest(0,100,2,200) = %v, want 4/9", p)
	}
	if p := RateTest(45, 4500, 90, 4500); p > 1e-4 {
		t.Errorf("a doubled error rate: p = %v", p)
	}
	if p := RateTest(45, 4500, 45, 4500); p < 0.4 {
		t.Errorf("the same rate: p = %v", p)
	}
	if p := RateTest(10, 0, 5, 100); p != 1 {
		t.Errorf("no traffic before: p = %v", p)
	}
}

// p99s are per-interval p99 latencies of a service answering lognormal
// latencies at rate requests per interval, scaled by factor.
func p99s(r *rand.Rand, intervals, rate int, factor float64) []float64 {
	out := make([]float64, intervals)
	xs := make([]float64, rate)
	for i := range out {
		for j := range xs {
			xs[j] = factor * 0.05 * math.Exp(0.5*r.NormFloat64())
		}
		sort.Float64s(xs)
		out[i] = xs[int(0.99*float64(len(xs)-1))]
	}
	return out
}

func TestCompareSamples(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	before := p99s(r, 15, 300, 1)
	if err := compareSamples("p99", before, p99s(r, 15, 300, 1), true, DefaultAlpha, 0.1); err != nil {
		t.Errorf("unchanged: %v", err)
	}
	var we *WorseError
	if err := compareSamples("p99", before, p99s(r, 15, 300, 3), true, DefaultAlpha, 0.1); !errors.As(err, &we) {
		t.Errorf("×3: %v", err)
	}
	// Higher is better (an availability SLI, "> 0.99"): a drop is worse.
	if err := compareSamples("avail", []float64{0.999, 0.998, 0.999, 0.997, 0.999, 0.998, 0.999}, []float64{0.5, 0.6, 0.55, 0.5, 0.52, 0.58, 0.6}, false, DefaultAlpha, 0.1); !errors.As(err, &we) {
		t.Errorf("a drop of a higher-is-better SLI: %v", err)
	}
}

// simulated is the analysis the simulation runs: a 15-minute bake at a
// 1-minute interval, its error ratio compared by counts and its p99 by
// samples, with the default baseline.
var simulated = Config{Prometheus: "http://127.0.0.1:9090", SLIs: []SLI{
	{Name: "error_ratio", Query: "q", Condition: "< 0.05", Compare: "counts", Errors: "e[$window]", Total: "t[$window]"},
	{Name: "p99_seconds", Query: "q", Condition: "< 1", Compare: "samples"},
}}.WithDefaults()

// simulate is one bake of simulated at 5 requests/s: the error counts and
// per-interval p99s over the baseline before the switch and over the bake
// after it, with the error ratio and latency multiplied by the given
// factors after. It returns whether the counts test and the samples test
// roll back.
func simulate(r *rand.Rand, errFactor, latFactor float64) (errors, latency bool) {
	const rate, ratio = 5 * 60, 0.01
	minutes := int(time.Duration(simulated.Bake) / time.Minute)
	baseline := int(time.Duration(simulated.Baseline) / time.Minute)
	alpha := simulated.CompareAlpha()
	count := func(minutes int, f float64) (k, n float64) {
		for i := 0; i < rate*minutes; i++ {
			if r.Float64() < ratio*f {
				k++
			}
		}
		return k, float64(rate * minutes)
	}
	kb, nb := count(baseline, 1)
	ka, na := count(minutes, errFactor)
	errors = RateTest(kb, nb, ka, na) < alpha && ka/na > kb/nb
	latency = compareSamples("p99", p99s(r, baseline, rate, 1), p99s(r, minutes, rate, latFactor), true, alpha, 0.1) != nil
	return errors, latency
}

// TestSimulatedDecisions asserts decisions on injected changes large
// enough to be unambiguous (a tripled error ratio, doubled latency), with a
// fixed seed; the rates themselves are BenchmarkAnalysisSimulation's.
func TestSimulatedDecisions(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 20; i++ {
		if e, _ := simulate(r, 3, 1); !e {
			t.Fatalf("run %d: a tripled error ratio was not caught", i)
		}
		if _, l := simulate(r, 1, 2); !l {
			t.Fatalf("run %d: doubled latency was not caught", i)
		}
	}
}

// BenchmarkAnalysisSimulation prints the comparisons' false rollback rate
// on an unchanged release (each, and either) and their detection of a
// doubled error ratio and of +20% p99 within a 15-minute bake at 5
// requests/s.
func BenchmarkAnalysisSimulation(b *testing.B) {
	r := rand.New(rand.NewPCG(uint64(b.N), 11))
	const runs = 2000
	var falseErr, falseLat, falseAny, detErr, detLat int
	for i := 0; i < b.N; i++ {
		falseErr, falseLat, falseAny, detErr, detLat = 0, 0, 0, 0, 0
		for j := 0; j < runs; j++ {
			e, l := simulate(r, 1, 1)
			if e {
				falseErr++
			}
			if l {
				falseLat++
			}
			if e || l {
				falseAny++
			}
			if e, _ := simulate(r, 2, 1); e {
				detErr++
			}
			if _, l := simulate(r, 1, 1.2); l {
				detLat++
			}
		}
	}
	b.ReportMetric(100*float64(falseErr)/runs, "%false-errors")
	b.ReportMetric(100*float64(falseLat)/runs, "%false-latency")
	b.ReportMetric(100*float64(falseAny)/runs, "%false-rollbacks")
	b.ReportMetric(100*float64(detErr)/runs, "%detect-2x-errors")
	b.ReportMetric(100*float64(detLat)/runs, "%detect-p99+20%")
}

// TestCompareCountsBaseline runs a bake whose error counts are compared
// with the default baseline, twice the bake before the switch: the
// queries' windows are the baseline's and the bake's, and a tripled error
// rate is judged worse at the analysis' α while an equal one passes.
func TestCompareCountsBaseline(t *testing.T) {
	run := func(errorsAfter float64) error {
		f := &fake{values: map[string][]any{
			"ratio": {0.001}, "e[600s]": {20.0}, "t[600s]": {2000.0}, "e[300s]": {errorsAfter}, "t[300s]": {1000.0},
		}}
		now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		a := &Analyzer{
			Config: Config{Prometheus: "http://127.0.0.1:9090", Bake: config.Duration(5 * time.Minute), Interval: config.Duration(time.Minute),
				SLIs: []SLI{{Name: "error_ratio", Query: "ratio", Condition: "< 0.05", Compare: "counts", Errors: "e[$window]", Total: "t[$window]"}}},
			Querier: f,
			Now:     func() time.Time { return now },
			Sleep:   func(_ context.Context, d time.Duration) error { now = now.Add(d); return nil },
		}
		if got := a.Config.WithDefaults().CompareAlpha(); got != DefaultAlpha {
			t.Fatalf("one compared SLI: α = %v", got)
		}
		_, err := a.Bake(context.Background(), nil, nil)
		return err
	}
	var we *WorseError
	if err := run(30); !errors.As(err, &we) || !strings.Contains(err.Error(), "30 errors in 1000 events after (3%), 20 in 2000 before (1%)") {
		t.Errorf("tripled: %v", err)
	}
	if err := run(10); err != nil {
		t.Errorf("unchanged: %v", err)
	}
	two := simulated
	if got := two.CompareAlpha(); got != DefaultAlpha/2 {
		t.Errorf("two compared SLIs share α: %v", got)
	}
	if !strings.Contains(two.Plan(), "compared with the 30m0s before the switch, one-sided at α=0.005 each") {
		t.Errorf("plan: %s", two.Plan())
	}
}
