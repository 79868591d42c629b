// Command relcheck is a continuous-release pipeline for open-source projects:
// it checks every commit (API, schema migrations, performance) and tells the
// maintainer what the next version must be.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/report"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], &streams{in: os.Stdin, out: os.Stdout, err: os.Stderr, getenv: os.Getenv, lookupEnv: os.LookupEnv})
	stop()
	os.Exit(code)
}

// streams are the process's inputs and outputs, injected so commands are
// testable without a subprocess.
type streams struct {
	in     io.Reader
	out    io.Writer
	err    io.Writer
	getenv func(string) string
	// lookupEnv tells a variable set to "" from an unset one; nil: set
	// means non-empty.
	lookupEnv func(string) (string, bool)
	// tty reports whether a stream is a terminal; nil means isTerminal.
	tty func(io.Writer) bool
	// afterStep is the installer's hook after each journal step: nil in
	// relcheck; the test binary kills itself at a chosen step.
	afterStep func(step string)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// color reports whether text output to w should be coloured.
func (s *streams) color(w io.Writer) bool {
	if _, set := s.lookup("NO_COLOR"); set {
		return false
	}
	if s.getenv("TERM") == "dumb" {
		return false
	}
	if s.tty != nil {
		return s.tty(w)
	}
	return isTerminal(w)
}

// lookup is the environment variable k, and whether it is set.
func (s *streams) lookup(k string) (string, bool) {
	if s.lookupEnv != nil {
		return s.lookupEnv(k)
	}
	v := s.getenv(k)
	return v, v != ""
}

// usageError is a mistake in the command line (exit 2).
type usageError struct {
	msg string
	cmd *cobra.Command
}

func (e *usageError) Error() string { return e.msg }

// ExitCode is report.ExitUsage.
func (e *usageError) ExitCode() int { return report.ExitUsage }

func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), cmd: cmd}
}

// Main runs relcheck with args and returns the exit code.
func Main(ctx context.Context, args []string, s *streams) int {
	root := newRootCmd(s)
	root.SetArgs(args)
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return report.ExitOK
	}
	code := exitCode(err)
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(s.err, "relcheck: %v\n", err)
		if ue.cmd != nil {
			fmt.Fprintf(s.err, "usage: %s\nRun '%s --help' for details.\n", ue.cmd.UseLine(), ue.cmd.CommandPath())
		}
	case errors.As(err, new(*report.FindingsError)):
		// The report already said what failed.
	default:
		fmt.Fprintf(s.err, "relcheck: %v\n", err)
	}
	return code
}

// exitCode maps an error to the exit code of DESIGN.md: report.ExitCode,
// which every error that decides one implements.
func exitCode(err error) int { return report.ExitCode(err) }

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func newRootCmd(s *streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "relcheck",
		Short: "Continuous releases: check every commit, publish to channels, upgrade in phases",
		Long: `relcheck checks every commit of a Go project for API compatibility and
deprecation policy, and derives the next semantic version from what changed.

Exit codes: 0 every gate passed (warnings allowed), 1 a gate failed,
2 usage, configuration or input error, 3 relcheck could not decide.`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef(cmd, "unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usagef(cmd, "%v", err)
	})
	root.AddCommand(
		newInitCmd(s),
		newCheckCmd(s, nil),
		newVersionCmd(s),
		newAPICmd(s),
		newPerfCmd(s),
		newDemoCmd(s),
		newKeysCmd(s),
		newPublishCmd(s),
		newPromoteCmd(s),
		newRolloutCmd(s),
		newHaltCmd(s),
		newChannelCmd(s),
		newSubscribeCmd(s),
		newUpgradeCmd(s),
		newStatusCmd(s),
		newRollbackCmd(s),
		newRecoverCmd(s),
		newTelemetryCmd(s),
	)
	return root
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef(cmd, "%s takes %d argument(s), got %d", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef(cmd, "unexpected argument %q", args[0])
	}
	return nil
}
