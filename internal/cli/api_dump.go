package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/apicompat"
)

// apiDumpOptions are the inputs of `relcheck api dump`.
type apiDumpOptions struct {
	*streams
	apiModule
}

func newAPIDumpCmd(s *streams, runF func(context.Context, *apiDumpOptions) error) *cobra.Command {
	o := &apiDumpOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "dump",
		Short: "Print the API report: one sorted line per exported feature",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, runF, runAPIDump, o)
		},
	}
	o.flags(cmd)
	return cmd
}

func runAPIDump(ctx context.Context, o *apiDumpOptions) error {
	m, cfg, dir, err := o.load(ctx, o.streams)
	if err != nil {
		return err
	}
	features, err := o.features(m, cfg, dir)
	if err != nil {
		return err
	}
	_, err = o.out.Write(apicompat.FormatReport(m.Path, features))
	return err
}
