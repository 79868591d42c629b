package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/telemetry"
)

// rolloutAdvanceOptions are the inputs of `relcheck rollout advance`.
type rolloutAdvanceOptions struct {
	*streams
	repoFlags
	Repo, Channel string
	Schedule      channels.Schedule
	// Gate is --require on --collector.
	Gate *telemetry.Gate
}

func newRolloutAdvanceCmd(s *streams, runF func(context.Context, *rolloutAdvanceOptions) error) *cobra.Command {
	o := &rolloutAdvanceOptions{streams: s}
	var gf gateFlags
	var schedule string
	cmd := &cobra.Command{
		Use:   "advance REPO --channel C --schedule 10%/6h --require REQUIREMENTS",
		Short: "Take the next scheduled step of a rollout, or halt it, by the shared telemetry",
		Long: `For the maintainers' scheduled CI job: the newest release of the channel that
is rolling out (not halted, below 100%) is halted at once when the shared
telemetry fails --require, with installs of it sent back to the release
before (a release that fails in the field stops spreading without a
person); kept where it is when the data are inconclusive; and widened by one
step of --schedule (10%/6h: +10% once 6 h have passed since its last change)
when they meet it.

Exit codes: 0 advanced, kept or nothing to do; 1 the release was halted;
2 bad flags; 3 the collector or the repository could not be read.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(cmd, o.Format); err != nil {
				return err
			}
			if err := checkChannel(cmd, o.Channel, false); err != nil {
				return err
			}
			var err error
			if o.Schedule, err = channels.ParseSchedule(schedule); err != nil {
				return usagef(cmd, "--schedule: %v", err)
			}
			if gf.require == "" {
				return usagef(cmd, "give --require: what the shared telemetry must say before each step, e.g. 'installs>=20,rollback_rate<1%%'")
			}
			if o.Gate, err = gf.gate(cmd); err != nil {
				return err
			}
			o.Repo = args[0]
			return run(cmd, runF, runRolloutAdvance, o)
		},
	}
	o.flags(cmd, channels.PrivateKeyFile)
	cmd.Flags().StringVar(&o.Channel, "channel", "stable", "the channel")
	cmd.Flags().StringVar(&schedule, "schedule", "10%/6h", "the step and the time between steps")
	gf.add(cmd, "installs>=20,rollback_rate<1%", "the head")
	return cmd
}

func runRolloutAdvance(ctx context.Context, o *rolloutAdvanceOptions) error {
	_, pub, err := openWriter(o.streams, o.Repo, o.repoFlags)
	if err != nil {
		return err
	}
	judge := sharedJudge(ctx, o.err, o.Gate)
	res, err := pub.Advance(ctx, o.Channel, o.Schedule, judge)
	var refused *channels.RefusedError
	if err != nil && !errors.As(err, &refused) {
		return err
	}
	if o.Format == "json" {
		data, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintf(o.out, "%s\n", data)
		return err
	}
	switch res.Action {
	case "advanced":
		fmt.Fprintf(o.out, "advanced %s on %s: %v%% → %v%% (%s)\n", res.Version, o.Channel, res.From, res.To, res.Why)
	case "held":
		fmt.Fprintf(o.out, "kept %s on %s at %v%%: %s\n", res.Version, o.Channel, res.From, res.Why)
	case "waiting":
		fmt.Fprintf(o.out, "%s\n", res.Why)
	case "halted":
		fmt.Fprintf(o.out, "halted %s on %s at %v%%%s\n", res.Version, o.Channel, res.From, orRollbackTo(res.RollbackTo))
	default:
		fmt.Fprintf(o.out, "%s\n", res.Why)
	}
	return err
}

func orRollbackTo(v string) string {
	if v == "" {
		return ""
	}
	return ", installs go back to " + v
}
