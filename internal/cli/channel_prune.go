package cli

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
)

// channelPruneOptions are the inputs of `relcheck channel prune`.
type channelPruneOptions struct {
	*streams
	repoFlags
	Repo, Channel string
	// Keep is how many of the newest releases stay offered.
	Keep int
}

func newChannelPruneCmd(s *streams, runF func(context.Context, *channelPruneOptions) error) *cobra.Command {
	o := &channelPruneOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "prune REPO --channel C --keep N",
		Short: "Keep a channel's head small: offer only the newest N releases (and every stop)",
		Long: `Drop all but the newest --keep releases from a channel's signed head. Required
stops, rollback targets and the release the plain tag follows stay. The
artifacts and their version tags stay in the repository; the channel just
stops offering them (a head must stay under 1 MiB for clients to read it).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(cmd, o.Format); err != nil {
				return err
			}
			if err := checkChannel(cmd, o.Channel, false); err != nil {
				return err
			}
			o.Repo = args[0]
			return run(cmd, runF, runChannelPrune, o)
		},
	}
	o.flags(cmd, channels.PrivateKeyFile)
	cmd.Flags().StringVar(&o.Channel, "channel", "", "the channel")
	cmd.Flags().IntVar(&o.Keep, "keep", 50, "how many of the newest releases stay")
	return cmd
}

func runChannelPrune(ctx context.Context, o *channelPruneOptions) error {
	st, pub, err := openWriter(o.streams, o.Repo, o.repoFlags)
	if err != nil {
		return err
	}
	dropped, h, err := pub.Prune(ctx, o.Channel, o.Keep)
	if err != nil {
		return err
	}
	return printHeadChange(o.streams, o.Format, st, h, "", v1.Hash{}, fmt.Sprintf("pruned %s: %d release(s) no longer offered, %d kept", o.Channel, len(dropped), len(h.Releases)))
}
