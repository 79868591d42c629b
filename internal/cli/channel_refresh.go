package cli

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/report"
)

// channelRefreshOptions are the inputs of `relcheck channel refresh`.
type channelRefreshOptions struct {
	*streams
	repoFlags
	Repo string
	// Channel is the one channel to refresh ("": every channel).
	Channel string
	// Collector is the collector URL to announce; nil keeps the heads'
	// ("" removes it).
	Collector *string
	// Restore moves a head tag that was moved back forward to the newest
	// signed head of the repository's record first.
	Restore bool
	// Resign signs a head whose signature was deleted first: the one
	// this machine signed last, or HeadDigest.
	Resign     bool
	HeadDigest string
}

func newChannelRefreshCmd(s *streams, runF func(context.Context, *channelRefreshOptions) error) *cobra.Command {
	o := &channelRefreshOptions{streams: s}
	var collector string
	cmd := &cobra.Command{
		Use:   "refresh REPO",
		Short: "Re-sign the channels' heads with a new seq and expiry (run it from a scheduled job)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(cmd, o.Format); err != nil {
				return err
			}
			if err := checkChannel(cmd, o.Channel, true); err != nil {
				return err
			}
			if cmd.Flags().Changed("collector") {
				o.Collector = &collector
			}
			o.Repo = args[0]
			return run(cmd, runF, runChannelRefresh, o)
		},
	}
	o.flags(cmd, channels.PrivateKeyFile)
	cmd.Flags().StringVar(&o.Channel, "channel", "", "only this channel")
	cmd.Flags().BoolVar(&o.Resign, "resign", false, "first sign a head whose signature was deleted again: the one this machine signed last, or --head-digest")
	cmd.Flags().StringVar(&o.HeadDigest, "head-digest", "", "with --resign: the digest of the head you recognise (sha256:...)")
	cmd.Flags().BoolVar(&o.Restore, "restore", false, "first move a head tag that was moved back to the newest head signed before (after a refusal naming two seqs)")
	cmd.Flags().StringVar(&collector, "collector", "", "announce this telemetry collector URL in the heads (\"\" removes it)")
	return cmd
}

func runChannelRefresh(ctx context.Context, o *channelRefreshOptions) error {
	names := channels.Names
	if o.Channel != "" {
		names = []string{o.Channel}
	}
	st, pub, err := openWriter(o.streams, o.Repo, o.repoFlags)
	if err != nil {
		return err
	}
	done := 0
	for _, c := range names {
		if o.Resign {
			h, err := pub.Resign(ctx, c, o.HeadDigest)
			if err != nil && !(errors.Is(err, channels.ErrNotFound) && o.Channel == "") {
				return err
			}
			if h != nil {
				fmt.Fprintf(o.err, "relcheck: signed the %s head (seq %d) again\n", c, h.Seq)
			}
		}
		if o.Restore {
			rec, err := pub.Restore(ctx, c)
			if err != nil {
				return err
			}
			if rec != nil {
				fmt.Fprintf(o.err, "relcheck: restored the %s head to seq %d, the newest signed before\n", c, rec.Seq)
			}
		}
		h, err := pub.Refresh(ctx, c, o.Collector)
		if errors.Is(err, channels.ErrNotFound) && o.Channel == "" {
			continue
		}
		if err != nil {
			return err
		}
		done++
		if err := printHeadChange(o.streams, o.Format, st, h, "", v1.Hash{}, fmt.Sprintf("refreshed %s", c)); err != nil {
			return err
		}
	}
	if done == 0 {
		return report.Inputf("%s has no channels to refresh", st)
	}
	return nil
}
