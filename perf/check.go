package perf

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relcheck/relcheck/internal/gitx"
	"github.com/relcheck/relcheck/report"
)

// Rule ids of the perf gate, raised in this file from the statistics of
// stats.go (benchmarks) and the runs of scenario.go.
const (
	RuleRegression = "perf/regression"
	RuleSLO        = "perf/slo"
)

// Rules lists the rule ids of the perf gate.
var Rules = []string{RuleRegression, RuleSLO}

// Options are the inputs of Check.
type Options struct {
	// Root is the git repository's top-level directory; Dir the module
	// directory in it.
	Root, Dir string
	// Base is the ref of the base release; empty for a first release.
	Base, Head string
	Benchmarks BenchmarkConfig
	// Budget caps the time of the whole run (0: no cap); what it leaves out
	// is reported.
	Budget time.Duration
	// Save, if set, is the file the results are saved to (JSON, and the raw
	// benchmark output of each side next to it).
	Save string
	// History, if set, is a perf history file (history.go) this run's
	// record is appended to.
	History string
	// Progress, if set, is told about each round.
	Progress func(Progress)
	// Scenarios are the load scenarios (ParseScenarios); ConfigFile is
	// where they are declared, relative to Root.
	Scenarios  []*Scenario
	ConfigFile string
}

// Progress is the state of a long perf run.
type Progress struct {
	Phase string // "rounds" or "confirmation"
	Done  int
	Total int
	// Left estimates the time still needed (0: not known yet).
	Left time.Duration
}

// Check runs the perf gate's benchmarks at base and head.
func Check(ctx context.Context, opts Options) (*report.Check, error) {
	start := time.Now()
	chk := &report.Check{Name: "perf", Findings: []report.Finding{}, Metrics: map[string]any{}}
	if opts.History != "" {
		if err := CheckHistory(opts.History); err != nil {
			return nil, err
		}
	}
	if opts.Base == "" {
		chk.Summary = "first release: no base release to compare with"
		chk.Settle()
		return chk, nil
	}
	work, err := os.MkdirTemp("", "relcheck-perf-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	rel, err := filepath.Rel(opts.Root, opts.Dir)
	if err != nil {
		return nil, err
	}
	baseTree := filepath.Join(work, "tree")
	for _, d := range []string{baseTree, filepath.Join(work, "base"), filepath.Join(work, "head")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := (&gitx.Repo{Root: opts.Root}).Archive(ctx, opts.Base, baseTree); err != nil {
		return nil, fmt.Errorf("checking out %s: %w", opts.Base, err)
	}
	headPkgs, failed, err := binaries(ctx, opts.Dir, opts.Benchmarks.Packages, filepath.Join(work, "head"))
	if err != nil {
		return nil, err
	}
	if len(failed) > 0 {
		return nil, failed[0]
	}
	basePkgs, failed, err := binaries(ctx, filepath.Join(baseTree, rel), opts.Benchmarks.Packages, filepath.Join(work, "base"))
	if err != nil {
		chk.Findings = append(chk.Findings, report.Finding{Rule: RuleRegression, Severity: report.SeverityWarning,
			Message: fmt.Sprintf("the benchmarks at %s could not be listed, so none were compared: %v", opts.Base, err),
			Fix:     "check that the base release builds with this Go toolchain"})
		basePkgs = nil
	}
	for _, be := range failed {
		chk.Findings = append(chk.Findings, report.Finding{Rule: RuleRegression, Severity: report.SeverityWarning, Symbol: be.Package,
			Message: fmt.Sprintf("the tests of %s do not build at %s, so its benchmarks were not compared: %s", be.Package, opts.Base, lastLines(be.Output, 3)),
			Fix:     "check that the base release builds with this Go toolchain"})
	}

	res := &Results{Version: ResultsVersion, Environment: environment(), Base: opts.Base, Head: opts.Head,
		Benchtime: opts.Benchmarks.Benchtime, Rounds: opts.Benchmarks.Rounds, Raw: map[string]string{}}
	r := &runner{opts: opts, res: res, start: start, raw: map[Side]*strings.Builder{Base: {}, Head: {}}, bins: map[string]*[2]*pkgBin{}}
	res.Mode = ModeInterleaved
	if opts.Benchmarks.Mode != ModeInterleaved {
		if cpus := duetCPUs(); len(cpus) >= 2 {
			r.duet, res.Mode = cpus[len(cpus)-2:], ModeDuet
		} else {
			chk.Notes = append(chk.Notes, fmt.Sprintf("perf.benchmarks.mode duet needs two CPUs and this process may use %d: the rounds ran interleaved", len(cpus)))
		}
	}
	for side, pkgs := range [][]*pkgBin{basePkgs, headPkgs} {
		for _, p := range pkgs {
			if r.bins[p.Rel] == nil {
				r.bins[p.Rel] = &[2]*pkgBin{}
				r.order = append(r.order, p.Rel)
			}
			r.bins[p.Rel][side] = p
		}
	}
	st := opts.stats()
	if err := r.benchmarks(ctx, st); err != nil {
		return nil, err
	}
	for i, sc := range opts.Scenarios {
		sr, err := r.scenario(ctx, sc, i, filepath.Join(baseTree, rel), work)
		if err != nil {
			return nil, err
		}
		res.Scenarios = append(res.Scenarios, sr)
	}
	res.Raw["base"], res.Raw["head"] = r.raw[Base].String(), r.raw[Head].String()
	res.BenchSeconds = r.benchTime.Seconds()
	res.WallSeconds = time.Since(start).Seconds()

	Evaluate(res, st, true, chk)
	if opts.Save != "" {
		files, err := res.Save(opts.Save)
		if err != nil {
			return nil, fmt.Errorf("saving the results: %w", err)
		}
		chk.Notes = append(chk.Notes, "results saved to "+strings.Join(files, ", "))
	}
	if opts.History != "" && len(res.Benchmarks) > 0 {
		if err := AppendHistory(opts.History, NewHistoryRecord(res, orDefault(opts.Head, "head"))); err != nil {
			return nil, fmt.Errorf("adding to the perf history: %w", err)
		}
		chk.Notes = append(chk.Notes, fmt.Sprintf("added to the perf history %s (relcheck perf history %s shows it)", opts.History, opts.History))
	}
	chk.DurationMs = time.Since(start).Milliseconds()
	return chk, nil
}

// paired reports whether a unit's samples are duet pairs.
func (res *Results) paired(u *UnitSamples) bool {
	return res.Mode == ModeDuet && len(u.Base) == len(u.Head)
}

// compare judges a unit's samples: paired in duet rounds, else as two
// samples.
func (res *Results) compare(st Stats, u *UnitSamples) Comparison {
	if res.paired(u) {
		return st.ComparePaired(u.Base, u.Head)
	}
	return st.Compare(u.Base, u.Head)
}

func (opts Options) stats() Stats {
	return Stats{Alpha: opts.Benchmarks.Alpha, Threshold: float64(opts.Benchmarks.Threshold) / 100}
}

type runner struct {
	opts  Options
	res   *Results
	start time.Time
	// bins are the test binaries per package directory, base and head;
	// order lists the directories.
	bins      map[string]*[2]*pkgBin
	order     []string
	raw       map[Side]*strings.Builder
	benchTime time.Duration
	// duet are the two CPUs of duet rounds (nil: interleaved).
	duet []int
}

// rounds runs up to n interleaved rounds of every package's benchmarks (or
// only of the named ones, by package directory), within the time budget.
func (r *runner) rounds(ctx context.Context, phase string, n int, only map[string][]string) ([]*Bench, int, error) {
	byKey := map[string]*Bench{}
	var benches []*Bench
	roundStart := time.Now()
	done := 0
	for ; done < n; done++ {
		if ctx.Err() != nil {
			return nil, done, ctx.Err()
		}
		if r.opts.Budget > 0 && done > 0 {
			per := time.Since(roundStart) / time.Duration(done)
			if time.Since(r.start)+per > r.opts.Budget {
				break
			}
		}
		// Interleaved: each package's base and head run back to back, in
		// the order base, head | head, base | ... Duet: at the same time,
		// one per CPU, swapping CPUs every round.
		sides := []Side{Base, Head}
		if done%2 == 1 {
			sides = []Side{Head, Base}
		}
		for _, rel := range r.order {
			pattern := r.opts.Benchmarks.Pattern
			if only != nil {
				names := only[rel]
				if len(names) == 0 {
					continue
				}
				pattern = anchored(names)
			}
			outs, err := r.runPair(ctx, rel, pattern, sides)
			if err != nil {
				if ctx.Err() != nil {
					return nil, done, ctx.Err()
				}
				return nil, done, err
			}
			for _, side := range sides {
				out := outs[side]
				if out == nil {
					continue
				}
				if only == nil {
					r.raw[side].Write(out.Raw)
				}
				p := r.bins[rel][side]
				for _, res := range out.Results {
					b := &Bench{Package: p.ImportPath, Dir: p.Rel, Name: res.Name}
					if have := byKey[b.key()]; have != nil {
						b = have
					} else {
						b.Units = map[string]*UnitSamples{}
						byKey[b.key()] = b
						benches = append(benches, b)
					}
					if side == Head && b.File == "" {
						b.Package = p.ImportPath // the head's name wins
						if file, line := locate(p.Dir, res.Name); file != "" {
							if f, err := filepath.Rel(r.opts.Root, file); err == nil {
								b.File, b.Line = filepath.ToSlash(f), line
							}
						}
					}
					for u, v := range res.Values {
						b.add(side, u, v)
					}
				}
			}
		}
		if r.opts.Progress != nil {
			left := time.Since(roundStart) / time.Duration(done+1) * time.Duration(n-done-1)
			r.opts.Progress(Progress{Phase: phase, Done: done + 1, Total: n, Left: left})
		}
	}
	if done < n && r.opts.Progress != nil {
		r.opts.Progress(Progress{Phase: phase + " (stopped: time budget)", Done: done, Total: n})
	}
	return benches, done, nil
}

// benchmarks runs the rounds of every package's benchmarks, then fresh
// rounds of the candidate regressions (only confirmed ones count), into
// r.res.
func (r *runner) benchmarks(ctx context.Context, st Stats) error {
	opts, res := r.opts, r.res
	var err error
	// Interleaved rounds: base, head | head, base | base, head ...
	if len(r.order) > 0 {
		res.Benchmarks, res.RoundsRun, err = r.rounds(ctx, "rounds", opts.Benchmarks.Rounds, nil)
		if err != nil {
			return err
		}
	}
	if len(r.order) > 0 && res.RoundsRun < opts.Benchmarks.Rounds {
		res.Skipped = append(res.Skipped, fmt.Sprintf("rounds %d–%d of %d (time budget %s)", res.RoundsRun+1, opts.Benchmarks.Rounds, opts.Benchmarks.Rounds, opts.Budget))
	}
	// Candidates are re-run in fresh rounds; only confirmed ones count.
	candidates := map[string][]string{} // package dir → names
	for _, b := range res.Benchmarks {
		if u := b.Units["sec/op"]; u != nil && res.compare(st, u).Verdict == Regression {
			candidates[b.Dir] = append(candidates[b.Dir], b.Name)
		}
	}
	var names []string
	for _, ns := range candidates {
		names = append(names, ns...)
	}
	slices.Sort(names)
	if len(candidates) > 0 && opts.Budget > 0 && time.Since(r.start) >= opts.Budget {
		res.Skipped = append(res.Skipped, fmt.Sprintf("confirmation rounds for %s (time budget %s)", strings.Join(names, ", "), opts.Budget))
	} else if len(candidates) > 0 {
		var done int
		res.Confirm, done, err = r.rounds(ctx, "confirmation", opts.Benchmarks.Rounds, candidates)
		if err != nil {
			return err
		}
		if done < opts.Benchmarks.Rounds {
			res.Skipped = append(res.Skipped, fmt.Sprintf("confirmation rounds %d–%d of %d for %s (time budget %s)", done+1, opts.Benchmarks.Rounds, opts.Benchmarks.Rounds, strings.Join(names, ", "), opts.Budget))
		}
	}
	return nil
}

// runPair runs one package's benchmarks at base and at head: one after
// the other in the order of sides (interleaved), or at the same time on
// two CPUs, base on the first in even rounds (duet).
func (r *runner) runPair(ctx context.Context, rel, pattern string, sides []Side) ([2]*run, error) {
	var outs [2]*run
	var errs [2]error
	run := func(side Side, cpus, pin int) {
		p := r.bins[rel][side]
		if p == nil {
			return
		}
		outs[side], errs[side] = runBinary(ctx, p, pattern, r.opts.Benchmarks.Benchtime, cpus, pin)
	}
	if r.duet != nil {
		pins := [2]int{r.duet[0], r.duet[1]}
		if sides[0] == Head {
			pins = [2]int{r.duet[1], r.duet[0]}
		}
		start := time.Now()
		var wg sync.WaitGroup
		for _, side := range sides {
			wg.Add(1)
			go func() { defer wg.Done(); run(side, 1, pins[side]) }()
		}
		wg.Wait()
		r.benchTime += time.Since(start)
	} else {
		for _, side := range sides {
			run(side, procs, -1)
			if outs[side] != nil {
				r.benchTime += outs[side].Elapsed
			}
			if errs[side] != nil {
				break
			}
		}
	}
	for _, side := range sides {
		if errs[side] != nil {
			return outs, fmt.Errorf("a benchmark failed at the %s: %w", side, errs[side])
		}
	}
	return outs, nil
}

// Evaluate judges results into chk: a perf/regression error for each
// slowdown (confirmed by the fresh rounds in res.Confirm when confirm is
// set) and each increase of allocs/op or B/op, a warning for each benchmark
// too noisy to judge, notes for the rest.
func Evaluate(res *Results, st Stats, confirm bool, chk *report.Check) {
	again := map[string]*Bench{}
	for _, b := range res.Confirm {
		again[b.key()] = b
	}
	var rows []map[string]any
	var unstable, same, improved, onlyOne int
	regressed := map[string]bool{}
	for _, b := range res.Benchmarks {
		loc := (*report.Location)(nil)
		if b.File != "" {
			loc = &report.Location{File: b.File, Line: b.Line}
		}
		t := b.Units["sec/op"]
		if t == nil {
			chk.Notes = append(chk.Notes, fmt.Sprintf("%s: no time per operation, not compared", b.FullName()))
			onlyOne++
			continue
		}
		if len(t.Base) == 0 || len(t.Head) == 0 {
			side := "head"
			if len(t.Head) == 0 {
				side = "base"
			}
			chk.Notes = append(chk.Notes, fmt.Sprintf("%s: only at the %s, not compared", b.FullName(), side))
			onlyOne++
			continue
		}
		c := res.compare(st, t)
		confirmed := false
		if c.Verdict == Regression && confirm {
			if cb := again[b.key()]; cb != nil && cb.Units["sec/op"] != nil {
				u := cb.Units["sec/op"]
				if res.paired(u) && res.paired(t) {
					c = st.ConfirmPaired(c, st.ComparePaired(u.Base, u.Head))
				} else {
					c = st.Confirm(c, st.Compare(u.Base, u.Head))
				}
				confirmed = c.Verdict == Regression
			} else {
				c.Verdict, c.Why = Unstable, "a regression in the first rounds could not be confirmed: "+orDefault(strings.Join(res.Skipped, "; "), "no confirmation rounds ran")
			}
		}
		row := map[string]any{"benchmark": b.FullName(), "unit": "sec/op", "comparison": c}
		rows = append(rows, row)
		stat := fmt.Sprintf("%s → %s per op (×%.3f, %.0f%% CI %.3f–%.3f, p=%.2g, n=%d+%d)", formatTime(c.BaseMedian), formatTime(c.HeadMedian), c.Ratio, 100*st.confidence(), c.Lo, c.Hi, c.P, c.N1, c.N2)
		verdict := c.Verdict
		switch c.Verdict {
		case Regression:
			regressed[b.FullName()] = true
			how := ""
			if confirmed {
				how = "; confirmed in fresh rounds"
			}
			chk.Findings = append(chk.Findings, report.Finding{Rule: RuleRegression, Severity: report.SeverityError, Symbol: b.FullName(), Location: loc,
				Message: fmt.Sprintf("%s is %.1f%% slower: %s%s", b.Name, 100*(c.Ratio-1), stat, how),
				Fix:     fmt.Sprintf("find what slowed it down since %s (go test -bench '%s' -cpuprofile cpu.out, then go tool pprof); the threshold is perf.benchmarks.threshold (%.0f%%)", orDefault(res.Base, "the base"), anchored([]string{b.Name}), 100*st.Threshold)})
		case Unstable:
			chk.Findings = append(chk.Findings, report.Finding{Rule: RuleRegression, Severity: report.SeverityWarning, Symbol: b.FullName(), Location: loc,
				Message: fmt.Sprintf("%s could not be judged: %s (%s)", b.Name, c.Why, stat),
				Fix:     "make the benchmark steadier (less I/O, fixed inputs), raise perf.benchmarks.rounds or benchtime, or run on a quieter machine"})
		case Improvement:
			chk.Notes = append(chk.Notes, fmt.Sprintf("%s is %.1f%% faster: %s", b.FullName(), 100*(1-c.Ratio), stat))
		}
		for _, unit := range []string{"allocs/op", "B/op"} {
			u := b.Units[unit]
			if u == nil {
				continue
			}
			from, to, worse := ExactChange(u.Base, u.Head)
			rows = append(rows, map[string]any{"benchmark": b.FullName(), "unit": unit, "base": from, "head": to})
			if worse {
				regressed[b.FullName()] = true
				chk.Findings = append(chk.Findings, report.Finding{Rule: RuleRegression, Severity: report.SeverityError, Symbol: b.FullName(), Location: loc,
					Message: fmt.Sprintf("%s: %s went from %g to %g (%+g; every head run above every base run)", b.Name, unit, from, to, to-from),
					Fix:     fmt.Sprintf("find the new allocation (go test -bench '%s' -memprofile mem.out, then go tool pprof -sample_index=alloc_space)", anchored([]string{b.Name}))})
			}
		}
		switch {
		case regressed[b.FullName()]:
		case verdict == Unstable:
			unstable++
		case verdict == Improvement:
			improved++
		default:
			same++
		}
	}
	chk.Metrics["benchmarks"] = rows
	chk.Metrics["roundsRun"] = res.RoundsRun
	chk.Metrics["rounds"] = res.Rounds
	chk.Metrics["benchSeconds"] = round2(res.BenchSeconds)
	chk.Metrics["wallSeconds"] = round2(res.WallSeconds)
	chk.Metrics["environment"] = res.Environment
	if len(res.Skipped) > 0 {
		chk.Metrics["skipped"] = res.Skipped
		chk.Notes = append(chk.Notes, "skipped: "+strings.Join(res.Skipped, "; "))
	}
	chk.Settle()
	how := "compared"
	if res.RoundsRun > 0 {
		how = fmt.Sprintf("in %d %s round(s)", res.RoundsRun, orDefault(res.Mode, ModeInterleaved))
	}
	if res.Mode == ModeDuet {
		chk.Notes = append(chk.Notes, fmt.Sprintf("duet rounds: base and head ran at the same time, one per CPU (GOMAXPROCS 1), swapping CPUs each round; judged on each round's ratio head/base: one-sided Wilcoxon signed-rank test at α=%g, Hodges–Lehmann ratio with its %.0f%% interval, threshold %.0f%%", st.Alpha, 100*st.confidence(), 100*st.Threshold))
	}
	chk.Summary = fmt.Sprintf("%d benchmark(s) %s: %d regressed, %d unchanged, %d faster, %d too noisy to judge",
		len(res.Benchmarks)-onlyOne, how, len(regressed), same, improved, unstable)
	if onlyOne > 0 {
		chk.Summary += fmt.Sprintf(", %d on one side only", onlyOne)
	}
	if res.WallSeconds > 0 {
		chk.Summary += fmt.Sprintf(" (benchmarks ran %.0f s of %.0f s)", res.BenchSeconds, res.WallSeconds)
	}
	evaluateScenarios(res, st.Alpha, chk)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }

// formatTime formats seconds per operation.
func formatTime(s float64) string {
	switch {
	case s >= 1:
		return fmt.Sprintf("%.3g s", s)
	case s >= 1e-3:
		return fmt.Sprintf("%.3g ms", s*1e3)
	case s >= 1e-6:
		return fmt.Sprintf("%.3g µs", s*1e6)
	}
	return fmt.Sprintf("%.3g ns", s*1e9)
}

// scenario builds a load scenario's program at base and head and runs it in
// interleaved rounds, a fresh process each time.
func (r *runner) scenario(ctx context.Context, sc *Scenario, i int, baseMod, work string) (*ScenarioResult, error) {
	dirs := [2]string{baseMod, r.opts.Dir}
	sr := &ScenarioResult{Name: sc.Name, Rate: sc.Rate, Threshold: float64(sc.Threshold), SLO: sc.SLO, ConfigFile: r.opts.ConfigFile, Line: sc.Line}
	if err := buildProgram(ctx, dirs[Head], sc.Build, exePath(work, Head, i)); err != nil {
		return nil, &ScenarioError{Msg: fmt.Sprintf("%s: building %s at the head: %s", sc.Name, sc.Build, lastLines(err.(*BuildError).Output, 10))}
	}
	withBase := true
	if err := buildProgram(ctx, dirs[Base], sc.Build, exePath(work, Base, i)); err != nil {
		// A new program: its objectives are still checked at head.
		withBase = false
		sr.NoBase = fmt.Sprintf("%s does not build at %s: %s", sc.Build, orDefault(r.opts.Base, "the base"), lastLines(err.(*BuildError).Output, 2))
	}
	var dbs *scenarioDBs
	if sc.Database != nil {
		var err error
		if dbs, err = sc.provision(ctx, dirs, [2]bool{withBase, true}); err != nil {
			return nil, err
		}
		defer dbs.Close()
		sr.Database = dbs.About
	}
	sr.Metrics = sc.Metrics
	start := time.Now()
	for round := 0; round < sc.Rounds; round++ {
		if r.opts.Budget > 0 && round > 0 && time.Since(r.start)+time.Since(start)/time.Duration(round) > r.opts.Budget {
			r.res.Skipped = append(r.res.Skipped, fmt.Sprintf("%s: rounds %d–%d of %d (time budget %s)", sc.Name, round+1, sc.Rounds, sc.Rounds, r.opts.Budget))
			break
		}
		sides := []Side{Base, Head}
		if round%2 == 1 {
			sides = []Side{Head, Base}
		}
		for _, side := range sides {
			if side == Base && !withBase {
				continue
			}
			dsn, done := "", func() {}
			if dbs != nil {
				var err error
				if dsn, done, err = dbs.round(ctx, side); err != nil {
					return nil, &ScenarioError{Msg: fmt.Sprintf("%s: a copy of the database at the %s: %v", sc.Name, side, err)}
				}
			}
			rs, err := sc.runRound(ctx, side, exePath(work, side, i), dirs[side], dsn)
			done()
			if err != nil {
				return nil, err
			}
			if side == Base {
				sr.Base = append(sr.Base, rs)
			} else {
				sr.Head = append(sr.Head, rs)
			}
		}
		if r.opts.Progress != nil {
			left := time.Since(start) / time.Duration(round+1) * time.Duration(sc.Rounds-round-1)
			r.opts.Progress(Progress{Phase: "scenario " + sc.Name, Done: round + 1, Total: sc.Rounds, Left: left})
		}
	}
	return sr, nil
}

// evaluateScenarios judges the load scenarios: perf/slo for an objective
// violated at head (over all its rounds), perf/regression for a
// significant slowdown of the per-round median or 99th percentile.
func evaluateScenarios(res *Results, alpha float64, chk *report.Check) {
	byName := map[string]*ScenarioResult{}
	var rows []map[string]any
	for _, sr := range res.Scenarios {
		byName[sr.Name] = sr
		var loc *report.Location
		if sr.ConfigFile != "" {
			loc = &report.Location{File: sr.ConfigFile, Line: sr.Line}
		}
		st := Stats{Alpha: alpha, Threshold: sr.Threshold / 100}
		if sr.NoBase != "" {
			chk.Notes = append(chk.Notes, fmt.Sprintf("scenario %s: not compared with the base (%s); its objectives are checked at head", sr.Name, sr.NoBase))
		}
		for _, m := range []struct {
			name string
			get  func(*roundStats) float64
		}{{"p50", func(r *roundStats) float64 { return r.P50 }}, {"p99", func(r *roundStats) float64 { return r.P99 }}} {
			if sr.NoBase != "" {
				break
			}
			var b, h []float64
			for _, r := range sr.Base {
				b = append(b, m.get(r))
			}
			for _, r := range sr.Head {
				h = append(h, m.get(r))
			}
			c := st.Compare(b, h)
			rows = append(rows, map[string]any{"scenario": sr.Name, "metric": m.name + " latency", "comparison": c})
			stat := fmt.Sprintf("%s → %s (×%.3f, %.0f%% CI %.3f–%.3f, p=%.2g, %d+%d rounds at %d req/s)", formatTime(c.BaseMedian), formatTime(c.HeadMedian), c.Ratio, 100*st.confidence(), c.Lo, c.Hi, c.P, c.N1, c.N2, sr.Rate)
			switch c.Verdict {
			case Regression:
				chk.Findings = append(chk.Findings, report.Finding{Rule: RuleRegression, Severity: report.SeverityError, Symbol: sr.Name, Location: loc,
					Message: fmt.Sprintf("scenario %s: %s latency is %.1f%% higher: %s", sr.Name, m.name, 100*(c.Ratio-1), stat),
					Fix:     fmt.Sprintf("profile the program under this load (net/http/pprof) and compare with %s; the threshold is the scenario's threshold (%.0f%%)", orDefault(res.Base, "the base"), sr.Threshold)})
			case Unstable:
				chk.Findings = append(chk.Findings, report.Finding{Rule: RuleRegression, Severity: report.SeverityWarning, Symbol: sr.Name, Location: loc,
					Message: fmt.Sprintf("scenario %s: %s latency could not be judged: %s (%s)", sr.Name, m.name, c.Why, stat),
					Fix:     "raise the scenario's rounds or duration, or run on a quieter machine"})
			case Improvement:
				chk.Notes = append(chk.Notes, fmt.Sprintf("scenario %s: %s latency is %.1f%% lower: %s", sr.Name, m.name, 100*(1-c.Ratio), stat))
			}
		}
		if sr.Database != "" {
			chk.Notes = append(chk.Notes, fmt.Sprintf("scenario %s: database: %s", sr.Name, sr.Database))
		}
		// The program's own metrics, per round, as the latencies.
		for _, name := range sr.Metrics {
			if sr.NoBase != "" {
				break
			}
			var b, h []float64
			newAtHead := false
			for _, r := range sr.Base {
				v, ok := r.Metrics[name]
				newAtHead = newAtHead || !ok
				b = append(b, v)
			}
			if newAtHead {
				chk.Notes = append(chk.Notes, fmt.Sprintf("scenario %s: the program at %s does not export %s: compared from the next release on", sr.Name, orDefault(res.Base, "the base"), name))
				continue
			}
			for _, r := range sr.Head {
				h = append(h, r.Metrics[name])
			}
			c := st.Compare(b, h)
			rows = append(rows, map[string]any{"scenario": sr.Name, "metric": name, "comparison": c})
			stat := fmt.Sprintf("%.4g → %.4g per round (×%.3f, %.0f%% CI %.3f–%.3f, p=%.2g, %d+%d rounds at %d req/s)", c.BaseMedian, c.HeadMedian, c.Ratio, 100*st.confidence(), c.Lo, c.Hi, c.P, c.N1, c.N2, sr.Rate)
			switch c.Verdict {
			case Regression:
				chk.Findings = append(chk.Findings, report.Finding{Rule: RuleRegression, Severity: report.SeverityError, Symbol: sr.Name + " " + name, Location: loc,
					Message: fmt.Sprintf("scenario %s: the program's %s is %.1f%% higher: %s", sr.Name, name, 100*(c.Ratio-1), stat),
					Fix:     fmt.Sprintf("find what makes %s grow under this load since %s; the threshold is the scenario's threshold (%.0f%%)", name, orDefault(res.Base, "the base"), sr.Threshold)})
			case Unstable:
				chk.Notes = append(chk.Notes, fmt.Sprintf("scenario %s: %s could not be judged: %s (%s)", sr.Name, name, c.Why, stat))
			case Improvement:
				chk.Notes = append(chk.Notes, fmt.Sprintf("scenario %s: %s is %.1f%% lower: %s", sr.Name, name, 100*(1-c.Ratio), stat))
			default:
				chk.Notes = append(chk.Notes, fmt.Sprintf("scenario %s: %s unchanged: %s", sr.Name, name, stat))
			}
		}
		// Absolute objectives, over every request at head (and at base, for
		// comparison).
		pool := func(rounds []*roundStats) (lat []float64, errs, n int) {
			for _, r := range rounds {
				lat = append(lat, r.Latencies...)
				errs += r.Errors
				n += r.Requests
			}
			slices.Sort(lat)
			return lat, errs, n
		}
		hl, he, hn := pool(sr.Head)
		bl, be, bn := pool(sr.Base)
		for _, text := range sr.SLO {
			o, err := parseSLO(text)
			if err != nil {
				continue // checked when the configuration was read
			}
			hv, bv := o.value(hl, he, hn), o.value(bl, be, bn)
			rows = append(rows, map[string]any{"scenario": sr.Name, "slo": o.text, "head": hv, "base": bv})
			ok := hv < o.limit || (o.le && hv == o.limit)
			if ok {
				continue
			}
			chk.Findings = append(chk.Findings, report.Finding{Rule: RuleSLO, Severity: report.SeverityError, Symbol: sr.Name, Location: loc,
				Message: fmt.Sprintf("scenario %s violates %q at head: %s is %s (base: %s), over %d requests at %d req/s", sr.Name, o.text, o.metric, o.format(hv), o.format(bv), hn, sr.Rate),
				Fix:     "find what the head does slower under load, or revise the objective if it was never met"})
		}
	}
	if len(rows) > 0 {
		chk.Metrics["scenarios"] = rows
	}
	if n := len(res.Scenarios); n > 0 {
		slos, slower := 0, 0
		for _, f := range chk.Findings {
			switch {
			case f.Rule == RuleSLO:
				slos++
			case f.Severity == report.SeverityError && f.Rule == RuleRegression:
				for name := range byName {
					if f.Symbol == name || strings.HasPrefix(f.Symbol, name+" ") {
						slower++
						break
					}
				}
			}
		}
		part := fmt.Sprintf("%d load scenario(s): %d objective(s) violated, %d latency or program metric(s) worse", n, slos, slower)
		if len(res.Benchmarks) == 0 {
			chk.Summary = part
		} else {
			chk.Summary += "; " + part
		}
		chk.Settle()
	}
}

// value is the objective's metric over sorted latencies and error counts.
func (o slo) value(lat []float64, errs, n int) float64 {
	switch {
	case o.metric == "errors":
		if n == 0 {
			return 0
		}
		return float64(errs) / float64(n)
	case o.metric == "max":
		if len(lat) == 0 {
			return 0
		}
		return lat[len(lat)-1]
	case o.metric == "mean":
		s := 0.0
		for _, x := range lat {
			s += x
		}
		return s / math.Max(1, float64(len(lat)))
	}
	q, _ := strconv.ParseFloat(o.metric[1:], 64)
	return quantile(lat, q/100)
}

func (o slo) format(v float64) string {
	if o.metric == "errors" {
		return fmt.Sprintf("%.2f%%", 100*v)
	}
	return formatTime(v)
}
