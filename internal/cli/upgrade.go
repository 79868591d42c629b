package cli

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/analysis"
	"github.com/relcheck/relcheck/channels"
)

// upgradeOptions are the inputs of `relcheck upgrade`.
type upgradeOptions struct {
	*streams
	opFlags
	Phased, DryRun, Yes bool
	// To installs this version ("": the newest that is for this install).
	To string
}

func newUpgradeCmd(s *streams, runF func(context.Context, *upgradeOptions) error) *cobra.Command {
	o := &upgradeOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "upgrade [--phased] [--dry-run] [--to V] [--yes]",
		Short: "Install the newest release of the subscribed channel that is for this install",
		Long: `Fetch and verify the channel's head (signature, not expired, seq not below
the newest seen here), pick the newest release that is for this install —
not halted, inside the pin, past any hold, old enough, covered by the phased
rollout (--phased: this install's bucket below the rollout) and the local
staging schedule, inside the window — and install it through the required
stops, hop by hop: download and verify, pre hook, switch DIR/current, post
hook, health check; on failure switch back, run the rollback hook and mark
the release bad here.

The plan is printed before anything changes; --yes skips the question (and is
needed without a terminal). --dry-run explains the decision and changes
nothing. Quiet, exit 0, when there is nothing to do; exit 1 when a hop
failed and was rolled back or verification refused the channel.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(cmd); err != nil {
				return err
			}
			return run(cmd, runF, runUpgrade, o)
		},
	}
	o.flags(cmd)
	cmd.Flags().BoolVar(&o.Phased, "phased", false, "take part in phased rollouts: wait until a release's rollout covers this install")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "explain the decision, change nothing")
	cmd.Flags().BoolVar(&o.Yes, "yes", false, "do not ask for confirmation")
	cmd.Flags().StringVar(&o.To, "to", "", "install this version (phasing, staging, holds, minimum age and window do not apply)")
	return cmd
}

func runUpgrade(ctx context.Context, o *upgradeOptions) error {
	s := o.streams
	c, err := o.client(s)
	if err != nil {
		return err
	}
	opts := channels.DecideOptions{Phased: o.Phased, To: o.To}
	if o.DryRun {
		chk, err := c.Check(ctx, opts, false)
		if err != nil {
			return err
		}
		if err := o.printDecision(s, o.Format, c, chk, true); err != nil || o.Format != "text" {
			return err
		}
		// Each hop's signed upgrade notes, before anything changes.
		for _, hop := range chk.Decision.Path {
			d, err := v1.NewHash(hop.Digest)
			if err != nil {
				continue
			}
			n, err := c.Installer.Verifier.Notes(ctx, c.Store, d)
			if err != nil {
				return err
			}
			if n != nil {
				fmt.Fprintf(s.out, "\n%s", n.Text())
			}
		}
		return nil
	}
	return o.locked(ctx, s, c, func(*channels.LocalState) error {
		chk, err := c.Check(ctx, opts, true)
		if err != nil {
			return err
		}
		d := chk.Decision
		if d.Action == channels.ActionNone || d.Action == channels.ActionWait {
			if o.Format == "json" {
				return o.printDecision(s, o.Format, c, chk, false)
			}
			return nil // quiet for timers
		}
		if o.Format == "text" {
			o.printDecision(s, o.Format, c, chk, false)
		}
		if err := proceed(s, o.Yes, "Proceed?"); err != nil {
			return err
		}
		bar := o.progress(s, "downloading "+d.Target)
		if bar != nil {
			c.Installer.Progress = bar.add
		}
		if o.LogFormat == "text" {
			// The analysis' samples, as they come (JSON logs have them
			// as records).
			c.Installer.Sample = func(smp analysis.Sample) { fmt.Fprintf(s.err, "relcheck: analysis: %s\n", smp) }
		}
		out, err := c.Installer.Apply(ctx, chk.State, d, chk.HeadDigest)
		if bar != nil {
			bar.finish()
		}
		if err != nil {
			return err
		}
		if o.Format == "json" {
			return o.printDecision(s, o.Format, c, chk, false)
		}
		fmt.Fprintf(s.out, "%s: %s → %s in %s (%d hop(s))\n", d.Action, orNothing(out.From), out.To, (time.Duration(out.DurationMs) * time.Millisecond).Round(time.Millisecond), out.Hops)
		return nil
	})
}
