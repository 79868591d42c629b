package perf

import (
	"context"
	"slices"
	"testing"
)

func TestBenchstatFlagged(t *testing.T) {
	csv := []byte(`goos: linux
goarch: amd64
pkg: example.com/qualify
cpu: Intel(R) Xeon(R) Processor
,old.txt,,new.txt,,,
,sec/op,CI,sec/op,CI,vs base,P
Work-2,3.0e-05,1%,3.1e-05,1%,+3.20%,p=0.000 n=10
Join-2,7.2e-08,2%,7.1e-08,2%,~,p=0.280 n=10
Fill-2,2.1e-05,3%,2.0e-05,1%,-4.10%,p=0.001 n=10
geomean,1.0e-06,,1.0e-06,,+2.01%

,B/op,CI,B/op,CI,vs base,P
Work-2,0,0%,8,0%,+100.00%,p=0.000 n=10
`)
	if got := benchstatFlagged(csv); !slices.Equal(got, []string{"BenchmarkWork"}) {
		t.Errorf("flagged %v, want only BenchmarkWork (Fill got faster, B/op is not time)", got)
	}
}

// TestQualify runs the qualification end to end, briefly: a tenfold
// slowdown is caught by both modes, every case ran once, and the smallest caught
// slowdown says so.
func TestQualify(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs benchmarks")
	}
	cfg := DefaultConfig().Benchmarks
	cfg.Rounds, cfg.Benchtime, cfg.Threshold = 8, "20ms", 50
	q, err := Qualify(context.Background(), QualifyOptions{Benchmarks: cfg, Modes: []string{ModeInterleaved, ModeDuet}, Runs: 1, Slowdowns: []float64{9}})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Cases) != 4 {
		t.Fatalf("%d cases, want A/A and ×10 for two modes", len(q.Cases))
	}
	for _, c := range q.Cases {
		if c.Runs != 1 || c.Rounds != 8 {
			t.Errorf("%s %g: %d runs of %d rounds", c.Approach, c.Slowdown, c.Runs, c.Rounds)
		}
		if c.Slowdown == 9 && c.Detected != 1 {
			t.Errorf("%s missed a ×10 slowdown", c.Approach)
		}
	}
	for _, m := range []string{ModeInterleaved, ModeDuet} {
		if q.Smallest[m] != 9 {
			t.Errorf("smallest caught by %s: %v", m, q.Smallest[m])
		}
	}
	if _, err := Qualify(context.Background(), QualifyOptions{Modes: []string{"solo"}}); err == nil {
		t.Error("an unknown mode was accepted")
	}
}
