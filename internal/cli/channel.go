package cli

import "github.com/spf13/cobra"

func newChannelCmd(s *streams) *cobra.Command {
	cmd := parent("channel", "Show, refresh and walk release channels", "relcheck channel show REPO")
	cmd.AddCommand(newChannelShowCmd(s, nil), newChannelRefreshCmd(s, nil), newChannelPathCmd(s, nil), newChannelPruneCmd(s, nil))
	return cmd
}
