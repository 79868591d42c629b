package cli

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
)

// haltOptions are the inputs of `relcheck halt`.
type haltOptions struct {
	*streams
	repoFlags
	Repo, Version, Channel string
	// RollbackTo is an older release installs should go back to ("":
	// they stay).
	RollbackTo string
}

func newHaltCmd(s *streams, runF func(context.Context, *haltOptions) error) *cobra.Command {
	o := &haltOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "halt REPO VERSION --channel C [--rollback-to V]",
		Short: "Stop a release on a channel, optionally sending its installs back",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(cmd, o.Format); err != nil {
				return err
			}
			if err := checkChannel(cmd, o.Channel, false); err != nil {
				return err
			}
			o.Repo, o.Version = args[0], args[1]
			return run(cmd, runF, runHalt, o)
		},
	}
	o.flags(cmd, channels.PrivateKeyFile)
	cmd.Flags().StringVar(&o.Channel, "channel", "", "the channel")
	cmd.Flags().StringVar(&o.RollbackTo, "rollback-to", "", "an older release on the channel that installs should go back to")
	return cmd
}

func runHalt(ctx context.Context, o *haltOptions) error {
	st, pub, err := openWriter(o.streams, o.Repo, o.repoFlags)
	if err != nil {
		return err
	}
	h, err := pub.Halt(ctx, o.Version, o.Channel, o.RollbackTo)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("halted %s on %s", o.Version, o.Channel)
	if o.RollbackTo != "" {
		what += ", installs go back to " + o.RollbackTo
	}
	return printHeadChange(o.streams, o.Format, st, h, o.Version, v1.Hash{}, what)
}
