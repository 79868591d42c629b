package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/config"
	"github.com/relcheck/relcheck/telemetry"
)

// promoteOptions are the inputs of `relcheck promote`.
type promoteOptions struct {
	*streams
	repoFlags
	Repo, Version string
	// To is beta or stable.
	To      string
	Rollout float64
	MinSoak time.Duration
	// Gate is --require on --collector (nil: none).
	Gate *telemetry.Gate
}

func newPromoteCmd(s *streams, runF func(context.Context, *promoteOptions) error) *cobra.Command {
	o := &promoteOptions{streams: s}
	var soak string
	var gf gateFlags
	cmd := &cobra.Command{
		Use:   "promote REPO VERSION --to beta|stable",
		Short: "Put a release on a safer channel: the same digest, the channel's version",
		Long: `Add release VERSION, found on a lower channel, to beta (as vX.Y.Z-beta.N) or
stable (as vX.Y.Z): the same digest under a new version tag, never rebuilt.
A halted release is refused, and so is one that has been on the lower channel
for less than --min-soak (exit 1). --rollout offers it to that share of
installs first ('relcheck rollout' widens it).`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(cmd, o.Format); err != nil {
				return err
			}
			if o.To != "beta" && o.To != "stable" {
				return usagef(cmd, "--to must be beta or stable, not %q", o.To)
			}
			if !(o.Rollout >= 0 && o.Rollout <= 100) {
				return usagef(cmd, "--rollout must be between 0 and 100")
			}
			var err error
			if o.MinSoak, err = config.ParseDuration(soak); err != nil {
				return usagef(cmd, "--min-soak: %v", err)
			}
			if o.Gate, err = gf.gate(cmd); err != nil {
				return err
			}
			o.Repo, o.Version = args[0], args[1]
			return run(cmd, runF, runPromote, o)
		},
	}
	o.flags(cmd, channels.PrivateKeyFile)
	cmd.Flags().StringVar(&o.To, "to", "", "the channel: beta or stable")
	cmd.Flags().Float64Var(&o.Rollout, "rollout", 100, "percentage of installs offered the release")
	cmd.Flags().StringVar(&soak, "min-soak", "0s", "time the release must have spent on the lower channel (e.g. 72h, 3d)")
	gf.add(cmd, "installs>=20,rollback_rate<1%,soak>=72h", "the lower channel's head")
	return cmd
}

func runPromote(ctx context.Context, o *promoteOptions) error {
	st, pub, err := openWriter(o.streams, o.Repo, o.repoFlags)
	if err != nil {
		return err
	}
	opts := channels.PromoteOptions{To: o.To, Rollout: o.Rollout, MinSoak: o.MinSoak, Gate: releaseGate(ctx, o.streams, o.Gate)}
	target, h, err := pub.Promote(ctx, o.Version, opts)
	var already *channels.AlreadyPromotedError
	unchanged := errors.As(err, &already)
	if err != nil && !unchanged {
		return err
	}
	r := h.Find(target)
	d, _ := v1.NewHash(r.Digest)
	what := fmt.Sprintf("promoted %s to %s as %s, rollout %v%%", o.Version, o.To, target, r.Rollout)
	if unchanged {
		what = already.Error()
	}
	return printHeadChange(o.streams, o.Format, st, h, target, d, what)
}
