package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/check"
	"github.com/relcheck/relcheck/report"
)

// checkOptions are the inputs of `relcheck check`.
type checkOptions struct {
	*streams
	Gates      []string
	Repo       string
	Base       string
	Config     string
	Format     report.Format
	Output     string
	JSONReport string
	SARIF      string
	// DatabaseURL is a PostgreSQL server for the migrations gate.
	DatabaseURL string
	// Save, History and Budget are for the perf gate.
	Save, History string
	Budget        time.Duration
}

func newCheckCmd(s *streams, runF func(context.Context, *checkOptions) error) *cobra.Command {
	o := &checkOptions{streams: s}
	var format string
	cmd := &cobra.Command{
		Use:   "check [gate ...]",
		Short: "Run the release gates on HEAD against the last release",
		Long: `Run the release gates (default: every gate the repository has) on the
working tree, compared with the base: the highest vX.Y.Z tag reachable from
HEAD, or --base.

Gates: ` + strings.Join(check.GateNames(), ", ") + `.

Exit codes: 0 every gate passed (warnings allowed), 1 a gate failed,
2 usage, configuration or input error, 3 a gate could not decide.

In GitHub Actions, --format github writes annotations, appends a markdown
summary to $GITHUB_STEP_SUMMARY, and (in any format) the step outputs
status, next-version and report go to $GITHUB_OUTPUT.`,
		ValidArgs: check.GateNames(),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := report.ParseFormat(format)
			if err != nil {
				return usagef(cmd, "--format: %v", err)
			}
			if o.Budget < 0 {
				return usagef(cmd, "--budget: must not be negative")
			}
			o.Format, o.Gates = f, args
			return run(cmd, runF, runCheck, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Repo, "repo", ".", "project directory (a Go module inside a git repository)")
	fl.StringVar(&o.Base, "base", "", "ref to compare with (default: latest vX.Y.Z tag reachable from HEAD)")
	fl.StringVar(&o.Config, "config", "", "configuration file (default: relcheck.yaml in --repo)")
	fl.StringVar(&format, "format", "text", "output format: text, json, github, markdown or sarif")
	fl.StringVar(&o.Output, "output", "", "write the report to this file instead of standard output")
	fl.StringVar(&o.JSONReport, "json-report", "", "also write the JSON report to this file")
	fl.StringVar(&o.SARIF, "sarif", "", "also write a SARIF 2.1.0 report to this file (for GitHub code scanning)")
	fl.StringVar(&o.DatabaseURL, "database-url", "", "PostgreSQL server for the migrations gate (relcheck creates and drops its own databases there); default: a throwaway cluster")
	fl.StringVar(&o.Save, "save", "", "perf gate: save the raw results to this JSON file (and the Go benchmark output of each side next to it, for benchstat)")
	fl.StringVar(&o.History, "history", "", "perf gate: append this run's medians to a perf history file (JSON lines; relcheck perf history charts it)")
	fl.DurationVar(&o.Budget, "budget", 0, "perf gate: cap its time (e.g. 5m); what did not fit is reported")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"text", "json", "github", "markdown", "sarif"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runCheck(ctx context.Context, o *checkOptions) error {
	env, err := check.Resolve(ctx, check.Options{Dir: o.Repo, Base: o.Base, ConfigFile: o.Config, DatabaseURL: o.DatabaseURL,
		PerfSave: o.Save, PerfHistory: o.History, PerfBudget: o.Budget})
	if err != nil {
		return err
	}
	env.PerfProgress = perfProgress(o.err, isTerminal(o.err))
	progress := func(format string, args ...any) {}
	if isTerminal(o.err) {
		progress = func(format string, args ...any) {
			fmt.Fprintf(o.err, "relcheck: "+format+"…\n", args...)
		}
	}
	rep, err := check.Run(ctx, env, o.Gates, progress)
	if err != nil {
		return err
	}
	if err := writeReport(o.streams, rep, o.Format, o.Output); err != nil {
		return writeError("--output", err)
	}
	for _, extra := range []struct {
		flag, path string
		format     report.Format
	}{{"--json-report", o.JSONReport, report.FormatJSON}, {"--sarif", o.SARIF, report.FormatSARIF}} {
		if extra.path == "" {
			continue
		}
		if err := writeFile(extra.path, rep, extra.format); err != nil {
			return writeError(extra.flag, err)
		}
	}
	if err := writeStepOutputs(o.streams, rep, o.JSONReport); err != nil {
		return err
	}
	outcome := rep.Outcome()
	if o.Output != "" {
		// The report went to a file: still say the verdict.
		fmt.Fprintf(o.err, "relcheck: %s", strings.ToUpper(string(rep.Status)))
		if rep.Version != nil && rep.Version.Next != "" {
			fmt.Fprintf(o.err, ", next version %s", rep.Version.Next)
		}
		fmt.Fprintf(o.err, " (report in %s)\n", o.Output)
	}
	return outcome
}
