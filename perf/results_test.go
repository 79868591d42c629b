package perf

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/relcheck/relcheck/report"
)

const benchText = `goos: linux
goarch: amd64
pkg: example.com/pb
BenchmarkWork-2     	    1195	     19526 ns/op	       0 B/op	       0 allocs/op
BenchmarkWork-2     	    1200	     19000 ns/op	       0 B/op	       0 allocs/op
BenchmarkAlloc/size=8-2   	 1000000	        30 ns/op	      64 B/op	       1 allocs/op
`

func TestLoadBenchText(t *testing.T) {
	f := filepath.Join(t.TempDir(), "new.txt")
	os.WriteFile(f, []byte(benchText), 0o644)
	r, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Benchmarks) != 2 || r.Benchmarks[0].Name != "BenchmarkWork-2" || r.Benchmarks[0].Package != "example.com/pb" {
		t.Fatalf("benchmarks = %+v", r.Benchmarks)
	}
	w := r.Benchmarks[0].Units["sec/op"]
	if len(w.Head) != 2 || math.Abs(w.Head[0]-19526e-9) > 1e-15 {
		t.Errorf("BenchmarkWork sec/op = %v", w.Head)
	}
	if r.Benchmarks[1].Name != "BenchmarkAlloc/size=8-2" || r.Benchmarks[1].Units["allocs/op"].Head[0] != 1 {
		t.Errorf("sub-benchmark = %+v", r.Benchmarks[1])
	}
	if got := anchored([]string{"BenchmarkAlloc/size=8", "BenchmarkWork"}); got != "^BenchmarkAlloc$/^size=8$|^BenchmarkWork$" {
		t.Errorf("anchored = %q", got)
	}

	// Saved results round-trip, and two runs compare as base and head.
	saved := &Results{Version: ResultsVersion, Base: "v1", Head: "abc", Rounds: 2, RoundsRun: 2, Benchmarks: r.Benchmarks, Raw: map[string]string{"base": "", "head": benchText}}
	out := filepath.Join(t.TempDir(), "res.json")
	files, err := saved.Save(out)
	if err != nil || len(files) != 3 {
		t.Fatal(files, err)
	}
	back, err := Load(out)
	if err != nil || back.Head != "abc" || len(back.Benchmarks) != 2 {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	pair := Against(back, r)
	if u := pair.Benchmarks[0].Units["sec/op"]; len(u.Base) != 2 || len(u.Head) != 2 {
		t.Errorf("against: %+v", u)
	}
	chk := &report.Check{Name: "perf", Findings: []report.Finding{}, Metrics: map[string]any{}}
	Evaluate(pair, Stats{Alpha: 0.01, Threshold: 0.05, Confidence: 0.95}, false, chk)
	if chk.Status != report.StatusWarn { // 2 samples: too few to judge
		t.Errorf("status %s: %+v", chk.Status, chk.Findings)
	}
}

// FuzzLoad: any file given to relcheck perf compare is read or refused
// with an input error, never a crash.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(benchText))
	f.Add([]byte(`{"version": 1, "benchmarks": [{"name": "BenchmarkX", "units": {"sec/op": {"base": [1], "head": [2]}}}]}`))
	f.Add([]byte(`{"version": 1, "benchmarks": [null]}`))
	f.Add([]byte(`{"version": 1, "scenarios": [{"name": "a", "rate": 5, "threshold": 10, "slo": ["p99 < 1ms"], "base": [{"latencies": [0.1], "p50": 0.1, "p99": 0.1, "requests": 1}], "head": [null]}]}`))
	f.Add([]byte(`{"version": 1, "scenarios": [{"name": "a", "rate": 5, "threshold": 10, "slo": ["p99 < 1ms", "bad"], "base": [{"latencies": [0.1], "p50": 0.1, "p99": 0.1, "requests": 1}], "head": [{"latencies": [0.3, 0.2], "p50": 0.2, "p99": 0.3, "requests": 2, "errors": 1}]}]}`))
	f.Add([]byte("BenchmarkX 10 5 ns/op\nBenchmarkX-2 x 5 ns/op\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "in")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Load(p)
		if err != nil {
			if _, ok := err.(*report.InputError); !ok {
				t.Fatalf("not an input error: %v", err)
			}
			return
		}
		chk := &report.Check{Name: "perf", Findings: []report.Finding{}, Metrics: map[string]any{}}
		Evaluate(Against(r, r), Stats{Alpha: 0.01, Threshold: 0.05, Confidence: 0.95}, false, chk)
		Evaluate(r, Stats{Alpha: 0.01, Threshold: 0.05, Confidence: 0.95}, true, chk)
	})
}

func TestLoadRejects(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"null-units":   `{"version": 1, "benchmarks": [{"name": "BenchmarkX", "units": {"sec/op": null}}]}`,
		"null-confirm": `{"version": 1, "benchmarks": [], "confirm": [null]}`,
		"future":       `{"version": 2, "something": 1}`,
		"negative":     `{"version": 1, "benchmarks": [{"name": "BenchmarkX", "units": {"sec/op": {"base": [-1], "head": [1]}}}]}`,
	} {
		f := filepath.Join(dir, name)
		os.WriteFile(f, []byte(data), 0o644)
		if _, err := Load(f); err == nil {
			t.Errorf("%s: loaded", name)
		} else if _, ok := err.(*report.InputError); !ok {
			t.Errorf("%s: %v is not an input error", name, err)
		}
	}
	// Two packages with the same benchmark name stay apart.
	f := filepath.Join(dir, "two.txt")
	os.WriteFile(f, []byte("pkg: a\nBenchmarkX-2 10 5 ns/op\npkg: b\nBenchmarkX-2 10 500 ns/op\n"), 0o644)
	r, err := Load(f)
	if err != nil || len(r.Benchmarks) != 2 || r.Benchmarks[1].Package != "b" {
		t.Errorf("two packages: %+v, %v", r, err)
	}
}

func TestParseNames(t *testing.T) {
	out := "pkg: p\nBenchmarkD/size-64-2 10 5 ns/op\nBenchmarkD/size-1024-2 10 50 ns/op\nBenchmarkN-2 10 NaN ns/op\n"
	rs, err := parse([]byte(out), "x", 2)
	if err != nil || len(rs) != 2 || rs[0].Name != "BenchmarkD/size-64" || rs[1].Name != "BenchmarkD/size-1024" || rs[0].Pkg != "p" {
		t.Errorf("parse = %+v, %v", rs, err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x_test.go"), []byte("package x\n\nimport \"testing\"\n\nfunc BenchmarkA(*testing.B) {}\n\nfunc BenchmarkB(\n\tb *testing.B,\n) {\n}\n"), 0o644)
	if f, line := locate(dir, "BenchmarkB/sub"); filepath.Base(f) != "x_test.go" || line != 7 {
		t.Errorf("locate BenchmarkB = %s:%d", f, line)
	}
	if _, line := locate(dir, "BenchmarkA"); line != 5 {
		t.Errorf("locate BenchmarkA = %d", line)
	}
	if !HasBenchmarks(dir) {
		t.Error("HasBenchmarks = false")
	}
}
