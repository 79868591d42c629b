package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
)

// channelShowOptions are the inputs of `relcheck channel show`.
type channelShowOptions struct {
	*streams
	repoFlags
	Repo string
	// Channel is the one channel to show ("": every channel).
	Channel string
}

func newChannelShowCmd(s *streams, runF func(context.Context, *channelShowOptions) error) *cobra.Command {
	o := &channelShowOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "show REPO",
		Short: "Print the channels' heads after verifying them",
		Long: `Fetch each channel's head (or --channel's), verify it — signed by --key,
not expired, not older than a head seen before, every release signed and
what the head says it is — and print it. Exit 1 when verification fails.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(cmd, o.Format); err != nil {
				return err
			}
			if err := checkChannel(cmd, o.Channel, true); err != nil {
				return err
			}
			o.Repo = args[0]
			return run(cmd, runF, runChannelShow, o)
		},
	}
	o.flags(cmd, channels.PublicKeyFile)
	cmd.Flags().StringVar(&o.Channel, "channel", "", "only this channel")
	return cmd
}

func runChannelShow(ctx context.Context, o *channelShowOptions) error {
	st, err := openRepo(o.Repo, o.Insecure)
	if err != nil {
		return err
	}
	heads, err := verifiedHeads(ctx, o.streams, st, o.Channel, o.Key)
	if err != nil {
		return err
	}
	if o.Format == "json" {
		data, _ := json.MarshalIndent(struct {
			Repo     string                  `json:"repo"`
			Channels []channels.VerifiedHead `json:"channels"`
		}{st.String(), heads}, "", "  ")
		fmt.Fprintf(o.out, "%s\n", data)
		return nil
	}
	for i, h := range heads {
		if i > 0 {
			fmt.Fprintln(o.out)
		}
		printHead(o.out, st, h)
	}
	return nil
}
