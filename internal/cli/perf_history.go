package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/internal/atomicfile"
	"github.com/relcheck/relcheck/perf"
	"github.com/relcheck/relcheck/report"
)

// perfHistoryOptions are the inputs of `relcheck perf history`.
type perfHistoryOptions struct {
	*streams
	File   string
	HTML   string
	Format report.Format
}

func newPerfHistoryCmd(s *streams, runF func(context.Context, *perfHistoryOptions) error) *cobra.Command {
	o := &perfHistoryOptions{streams: s}
	var format string
	cmd := &cobra.Command{
		Use:   "history FILE",
		Short: "Show each benchmark's median and interval per run, from a perf history file",
		Long: `Read a perf history (JSON lines, one record per run, written by
'relcheck check perf --history FILE') and show each benchmark's median time
per operation and its 95% interval per run, so drift across releases shows,
not only base against head. --html writes a page with a chart per
benchmark.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef(cmd, "%s takes the history file", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := report.ParseFormat(format)
			if err != nil || (f != report.FormatText && f != report.FormatJSON) {
				return usagef(cmd, "--format: text or json")
			}
			o.File, o.Format = args[0], f
			return run(cmd, runF, runPerfHistory, o)
		},
	}
	cmd.Flags().StringVar(&o.HTML, "html", "", "also write an HTML page with a chart per benchmark to this file")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func runPerfHistory(ctx context.Context, o *perfHistoryOptions) error {
	f, err := os.Open(o.File)
	if err != nil {
		return report.Inputf("%v", err)
	}
	defer f.Close()
	recs, err := perf.ReadHistory(f, o.File)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return report.Inputf("%s has no records yet: add one with relcheck check perf --history %s", o.File, o.File)
	}
	if o.HTML != "" {
		var b bytes.Buffer
		if err := perf.WriteHistoryHTML(&b, recs); err != nil {
			return err
		}
		if err := atomicfile.Write(o.HTML, b.Bytes(), 0o644); err != nil {
			return report.OptionErrorf("HTML", "cannot write %s: %v", o.HTML, errors.Unwrap(err))
		}
	}
	series := perf.Series(recs)
	if o.Format == report.FormatJSON {
		data, _ := json.MarshalIndent(series, "", "  ")
		fmt.Fprintf(o.out, "%s\n", data)
		return nil
	}
	for _, s := range series {
		fmt.Fprintf(o.out, "%s\n", s.Name)
		first := s.Points[0]
		for i, p := range s.Points {
			change := "first run"
			if i > 0 {
				change = fmt.Sprintf("%+.1f%% since %s", 100*(p.Median/first.Median-1), perf.RunLabel(recs, first.Run))
			}
			ratio := ""
			if p.Ratio > 0 {
				ratio = fmt.Sprintf("  ×%.3f against its base", p.Ratio)
			}
			fmt.Fprintf(o.out, "  %-24s %s  %10s  [%s – %s]  %s%s\n", perf.RunLabel(recs, p.Run), p.Time.Format("2006-01-02 15:04"), perf.FormatTime(p.Median), perf.FormatTime(p.Lo), perf.FormatTime(p.Hi),
				change, ratio)
		}
	}
	if o.HTML != "" {
		fmt.Fprintf(o.out, "wrote %s\n", o.HTML)
	}
	return nil
}
