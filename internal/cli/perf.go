package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/perf"
	"github.com/relcheck/relcheck/report"
)

func newPerfCmd(s *streams) *cobra.Command {
	cmd := parent("perf", "Work with saved perf results, qualify the gate on this machine, chart the history", "relcheck perf compare, relcheck perf qualify or relcheck perf history")
	cmd.AddCommand(newPerfCompareCmd(s, nil), newPerfQualifyCmd(s, nil), newPerfHistoryCmd(s, nil))
	return cmd
}

// perfCompareOptions are the inputs of `relcheck perf compare`.
type perfCompareOptions struct {
	*streams
	// Files are RESULTS, or OLD and NEW.
	Files  []string
	Format report.Format
	// Threshold is the smallest slowdown that counts, a fraction (0.05).
	Threshold float64
	Alpha     float64
}

func newPerfCompareCmd(s *streams, runF func(context.Context, *perfCompareOptions) error) *cobra.Command {
	o := &perfCompareOptions{streams: s}
	def := perf.DefaultConfig().Benchmarks
	var format, threshold string
	cmd := &cobra.Command{
		Use:   "compare RESULTS | OLD NEW",
		Short: "Recompute the perf verdict from saved results, or compare two runs",
		Long: `With one file, recompute the verdict of a run saved with
'relcheck check perf --save RESULTS' (base against head, candidates against
their confirmation rounds).

With two files, compare OLD (as base) with NEW (as head): each is saved
results (their head side) or Go benchmark output as written by
'go test -bench' (several -count runs make the samples). No confirmation
rounds exist then: a significant slowdown above the threshold counts.

Exit codes as for 'relcheck check': 0 no regression, 1 a regression,
2 unreadable input.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usagef(cmd, "%s takes 1 or 2 files, got %d", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := report.ParseFormat(format)
			if err != nil {
				return usagef(cmd, "--format: %v", err)
			}
			th, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(threshold), "%"), 64)
			if err != nil || th < 0 {
				return usagef(cmd, "--threshold: %q is not a percentage like 5%%", threshold)
			}
			if o.Alpha <= 0 || o.Alpha >= 0.5 {
				return usagef(cmd, "--alpha: must be above 0 and below 0.5")
			}
			o.Files, o.Format, o.Threshold = args, f, th/100
			return run(cmd, runF, runPerfCompare, o)
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json, github, markdown or sarif")
	cmd.Flags().StringVar(&threshold, "threshold", fmt.Sprintf("%g%%", float64(def.Threshold)), "smallest slowdown that counts")
	cmd.Flags().Float64Var(&o.Alpha, "alpha", def.Alpha, "one-sided significance level")
	return cmd
}

func runPerfCompare(ctx context.Context, o *perfCompareOptions) error {
	var loaded []*perf.Results
	for _, a := range o.Files {
		r, err := perf.Load(a)
		if err != nil {
			return err
		}
		loaded = append(loaded, r)
	}
	res, confirm := loaded[0], true
	if len(loaded) == 2 {
		res, confirm = perf.Against(loaded[0], loaded[1]), false
	} else if res.Raw["base"] == "" && res.Base == "" {
		return report.Inputf("%s has one side only: give an OLD and a NEW file to compare", o.Files[0])
	}
	chk := &report.Check{Name: "perf", Findings: []report.Finding{}, Metrics: map[string]any{}}
	perf.Evaluate(res, perf.Stats{Alpha: o.Alpha, Threshold: o.Threshold}, confirm, chk)
	rep := &report.Report{Repo: ".", Base: orName(res.Base, o.Files[0]), Head: orName(res.Head, o.Files[len(o.Files)-1]), Checks: []*report.Check{chk}}
	rep.Settle()
	if err := writeReport(o.streams, rep, o.Format, ""); err != nil {
		return err
	}
	return rep.Outcome()
}

func orName(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
