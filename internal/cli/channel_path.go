package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
)

// channelPathOptions are the inputs of `relcheck channel path`.
type channelPathOptions struct {
	*streams
	repoFlags
	Repo, From, To, Channel string
}

func newChannelPathCmd(s *streams, runF func(context.Context, *channelPathOptions) error) *cobra.Command {
	o := &channelPathOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "path REPO --from V1 --to V2",
		Short: "Print the upgrade path from V1 to V2 through the required stops",
		Long: `Print the releases an upgrade from V1 to V2 must pass through on a channel
(stable by default): the required stops between them — releases that
deprecated a schema object a later release drops, or that the maintainer
marked — then V2. The head is verified first, as channel show does.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(cmd, o.Format); err != nil {
				return err
			}
			if o.From == "" || o.To == "" {
				return usagef(cmd, "give --from and --to")
			}
			if err := checkChannel(cmd, o.Channel, false); err != nil {
				return err
			}
			o.Repo = args[0]
			return run(cmd, runF, runChannelPath, o)
		},
	}
	o.flags(cmd, channels.PublicKeyFile)
	cmd.Flags().StringVar(&o.From, "from", "", "the installed version")
	cmd.Flags().StringVar(&o.To, "to", "", "the target version")
	cmd.Flags().StringVar(&o.Channel, "channel", "stable", "the channel")
	return cmd
}

func runChannelPath(ctx context.Context, o *channelPathOptions) error {
	heads, err := readHeads(ctx, o.streams, o.Repo, o.Insecure, o.Channel, o.Key)
	if err != nil {
		return err
	}
	path, err := channels.Path(heads[0].Head, o.From, o.To)
	if err != nil {
		return err
	}
	if o.Format == "json" {
		data, _ := json.MarshalIndent(struct {
			Channel string             `json:"channel"`
			From    string             `json:"from"`
			To      string             `json:"to"`
			Path    []channels.Release `json:"path"`
		}{o.Channel, o.From, o.To, path}, "", "  ")
		fmt.Fprintf(o.out, "%s\n", data)
		return nil
	}
	fmt.Fprintf(o.out, "%s", o.From)
	for _, r := range path {
		fmt.Fprintf(o.out, " → %s", r.Version)
	}
	fmt.Fprintln(o.out)
	for _, r := range path[:len(path)-1] {
		fmt.Fprintf(o.out, "  %s is a required stop: %s\n", r.Version, r.StopReason)
	}
	return nil
}
