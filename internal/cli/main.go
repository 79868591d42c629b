package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/report"
)

// stopGrace is how long a command may take to stop after SIGINT or
// SIGTERM.
const stopGrace = 5 * time.Second

// Hooks are the test seams of a relcheck process; the zero value is
// relcheck's.
type Hooks struct {
	// AfterStep runs after each journal step of an install (the
	// crash-safety tests kill the process at a chosen step).
	AfterStep func(step string)
}

// Process runs relcheck as this process, with its standard streams and
// environment, and returns the exit code.
func Process(args []string, h Hooks) int {
	s := processStreams()
	s.afterStep = h.AfterStep
	return runProcess(args, s)
}

// runProcess runs relcheck as a process: SIGINT and SIGTERM cancel the
// command's context.
func runProcess(args []string, s *streams) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		// A command stops at the first signal: everything it waits on
		// takes the context. Should anything not, the process still ends
		// a little later; an interrupted upgrade is journaled, and the
		// next run (or relcheck recover) finishes or undoes it.
		select {
		case <-finished:
			return
		case <-ctx.Done():
		}
		select {
		case <-finished:
		case <-time.After(stopGrace):
			fmt.Fprintf(s.err, "relcheck: still running %s after the signal: exiting\n", stopGrace)
			os.Exit(report.ExitUndecided)
		}
	}()
	return Main(ctx, args, s)
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
	report.RenameOptions(err, flagName)
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(s.err, "relcheck: %v\n", err)
		if ue.cmd != nil {
			fmt.Fprintf(s.err, "usage: %s\nRun '%s --help' for details.\n", ue.cmd.UseLine(), ue.cmd.CommandPath())
		}
	case isFindings(err):
		// The report already said what failed.
	default:
		fmt.Fprintf(s.err, "relcheck: %v\n", err)
	}
	return exitCode(err)
}

// version overrides the module version of the build info, for builds
// that set it: -ldflags "-X github.com/relcheck/relcheck/internal/cli.version=v1.2.3".
var version = ""

// versionString is what --version prints: the version, and the commit and
// its date that the Go toolchain recorded in the binary.
func versionString() string {
	bi, _ := debug.ReadBuildInfo()
	return formatVersion(version, bi)
}

// versionOf is the version alone: the override, the module version the
// binary was built at, or "devel".
func versionOf(override string, bi *debug.BuildInfo) string {
	v := override
	if v == "" && bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "devel"
	}
	return v
}

func formatVersion(override string, bi *debug.BuildInfo) string {
	v := versionOf(override, bi)
	if bi == nil {
		return v
	}
	var rev, at string
	modified := false
	for _, st := range bi.Settings {
		switch st.Key {
		case "vcs.revision":
			rev = st.Value
		case "vcs.time":
			at = st.Value
		case "vcs.modified":
			modified = st.Value == "true"
		}
	}
	var parts []string
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		c := "commit " + rev
		if modified {
			c += " (modified)"
		}
		parts = append(parts, c)
	}
	if at != "" {
		parts = append(parts, at)
	}
	if bi.GoVersion != "" {
		parts = append(parts, bi.GoVersion)
	}
	if len(parts) > 0 {
		v += " (" + strings.Join(parts, ", ") + ")"
	}
	return v
}

func newRootCmd(s *streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "relcheck",
		Short: "Continuous releases: check every commit, publish to channels, upgrade in phases",
		Long: `relcheck checks every commit of a project, publishes releases to signed
channels, and lets operators upgrade in phases. Deploy is not release: a
version reaches a subset of installs first and is rolled back when it
misses its health check.

The gates (relcheck check, and the GitHub Action on every commit):
  api         the Go API (and the HTTP API of api.openapi, and the last
              release's own tests with api.compatTests) against the last
              release: incompatible changes, the deprecation policy, and
              the next semantic version
  migrations  new SQL migrations replayed on a throwaway PostgreSQL or
              SQLite: locks, compatibility with the release before,
              blocking time at production sizes against the error budget
  perf        benchmarks of base and head in duet or interleaved rounds, and load
              scenarios of the built program against its objectives

The release loop:
  maintainers  publish (edge) → promote (beta, stable) → rollout, halt;
               keys, channel show|refresh|path|prune
  operators    subscribe → upgrade --phased (health check, rollback on
               failure) → status, rollback, recover
  telemetry    opt-in shared reports (telemetry on|off|local|upload) that
               promote and rollout can require

Try it with no server and no account: relcheck demo

Exit codes: 0 every gate passed (warnings allowed), 1 a gate failed,
2 usage, configuration or input error, 3 relcheck could not decide.`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				// No usage line: the root's ("relcheck [flags]") says nothing.
				if near := cmd.SuggestionsFor(args[0]); len(near) > 0 {
					return usagef(nil, "unknown command %q: did you mean %s? ('relcheck --help' lists the commands)", args[0], strings.Join(near, " or "))
				}
				return usagef(nil, "unknown command %q: 'relcheck --help' lists the commands", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	root.SuggestionsMinimumDistance = 2
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usagef(cmd, "%v", err)
	})
	root.AddCommand(
		newInitCmd(s, nil),
		newCheckCmd(s, nil),
		newVersionCmd(s),
		newAPICmd(s),
		newPerfCmd(s),
		newDemoCmd(s, nil),
		newKeysCmd(s),
		newPublishCmd(s, nil),
		newPromoteCmd(s, nil),
		newRolloutCmd(s, nil),
		newHaltCmd(s, nil),
		newChannelCmd(s),
		newSubscribeCmd(s, nil),
		newUpgradeCmd(s, nil),
		newStatusCmd(s, nil),
		newRollbackCmd(s, nil),
		newRecoverCmd(s, nil),
		newHoldCmd(s, nil),
		newUnholdCmd(s, nil),
		newTelemetryCmd(s),
		newManCmd(s, nil),
	)
	addCompletions(root)
	return root
}

// isFindings reports whether err is the outcome of a report the command
// printed (not one wrapped with a message of its own).
func isFindings(err error) bool {
	_, ok := err.(*report.FindingsError)
	return ok
}

// parent is a command that only groups subcommands.
func parent(use, short, hint string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef(cmd, "missing subcommand: try '%s'", hint)
		},
	}
}
