package perf

import (
	"math"
	"math/rand/v2"
	"testing"
)

var defaultStats = Stats{Alpha: 0.01, Threshold: 0.05} // as the gate runs: a 98% interval

// sample draws n timings around mean with log-normal noise of relative
// spread sigma and, with probability outlier, a 2× stall (a noisy CI
// machine).
func sample(r *rand.Rand, n int, mean, sigma, outlier float64) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = mean * math.Exp(sigma*r.NormFloat64())
		if r.Float64() < outlier {
			xs[i] *= 2
		}
	}
	return xs
}

// rates simulates runs of the gate's decision on base (mean 1) and head
// (mean 1×effect) — a comparison, and for a regression a confirmation on
// fresh samples — and returns how often each verdict came out.
func rates(seed uint64, runs, n int, effect, sigma, outlier float64) map[Verdict]float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := map[Verdict]float64{}
	for i := 0; i < runs; i++ {
		c := defaultStats.Compare(sample(r, n, 1, sigma, outlier), sample(r, n, effect, sigma, outlier))
		if c.Verdict == Regression {
			c = defaultStats.Confirm(c, defaultStats.Compare(sample(r, n, 1, sigma, outlier), sample(r, n, effect, sigma, outlier)))
		}
		out[c.Verdict] += 1 / float64(runs)
	}
	return out
}

// TestFalseAlarms: with no change, the gate practically never reports a
// regression, even with occasional 2× stalls.
func TestFalseAlarms(t *testing.T) {
	for _, tc := range []struct {
		sigma, outlier float64
	}{{0.02, 0}, {0.05, 0}, {0.03, 0.05}, {0.15, 0}} {
		got := rates(1, 2000, 10, 1, tc.sigma, tc.outlier)
		if got[Regression] > 0.001 {
			t.Errorf("A/A with noise %.0f%%, stalls %.0f%%: regression in %.2f%% of runs", 100*tc.sigma, 100*tc.outlier, 100*got[Regression])
		}
	}
}

// TestPower: a 10% slowdown with a few percent of noise is found nearly
// always with 10 rounds.
func TestPower(t *testing.T) {
	got := rates(2, 2000, 10, 1.10, 0.03, 0)
	if got[Regression] < 0.95 {
		t.Errorf("+10%% with 3%% noise found in %.1f%% of runs, want ≥ 95%%", 100*got[Regression])
	}
	got = rates(3, 2000, 10, 1.30, 0.05, 0.05)
	if got[Regression] < 0.85 || got[Same] > 0 {
		t.Errorf("+30%% with 5%% noise and stalls: %v", got)
	}
}

// TestNeverBlindPass: when the noise hides a real slowdown, the verdict is
// "unstable", not "same".
func TestNeverBlindPass(t *testing.T) {
	got := rates(4, 2000, 10, 1.10, 0.25, 0)
	if got[Same] > 0.01 {
		t.Errorf("+10%% under 25%% noise judged unchanged in %.1f%% of runs", 100*got[Same])
	}
	if c := defaultStats.Compare([]float64{1, 1, 1}, []float64{2, 2, 2}); c.Verdict != Unstable {
		t.Errorf("3 samples each: %s, want unstable", c.Verdict)
	}
}

// TestRatioInterval: the reported interval covers the true ratio about as
// often as its confidence says.
func TestRatioInterval(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 1))
	covered, runs := 0, 2000
	for i := 0; i < runs; i++ {
		c := defaultStats.Compare(sample(r, 10, 1, 0.05, 0), sample(r, 10, 1.2, 0.05, 0))
		if c.Lo <= 1.2 && 1.2 <= c.Hi {
			covered++
		}
	}
	if f := float64(covered) / float64(runs); f < 0.95 || f > 0.997 {
		t.Errorf("98%% interval covered the true ratio in %.1f%% of runs", 100*f)
	}
	c := defaultStats.Compare([]float64{10, 10, 10, 10, 10, 10}, []float64{13, 13, 13, 13, 13, 13})
	if math.Abs(c.Ratio-1.3) > 1e-9 || c.Verdict != Regression || c.P >= 0.01 {
		t.Errorf("constant 10 vs 13: %+v", c)
	}
}

func TestConfirm(t *testing.T) {
	ones := func(v float64) []float64 {
		return []float64{v, v * 1.001, v * 0.999, v, v * 1.002, v * 0.998, v, v * 1.001, v * 0.999, v}
	}
	first := defaultStats.Compare(ones(1), ones(1.2))
	if first.Verdict != Regression {
		t.Fatalf("first: %+v", first)
	}
	if c := defaultStats.Confirm(first, defaultStats.Compare(ones(1), ones(1.2))); c.Verdict != Regression || c.N1 != 20 {
		t.Errorf("confirmed: %+v", c)
	}
	if c := defaultStats.Confirm(first, defaultStats.Compare(ones(1), ones(0.99))); c.Verdict == Regression || c.Why == "" {
		t.Errorf("fresh rounds faster: %+v", c)
	}
}

func TestExactChange(t *testing.T) {
	if from, to, worse := ExactChange([]float64{2, 2, 2}, []float64{3, 3, 3}); !worse || from != 2 || to != 3 {
		t.Errorf("2 → 3 allocs: %v %v %v", from, to, worse)
	}
	if _, _, worse := ExactChange([]float64{2, 2}, []float64{2, 2}); worse {
		t.Error("unchanged allocs flagged")
	}
}

func TestNormalQuantile(t *testing.T) {
	for p, want := range map[float64]float64{0.5: 0, 0.975: 1.959964, 0.995: 2.575829, 0.01: -2.326348} {
		if got := normalQuantile(p); math.Abs(got-want) > 1e-5 {
			t.Errorf("normalQuantile(%v) = %v, want %v", p, got, want)
		}
	}
}

// TestSameNeedsTheIntervalBelowThreshold: a slowdown whose interval lies
// above the threshold is never called unchanged, even when p misses alpha.
func TestSameNeedsTheIntervalBelowThreshold(t *testing.T) {
	base := []float64{1, 1.001, 0.999, 1.002, 0.998, 1, 1.001, 0.999, 1, 1}
	head := []float64{1.10, 1.101, 1.099, 1.1, 1.102, 1.098, 1.1, 1.1, 0.98, 0.985}
	c := defaultStats.Compare(base, head)
	if c.Verdict == Same {
		t.Errorf("×%.3f [%.3f, %.3f], p=%.3g judged unchanged", c.Ratio, c.Lo, c.Hi, c.P)
	}
	// Ties: head faster at equal ratio estimate is not "slower".
	c = defaultStats.Compare([]float64{1, 1, 1, 1, 1, 1}, []float64{1, 1, 1, 1, 0.5, 0.5})
	if c.P < 0.5 {
		t.Errorf("p(head slower) = %v for a faster head", c.P)
	}
}

func TestSignedRankTest(t *testing.T) {
	// All five differences positive: only one of the 2^5 sign patterns
	// has a rank sum as high.
	if above, below := SignedRankTest([]float64{1, 2, 3, 4, 5}); math.Abs(above-1.0/32) > 1e-12 || below != 1 {
		t.Errorf("all positive: %v, %v", above, below)
	}
	// The smallest negative: W+ = 14; sums 14 and 15 are 2 patterns of 32.
	if above, _ := SignedRankTest([]float64{-1, 2, 3, 4, 5}); math.Abs(above-2.0/32) > 1e-12 {
		t.Errorf("one small negative: %v", above)
	}
	// Zeros are dropped; ties use the normal approximation.
	if above, below := SignedRankTest([]float64{0, 0, 0}); above != 1 || below != 1 {
		t.Errorf("only zeros: %v, %v", above, below)
	}
	tied := []float64{1, 1, 1, 1, 1, 1, 1, 1, -1, -1}
	above, below := SignedRankTest(tied)
	if above < 0.02 || above > 0.08 || below < above {
		t.Errorf("8 of 10 tied positive: %v, %v", above, below)
	}
}

// duetSamples are n paired rounds of a benchmark on a shared machine: each
// round's interference (up to ±30%) hits base and head alike, each run
// adds 0.3% of its own noise, and head is slower by factor.
func duetSamples(r *rand.Rand, n int, factor float64) (base, head []float64) {
	for i := 0; i < n; i++ {
		shared := 1 + 0.3*(r.Float64()-0.5)*2
		base = append(base, 1e-6*shared*(1+0.003*r.NormFloat64()))
		head = append(head, 1e-6*factor*shared*(1+0.003*r.NormFloat64()))
	}
	return base, head
}

// TestComparePaired: paired rounds see a 3% slowdown through interference
// that hides it from the unpaired test, and an unchanged head passes.
func TestComparePaired(t *testing.T) {
	st := Stats{Alpha: 0.01, Threshold: 0.01}
	r := rand.New(rand.NewPCG(3, 4))
	base, head := duetSamples(r, 10, 1.03)
	if c := st.ComparePaired(base, head); c.Verdict != Regression || c.Ratio < 1.02 || c.Ratio > 1.04 || c.Lo > 1.03 || c.Hi < 1.03 {
		t.Errorf("paired +3%%: %+v", c)
	}
	if c := st.Compare(base, head); c.Verdict == Regression {
		t.Errorf("the unpaired test saw +3%% through ±30%% interference: %+v", c)
	}
	base, head = duetSamples(r, 10, 1)
	if c := st.ComparePaired(base, head); c.Verdict != Same {
		t.Errorf("paired A/A: %+v", c)
	}
	if c := st.ComparePaired(base[:4], head[:4]); c.Verdict != Unstable {
		t.Errorf("4 pairs: %+v", c)
	}
	// Confirmation pools the pairs; fresh pairs that do not repeat the
	// slowdown leave it unconfirmed.
	b1, h1 := duetSamples(r, 10, 1.05)
	b2, h2 := duetSamples(r, 10, 1.05)
	first, again := st.ComparePaired(b1, h1), st.ComparePaired(b2, h2)
	if c := st.ConfirmPaired(first, again); c.Verdict != Regression {
		t.Errorf("confirmed +5%%: %+v", c)
	}
	b2, h2 = duetSamples(r, 10, 1)
	if c := st.ConfirmPaired(first, st.ComparePaired(b2, h2)); c.Verdict == Regression {
		t.Errorf("a +5%% not repeated by fresh pairs was confirmed: %+v", c)
	}
}
