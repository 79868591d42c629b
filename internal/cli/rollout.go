package cli

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/telemetry"
)

// rolloutOptions are the inputs of `relcheck rollout`.
type rolloutOptions struct {
	*streams
	repoFlags
	Repo, Version, Channel string
	Percent                float64
	// Gate is --require on --collector (nil: none).
	Gate *telemetry.Gate
}

func newRolloutCmd(s *streams, runF func(context.Context, *rolloutOptions) error) *cobra.Command {
	o := &rolloutOptions{streams: s}
	var gf gateFlags
	cmd := &cobra.Command{
		Use:   "rollout REPO VERSION --channel C --percent P",
		Short: "Widen a phased rollout",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(cmd, o.Format); err != nil {
				return err
			}
			if err := checkChannel(cmd, o.Channel, false); err != nil {
				return err
			}
			if !cmd.Flags().Changed("percent") {
				return usagef(cmd, "give --percent")
			}
			var err error
			if o.Gate, err = gf.gate(cmd); err != nil {
				return err
			}
			o.Repo, o.Version = args[0], args[1]
			return run(cmd, runF, runRollout, o)
		},
	}
	o.flags(cmd, channels.PrivateKeyFile)
	cmd.Flags().StringVar(&o.Channel, "channel", "", "the channel")
	cmd.Flags().Float64Var(&o.Percent, "percent", 0, "percentage of installs offered the release")
	gf.add(cmd, "installs>=50,rollback_rate<1%", "the head")
	cmd.AddCommand(newRolloutAdvanceCmd(s, nil))
	return cmd
}

func runRollout(ctx context.Context, o *rolloutOptions) error {
	st, pub, err := openWriter(o.streams, o.Repo, o.repoFlags)
	if err != nil {
		return err
	}
	h, err := pub.Rollout(ctx, o.Version, o.Channel, o.Percent, releaseGate(ctx, o.streams, o.Gate))
	if err != nil {
		return err
	}
	return printHeadChange(o.streams, o.Format, st, h, o.Version, v1.Hash{}, fmt.Sprintf("%s on %s now offered to %v%% of installs", o.Version, o.Channel, o.Percent))
}
