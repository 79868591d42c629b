package perf

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relcheck/relcheck/report"
)

// Qualifying the detector on this machine: a sample module with a
// calibrated busy loop (BenchmarkWork) and two unchanged benchmarks
// (BenchmarkJoin, short; BenchmarkFill, allocating) is built once as the
// base and once per injected slowdown, then judged run after run exactly
// as the gate judges a pull request (rounds, then confirmation), for an
// A/A head and for each slowdown, in every mode asked for, interleaved run
// by run so that every mode sees the same load. A detection is a
// perf/regression on BenchmarkWork; a false alarm is one on an unchanged
// benchmark (any of them in the A/A case).

// QualifyOptions are the inputs of Qualify.
type QualifyOptions struct {
	// Benchmarks are the settings judged (rounds, benchtime, threshold,
	// alpha); Modes the modes qualified (default: Benchmarks.Mode).
	Benchmarks BenchmarkConfig
	Modes      []string
	// Runs per case and mode; Slowdowns the injected ones (0.05: +5%),
	// besides the A/A case.
	Runs      int
	Slowdowns []float64
	// Benchstat, when set, is a benchstat binary: each run also judges
	// the usual approach (all base runs, then all head runs, -count
	// rounds, benchstat's own significance test at its default α=0.05).
	Benchstat string
	// Rounds overrides Benchmarks.Rounds per approach (duet, interleaved,
	// benchstat: its -count).
	Rounds map[string]int
	// Progress is told about each run.
	Progress func(QualifyProgress)
}

// QualifyProgress is the state of a qualification.
type QualifyProgress struct {
	Run, Runs int
	Case      string
	Left      time.Duration
	// Partial is the qualification so far (complete runs of every case
	// and approach).
	Partial *Qualification
}

// Qualification is what Qualify measured.
type Qualification struct {
	Environment Environment `json:"environment"`
	Rounds      int         `json:"rounds"`
	Benchtime   string      `json:"benchtime"`
	Threshold   float64     `json:"thresholdPercent"`
	Alpha       float64     `json:"alpha"`
	Runs        int         `json:"runs"`
	// Cases are one per approach and injected slowdown (0: A/A).
	Cases []*QualifyCase `json:"cases"`
	// Smallest is, per approach, the smallest injected slowdown caught in
	// at least 90% of runs (0: none of them).
	Smallest map[string]float64 `json:"smallest"`
}

// QualifyCase is one approach's record on one injected slowdown.
type QualifyCase struct {
	Approach string  `json:"approach"`
	Slowdown float64 `json:"slowdown"`
	// Rounds are the approach's rounds per run (benchstat: -count).
	Rounds int `json:"rounds"`
	Runs   int `json:"runs"`
	// Detected counts runs that flagged BenchmarkWork (a false alarm in
	// the A/A case); FalseAlarms the runs that flagged each unchanged
	// benchmark.
	Detected    int            `json:"detected"`
	FalseAlarms map[string]int `json:"falseAlarms"`
	Seconds     float64        `json:"seconds"`
}

// SecondsPerRun is the case's mean wall time per run.
func (c *QualifyCase) SecondsPerRun() float64 {
	if c.Runs == 0 {
		return 0
	}
	return c.Seconds / float64(c.Runs)
}

// qualifySample is the sample module; WORK's loop runs factor/1000 times
// the base's, set at build time.
const qualifySample = `package qualify

import (
	"strconv"
	"strings"
)

var factor = "1000"

var units, _ = strconv.Atoi(factor)

// Work does a calibrated amount of arithmetic: units/1000 of 100 000 steps.
func Work() int {
	s := 0
	for i := 0; i < 100*units; i++ {
		s += i % 7
	}
	return s
}

// Join builds a string.
func Join(parts []string) string { return strings.Join(parts, ",") }

var sink map[int]int

// Fill fills a map.
func Fill(n int) {
	sink = make(map[int]int)
	for i := 0; i < n; i++ {
		sink[i] = i
	}
}
`

const qualifyTests = `package qualify

import "testing"

func BenchmarkWork(b *testing.B) {
	for i := 0; i < b.N; i++ {
		Work()
	}
}

func BenchmarkJoin(b *testing.B) {
	parts := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for i := 0; i < b.N; i++ {
		Join(parts)
	}
}

func BenchmarkFill(b *testing.B) {
	for i := 0; i < b.N; i++ {
		Fill(1000)
	}
}
`

// Qualify measures how often the gate cries wolf and how often it finds
// an injected slowdown on this machine.
func Qualify(ctx context.Context, opts QualifyOptions) (*Qualification, error) {
	if opts.Runs <= 0 {
		opts.Runs = 20
	}
	if len(opts.Modes) == 0 {
		opts.Modes = []string{orDefault(opts.Benchmarks.Mode, ModeDuet)}
	}
	for _, m := range opts.Modes {
		if m != ModeDuet && m != ModeInterleaved {
			return nil, report.OptionErrorf("mode", "%q is not a mode (duet, interleaved)", m)
		}
	}
	for _, s := range opts.Slowdowns {
		if !(s > 0 && s <= 10) {
			return nil, report.OptionErrorf("slowdowns", "%g%% is not a slowdown between 0 and 1000%%", 100*s)
		}
	}
	if opts.Benchmarks.Rounds == 0 {
		opts.Benchmarks = DefaultConfig().Benchmarks
	}
	work, err := os.MkdirTemp("", "relcheck-qualify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	mod := filepath.Join(work, "mod")
	os.MkdirAll(mod, 0o755)
	for name, src := range map[string]string{"go.mod": "module example.com/qualify\n\ngo 1.22\n", "work.go": qualifySample, "work_test.go": qualifyTests} {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(src), 0o644); err != nil {
			return nil, err
		}
	}
	slowdowns := append([]float64{0}, opts.Slowdowns...)
	bins := map[float64]string{}
	for _, s := range slowdowns {
		bin := filepath.Join(work, fmt.Sprintf("work-%g.test", s))
		units := strconv.Itoa(int(1000*(1+s) + 0.5))
		cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, "-ldflags=-X example.com/qualify.factor="+units, ".")
		cmd.Dir = mod
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building the qualification's benchmarks: %v: %s", err, lastLines(string(out), 10))
		}
		bins[s] = bin
	}
	q := &Qualification{Environment: environment(), Rounds: opts.Benchmarks.Rounds, Benchtime: opts.Benchmarks.Benchtime,
		Threshold: float64(opts.Benchmarks.Threshold), Alpha: opts.Benchmarks.Alpha, Runs: opts.Runs, Smallest: map[string]float64{}}
	approaches := slices.Clone(opts.Modes)
	if opts.Benchstat != "" {
		approaches = append(approaches, "benchstat")
	}
	cases := map[string]*QualifyCase{}
	for _, a := range approaches {
		for _, s := range slowdowns {
			c := &QualifyCase{Approach: a, Slowdown: s, Rounds: roundsOf(opts, a), FalseAlarms: map[string]int{}}
			cases[fmt.Sprintf("%s %g", a, s)] = c
			q.Cases = append(q.Cases, c)
		}
	}
	start := time.Now()
	total := opts.Runs * len(slowdowns)
	for run := 0; run < opts.Runs; run++ {
		for i, s := range slowdowns {
			if opts.Progress != nil {
				done := run*len(slowdowns) + i
				var left time.Duration
				if done > 0 {
					left = time.Since(start) / time.Duration(done) * time.Duration(total-done)
				}
				opts.Progress(QualifyProgress{Run: done + 1, Runs: total, Case: caseName(s), Left: left, Partial: q.smallest(i == 0)})
			}
			for _, a := range approaches {
				c := cases[fmt.Sprintf("%s %g", a, s)]
				t0 := time.Now()
				var flagged []string
				cfg := opts.Benchmarks
				cfg.Rounds = c.Rounds
				if a == "benchstat" {
					flagged, err = benchstatRun(ctx, opts.Benchstat, cfg, mod, bins[0], bins[s])
				} else {
					flagged, err = qualifyRun(ctx, cfg, a, mod, bins[0], bins[s])
				}
				if err != nil {
					return nil, err
				}
				c.Seconds += time.Since(t0).Seconds()
				c.Runs++
				for _, name := range flagged {
					if name == "BenchmarkWork" && s > 0 {
						c.Detected++
					} else {
						c.FalseAlarms[name]++
					}
				}
			}
		}
	}
	return q.smallest(true), nil
}

// smallest sets Smallest from the cases, when complete; it returns q.
func (q *Qualification) smallest(complete bool) *Qualification {
	if !complete {
		return nil
	}
	q.Smallest = map[string]float64{}
	for _, c := range q.Cases {
		if c.Slowdown > 0 && c.Runs > 0 && float64(c.Detected) >= 0.9*float64(c.Runs) && (q.Smallest[c.Approach] == 0 || c.Slowdown < q.Smallest[c.Approach]) {
			q.Smallest[c.Approach] = c.Slowdown
		}
	}
	return q
}

// roundsOf is an approach's rounds: Rounds' override, else the settings'.
func roundsOf(opts QualifyOptions, approach string) int {
	if n := opts.Rounds[approach]; n > 0 {
		return n
	}
	return opts.Benchmarks.Rounds
}

func caseName(s float64) string {
	if s == 0 {
		return "A/A"
	}
	return fmt.Sprintf("+%g%%", 100*s)
}

// qualifyRun judges one run as the gate does and returns the benchmarks
// it flagged.
func qualifyRun(ctx context.Context, cfg BenchmarkConfig, mode, dir, base, head string) ([]string, error) {
	cfg.Mode = mode
	opts := Options{Benchmarks: cfg}
	res := &Results{Mode: ModeInterleaved, Rounds: cfg.Rounds, Benchtime: cfg.Benchtime}
	r := &runner{opts: opts, res: res, start: time.Now(), raw: map[Side]*strings.Builder{Base: {}, Head: {}},
		bins:  map[string]*[2]*pkgBin{".": {{ImportPath: "example.com/qualify", Rel: ".", Dir: dir, Bin: base}, {ImportPath: "example.com/qualify", Rel: ".", Dir: dir, Bin: head}}},
		order: []string{"."}}
	if mode == ModeDuet {
		cpus := duetCPUs()
		if len(cpus) < 2 {
			return nil, report.OptionErrorf("mode", "duet needs two CPUs and this process may use %d", len(cpus))
		}
		r.duet, res.Mode = cpus[len(cpus)-2:], ModeDuet
	}
	st := opts.stats()
	if err := r.benchmarks(ctx, st); err != nil {
		return nil, err
	}
	chk := &report.Check{Name: "perf", Metrics: map[string]any{}}
	Evaluate(res, st, true, chk)
	var flagged []string
	for _, f := range chk.Findings {
		if f.Severity == report.SeverityError {
			flagged = append(flagged, f.Symbol[strings.LastIndex(f.Symbol, ".")+1:])
		}
	}
	return flagged, nil
}

// benchstatRun is the usual approach: all base runs, then all head runs
// (go test's -count), compared by benchstat; a benchmark is flagged when
// benchstat calls its sec/op change significant and positive.
func benchstatRun(ctx context.Context, benchstat string, cfg BenchmarkConfig, dir, base, head string) ([]string, error) {
	var files []string
	for i, bin := range []string{base, head} {
		cmd := exec.CommandContext(ctx, bin, "-test.run=^$", "-test.bench=.", "-test.benchmem",
			"-test.benchtime="+cfg.Benchtime, "-test.count="+strconv.Itoa(cfg.Rounds))
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("running the benchmarks: %v", err)
		}
		f := filepath.Join(filepath.Dir(base), []string{"old.txt", "new.txt"}[i])
		if err := os.WriteFile(f, out, 0o644); err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	out, err := exec.CommandContext(ctx, benchstat, "-format", "csv", files[0], files[1]).Output()
	if err != nil {
		return nil, fmt.Errorf("benchstat: %v", err)
	}
	return benchstatFlagged(out), nil
}

// benchstatFlagged reads benchstat's CSV: in the sec/op table, a row like
// "Work-2,1.5e-05,1%,1.7e-05,1%,+13.32%,p=0.002 n=10" is a significant
// slowdown ("~" when not significant).
func benchstatFlagged(csv []byte) []string {
	var out []string
	on := false
	sc := bufio.NewScanner(bytes.NewReader(csv))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.Contains(l, ",sec/op,"):
			on = true
			continue
		case strings.TrimSpace(l) == "":
			on = false
			continue
		}
		f := strings.Split(l, ",")
		if !on || len(f) < 6 || !strings.HasPrefix(f[5], "+") || !strings.HasSuffix(f[5], "%") {
			continue
		}
		name, _, _ := strings.Cut(f[0], "-")
		if name == "geomean" { // the table's summary row, not a benchmark
			continue
		}
		out = append(out, "Benchmark"+name)
	}
	return out
}
