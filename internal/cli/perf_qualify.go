package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/check"
	"github.com/relcheck/relcheck/internal/atomicfile"
	"github.com/relcheck/relcheck/perf"
	"github.com/relcheck/relcheck/report"
)

// perfQualifyOptions are the inputs of `relcheck perf qualify`.
type perfQualifyOptions struct {
	*streams
	// Repo's relcheck.yaml gives the settings judged (perf.benchmarks).
	Repo, Config string
	Runs         int
	Slowdowns    []float64
	Modes        []string
	Benchstat    string
	Format       report.Format
	// Rounds per approach; Out, if set, is a JSON file kept up to date
	// after every run.
	Rounds map[string]int
	Out    string
}

func newPerfQualifyCmd(s *streams, runF func(context.Context, *perfQualifyOptions) error) *cobra.Command {
	o := &perfQualifyOptions{streams: s}
	var format, slowdowns, modes, rounds string
	cmd := &cobra.Command{
		Use:   "qualify",
		Short: "Measure what the perf gate can see on this machine: false alarms and the smallest slowdown it catches",
		Long: `Run the perf gate's judgement over and over on a sample module whose
BenchmarkWork is slowed down by known amounts (a calibrated busy loop), next
to two unchanged benchmarks, with the project's perf.benchmarks settings
(rounds, benchtime, threshold, alpha): an A/A head (any regression is a
false alarm) and each injected slowdown, every mode asked for, run by run.
It prints false alarms and detections per mode, seconds per run, and the
smallest slowdown caught in at least 90% of runs — what the gate can see on
this machine or CI runner.

It takes a while: about runs × (1 + slowdowns) × modes gate runs.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := report.ParseFormat(format)
			if err != nil || (f != report.FormatText && f != report.FormatJSON) {
				return usagef(cmd, "--format: text or json")
			}
			if o.Runs < 1 || o.Runs > 1000 {
				return usagef(cmd, "--runs: between 1 and 1000")
			}
			for _, p := range strings.Split(slowdowns, ",") {
				v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(p), "%"), 64)
				if err != nil || !(v > 0 && v <= 1000) {
					return usagef(cmd, "--slowdowns: %q is not a percentage like 5%%", p)
				}
				if !slices.Contains(o.Slowdowns, v/100) {
					o.Slowdowns = append(o.Slowdowns, v/100)
				}
			}
			slices.Sort(o.Slowdowns)
			for _, m := range strings.Split(modes, ",") {
				if m = strings.TrimSpace(m); m != perf.ModeDuet && m != perf.ModeInterleaved {
					return usagef(cmd, "--mode: %q is not duet or interleaved (give both as duet,interleaved)", m)
				}
				if !slices.Contains(o.Modes, m) {
					o.Modes = append(o.Modes, m)
				}
			}
			if o.Benchstat != "" {
				if _, err := exec.LookPath(o.Benchstat); err != nil {
					return usagef(cmd, "--benchstat: %v (install it with go install golang.org/x/perf/cmd/benchstat@latest)", err)
				}
			}
			o.Rounds = map[string]int{}
			for _, kv := range strings.Split(rounds, ",") {
				if strings.TrimSpace(kv) == "" {
					continue
				}
				k, v, _ := strings.Cut(kv, "=")
				n, err := strconv.Atoi(v)
				if k = strings.TrimSpace(k); (k != perf.ModeDuet && k != perf.ModeInterleaved && k != "benchstat") || err != nil || n < 6 || n > 1000 {
					return usagef(cmd, "--rounds: %q is not APPROACH=N (duet, interleaved, benchstat; 6 to 1000)", kv)
				}
				o.Rounds[k] = n
			}
			o.Format = f
			return run(cmd, runF, runPerfQualify, o)
		},
	}
	cmd.Flags().StringVar(&o.Repo, "repo", ".", "project whose relcheck.yaml perf.benchmarks settings are qualified (defaults without one)")
	cmd.Flags().StringVar(&o.Config, "config", "", "relcheck.yaml to read instead of the project's")
	cmd.Flags().IntVar(&o.Runs, "runs", 20, "gate runs per case and mode")
	cmd.Flags().StringVar(&slowdowns, "slowdowns", "2%,3%,5%,10%", "injected slowdowns, besides the A/A case")
	cmd.Flags().StringVar(&modes, "mode", "duet,interleaved", "modes to qualify: duet, interleaved, or both as duet,interleaved")
	cmd.Flags().StringVar(&o.Benchstat, "benchstat", "", "a benchstat binary: also judge the usual approach (all base runs, then all head runs, benchstat)")
	cmd.Flags().StringVar(&rounds, "rounds", "", "rounds per approach (APPROACH=N,...: duet, interleaved, benchstat's -count); the others use perf.benchmarks.rounds")
	cmd.Flags().StringVar(&o.Out, "out", "", "also write the JSON result to this file, updated after every run (a partial result survives an interrupted run)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func runPerfQualify(ctx context.Context, o *perfQualifyOptions) error {
	dir, err := filepath.Abs(o.Repo)
	if err != nil {
		return err
	}
	cfg, _, err := check.LoadConfigFor(dir, o.Config)
	if err != nil {
		return err
	}
	save := func(q *perf.Qualification) error {
		if o.Out == "" || q == nil {
			return nil
		}
		data, _ := json.MarshalIndent(q, "", "  ")
		return atomicfile.Write(o.Out, append(data, '\n'), 0o644)
	}
	q, err := perf.Qualify(ctx, perf.QualifyOptions{Benchmarks: cfg.Perf.Benchmarks, Modes: o.Modes, Runs: o.Runs, Slowdowns: o.Slowdowns, Benchstat: o.Benchstat, Rounds: o.Rounds,
		Progress: func(p perf.QualifyProgress) {
			if err := save(p.Partial); err != nil {
				fmt.Fprintf(o.err, "relcheck: warning: --out: %v\n", err)
			}
			left := ""
			if p.Left > 0 {
				left = fmt.Sprintf(", about %s left", p.Left.Round(1e9))
			}
			fmt.Fprintf(o.err, "relcheck: qualify %d/%d (%s)%s\n", p.Run, p.Runs, p.Case, left)
		}})
	if err != nil {
		return err
	}
	if err := save(q); err != nil {
		return err
	}
	if o.Format == report.FormatJSON {
		data, _ := json.MarshalIndent(q, "", "  ")
		fmt.Fprintf(o.out, "%s\n", data)
		return nil
	}
	writeQualification(o.out, q)
	return nil
}

// writeQualification prints the table: per approach, A/A false alarms
// and detections of each slowdown, seconds per run.
func writeQualification(w interface{ Write([]byte) (int, error) }, q *perf.Qualification) {
	benchstat := ""
	for _, c := range q.Cases {
		if c.Approach == "benchstat" {
			benchstat = " (benchstat: its own, 0.05)"
		}
	}
	fmt.Fprintf(w, "%d run(s) per case on %s (%d CPUs, load at the start %s); benchtime %s, threshold %g%%, α %g%s\n\n",
		q.Runs, q.Environment.CPU, q.Environment.NumCPU, q.Environment.LoadAvg, q.Benchtime, q.Threshold, q.Alpha, benchstat)
	var order []string
	by := map[string][]*perf.QualifyCase{}
	for _, c := range q.Cases {
		if by[c.Approach] == nil {
			order = append(order, c.Approach)
		}
		by[c.Approach] = append(by[c.Approach], c)
	}
	header := fmt.Sprintf("%-24s %-30s", "approach", "A/A false alarms per benchmark")
	for _, c := range by[order[0]][1:] {
		header += fmt.Sprintf(" %12s", fmt.Sprintf("+%g%% caught", 100*c.Slowdown))
	}
	fmt.Fprintf(w, "%s %10s %s\n", header, "s/run", "  smallest caught ≥90%")
	for _, a := range order {
		cs := by[a]
		aa := cs[0]
		line := fmt.Sprintf("%-24s %-30s", fmt.Sprintf("%s, %d rounds", a, aa.Rounds), fmt.Sprintf("%s of %d", alarms(aa), aa.Runs))
		secs := 0.0
		for _, c := range cs {
			secs += c.SecondsPerRun()
		}
		for _, c := range cs[1:] {
			line += fmt.Sprintf(" %12s", fmt.Sprintf("%d/%d", c.Detected, c.Runs))
		}
		smallest := "none"
		if s := q.Smallest[a]; s > 0 {
			smallest = fmt.Sprintf("+%g%%", 100*s)
		}
		fmt.Fprintf(w, "%s %10.1f   %s\n", line, secs/float64(len(cs)), smallest)
	}
	for _, c := range q.Cases {
		if c.Slowdown > 0 && len(c.FalseAlarms) > 0 {
			fmt.Fprintf(w, "%s, +%g%%: unchanged benchmarks flagged too: %s\n", c.Approach, 100*c.Slowdown, alarms(c))
		}
	}
}

func alarms(c *perf.QualifyCase) string {
	var parts []string
	for _, name := range []string{"BenchmarkWork", "BenchmarkJoin", "BenchmarkFill"} {
		parts = append(parts, fmt.Sprintf("%s %d", strings.TrimPrefix(name, "Benchmark"), c.FalseAlarms[name]))
	}
	return strings.Join(parts, ", ")
}
