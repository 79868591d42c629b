package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
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
	// Notes shows each release's signed upgrade notes.
	Notes bool
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
	cmd.Flags().BoolVar(&o.Notes, "notes", false, "also show each release's signed upgrade notes")
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
	var v *channels.Verifier
	if o.Notes {
		if v, err = channels.LoadVerifier(o.Key); err != nil {
			return err
		}
	}
	for i, h := range heads {
		if i > 0 {
			fmt.Fprintln(o.out)
		}
		printHead(o.out, st, h)
		if v == nil {
			continue
		}
		for _, r := range h.Releases {
			d, err := v1.NewHash(r.Digest)
			if err != nil {
				continue
			}
			n, err := v.Notes(ctx, st, d)
			if err != nil {
				return err
			}
			if n == nil {
				fmt.Fprintf(o.out, "\n  %s: no signed upgrade notes\n", r.Version)
				continue
			}
			fmt.Fprintf(o.out, "\n  %s", strings.ReplaceAll(strings.TrimRight(n.Text(), "\n"), "\n", "\n  ")+"\n")
		}
	}
	return nil
}
