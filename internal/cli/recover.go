package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
)

// recoverOptions are the inputs of `relcheck recover`.
type recoverOptions struct {
	*streams
	opFlags
}

func newRecoverCmd(s *streams, runF func(context.Context, *recoverOptions) error) *cobra.Command {
	o := &recoverOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Finish or undo an operation that was interrupted (upgrade does this too)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(cmd); err != nil {
				return err
			}
			return run(cmd, runF, runRecover, o)
		},
	}
	o.flags(cmd)
	return cmd
}

// runRecover is an operator run (channels.Client.Run) that does nothing
// but the recovery every run starts with, and says what it did.
func runRecover(ctx context.Context, o *recoverOptions) error {
	c, err := o.client(o.streams)
	if err != nil {
		return err
	}
	var out *channels.Outcome
	rec := channels.TelemetryRecorder{Telemetry: telemetryClient(o.streams), Log: c.Installer.Log}
	if err := c.Run(ctx, rec, func(r channels.Outcome) { out = &r }, func(*channels.LocalState) error { return nil }); err != nil {
		return err
	}
	if out == nil {
		fmt.Fprintln(o.out, "nothing to recover")
		return nil
	}
	fmt.Fprintf(o.out, "recovered %s → %s: %s\n", orNothing(out.From), out.To, describeResult(*out))
	if out.Result == channels.RolledBack {
		return &channels.HopError{Outcome: *out}
	}
	return nil
}
