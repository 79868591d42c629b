package cli

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
	Yes bool
}

func newRollbackCmd(s *streams, runF func(context.Context, *rollbackOptions) error) *cobra.Command {
	o := &rollbackOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Switch back to the previous version (hooks and health check as for an upgrade)",
		Long: `Switch the install back to the version it ran before the last upgrade,
with the same hooks and health check as an upgrade. On a terminal it asks
first; elsewhere pass --yes.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(cmd); err != nil {
				return err
			}
			return run(cmd, runF, runRollback, o)
		},
	}
	o.flags(cmd)
	cmd.Flags().BoolVar(&o.Yes, "yes", false, "do not ask for confirmation")
	return cmd
}

func runRollback(ctx context.Context, o *rollbackOptions) error {
	c, err := o.client(o.streams)
	if err != nil {
		return err
	}
	return o.locked(ctx, o.streams, c, func(st *channels.LocalState) error {
		if st.Previous != "" {
			if err := proceed(o.streams, o.Yes, fmt.Sprintf("Roll back from %s to %s?", orNothing(st.Installed), st.Previous)); err != nil {
				return err
			}
		}
		out, err := c.Installer.Rollback(ctx, st)
		if err != nil {
			return err
		}
		if o.Format == "json" {
			o.marshal(o.streams, out)
			return nil
		}
		fmt.Fprintf(o.out, "rolled back: %s → %s\n", out.From, out.To)
		return nil
	})
}
