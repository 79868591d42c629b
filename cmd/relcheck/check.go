package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relcheck/relcheck/internal/atomicfile"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/check"
	"github.com/relcheck/relcheck/perf"
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
	// Save and Budget are for the perf gate.
	Save   string
	Budget time.Duration
}

func newCheckCmd(s *streams, runF func(*checkOptions) error) *cobra.Command {
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
			o.Format, o.Gates = f, args
			if runF != nil {
				return runF(o)
			}
			return runCheck(cmd, o)
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
	fl.DurationVar(&o.Budget, "budget", 0, "perf gate: cap its time (e.g. 5m); what did not fit is reported")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"text", "json", "github", "markdown", "sarif"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runCheck(cmd *cobra.Command, o *checkOptions) error {
	ctx := cmd.Context()
	if o.Budget < 0 {
		return usagef(cmd, "--budget: must not be negative")
	}
	env, err := check.Resolve(ctx, check.Options{Dir: o.Repo, Base: o.Base, ConfigFile: o.Config, DatabaseURL: o.DatabaseURL,
		PerfSave: o.Save, PerfBudget: o.Budget})
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
		return usageFlagError(cmd, "--output", err)
	}
	for _, extra := range []struct {
		flag, path string
		format     report.Format
	}{{"--json-report", o.JSONReport, report.FormatJSON}, {"--sarif", o.SARIF, report.FormatSARIF}} {
		if extra.path == "" {
			continue
		}
		if err := writeFile(extra.path, rep, extra.format); err != nil {
			return usageFlagError(cmd, extra.flag, err)
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

// usageFlagError turns a failure to write where a flag points into a usage
// error (exit 2) that names the flag.
func usageFlagError(cmd *cobra.Command, flag string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return usagef(cmd, "%s: cannot write %s: %v", flag, pe.Path, pe.Err)
	case errors.As(err, &le):
		return usagef(cmd, "%s: cannot write %s: %v", flag, le.New, le.Err)
	}
	return err
}

// writeReport renders rep to the output file or standard output, and for the
// github format appends the markdown summary to $GITHUB_STEP_SUMMARY.
func writeReport(s *streams, rep *report.Report, f report.Format, output string) error {
	if output != "" {
		if err := writeFile(output, rep, f); err != nil {
			return err
		}
	} else {
		opts := report.Options{Color: f == report.FormatText && s.color(s.out), ToolVersion: versionString()}
		if err := report.Render(s.out, rep, f, opts); err != nil {
			return err
		}
	}
	if f == report.FormatGitHub {
		if path := s.getenv("GITHUB_STEP_SUMMARY"); path != "" {
			var buf bytes.Buffer
			if err := report.Markdown(&buf, rep); err != nil {
				return err
			}
			if err := appendFile(path, buf.Bytes()); err != nil {
				return fmt.Errorf("writing the step summary: %w", err)
			}
		}
	}
	return nil
}

func writeFile(path string, rep *report.Report, f report.Format) error {
	var buf bytes.Buffer
	if err := report.Render(&buf, rep, f, report.Options{ToolVersion: versionString()}); err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	// A reader never sees half a report.
	return atomicfile.Write(path, buf.Bytes(), 0o644)
}

func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, bytes.NewReader(data))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeStepOutputs appends the step outputs status, next-version and report
// to $GITHUB_OUTPUT when running as a GitHub Actions step (in any format).
func writeStepOutputs(s *streams, rep *report.Report, jsonReport string) error {
	path := s.getenv("GITHUB_OUTPUT")
	if path == "" {
		return nil
	}
	next := ""
	if rep.Version != nil {
		next = rep.Version.Next
	}
	if jsonReport != "" {
		if abs, err := filepath.Abs(jsonReport); err == nil {
			jsonReport = abs
		}
	}
	out := fmt.Sprintf("status=%s\nnext-version=%s\nreport=%s\n", rep.Status, next, jsonReport)
	if err := appendFile(path, []byte(out)); err != nil {
		return fmt.Errorf("writing the step outputs: %w", err)
	}
	return nil
}

// perfProgress shows the perf gate's rounds: a bar redrawn in place on a
// terminal, a plain line per round otherwise (CI logs).
func perfProgress(w io.Writer, tty bool) func(perf.Progress) {
	return func(p perf.Progress) {
		left := ""
		if p.Done < p.Total {
			left = fmt.Sprintf(", about %s left", p.Left.Round(time.Second))
		}
		if !tty {
			fmt.Fprintf(w, "relcheck: perf %s %d/%d done%s\n", p.Phase, p.Done, p.Total, left)
			return
		}
		const width = 20
		n := width * p.Done / max(1, p.Total)
		fmt.Fprintf(w, "\r\033[Krelcheck: perf %s [%s%s] %d/%d%s", p.Phase, strings.Repeat("#", n), strings.Repeat(".", width-n), p.Done, p.Total, left)
		if p.Done == p.Total {
			fmt.Fprintln(w)
		}
	}
}
