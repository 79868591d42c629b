package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
)

// rollbackOptions are the inputs of `relcheck rollback`.
type rollbackOptions struct {
	*streams
	opFlags
}

func newRollbackCmd(s *streams, runF func(context.Context, *rollbackOptions) error) *cobra.Command {
	o := &rollbackOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Switch back to the previous version (hooks and health check as for an upgrade)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(cmd); err != nil {
				return err
			}
			return run(cmd, runF, runRollback, o)
		},
	}
	o.flags(cmd)
	return cmd
}

func runRollback(ctx context.Context, o *rollbackOptions) error {
	c, err := o.client(o.streams)
	if err != nil {
		return err
	}
	return locked(ctx, o.streams, c, func(st *channels.LocalState) error {
		out, err := c.Installer.Rollback(ctx, st)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.out, "rolled back: %s → %s\n", out.From, out.To)
		return nil
	})
}
