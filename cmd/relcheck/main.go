// Command relcheck is a continuous-release pipeline for open-source projects:
// it checks every commit (API, schema migrations, performance), publishes
// releases to signed channels, and upgrades installs in phases.
//
// One file per command: its options struct (its inputs, and the streams it
// writes to), newXCmd (flags into options, checked; a run seam for tests)
// and runX (one call into the libraries, and the output). What several
// commands share has a file of its own: streams.go, exit.go, output.go,
// ghactions.go, progress.go, paths.go, releaserepo.go (the commands that
// write channels), operator.go (upgrade, status, rollback, recover).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/report"
)

// stopGrace is how long a command may take to stop after SIGINT or
// SIGTERM.
const stopGrace = 5 * time.Second

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	os.Exit(runProcess(os.Args[1:], processStreams()))
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
	case errors.As(err, new(*report.FindingsError)):
		// The report already said what failed.
	default:
		fmt.Fprintf(s.err, "relcheck: %v\n", err)
	}
	return exitCode(err)
}

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
		newTelemetryCmd(s),
	)
	return root
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
