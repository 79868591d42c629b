package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/check"
	"github.com/relcheck/relcheck/report"
)

// initOptions are the inputs of `relcheck init`.
type initOptions struct {
	*streams
	Dir   string
	Force bool
}

func newInitCmd(s *streams, runF func(context.Context, *initOptions) error) *cobra.Command {
	o := &initOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented relcheck.yaml with every setting and its default",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, runF, runInit, o)
		},
	}
	cmd.Flags().StringVar(&o.Dir, "repo", ".", "directory to write relcheck.yaml into")
	cmd.Flags().BoolVar(&o.Force, "force", false, "overwrite an existing relcheck.yaml")
	return cmd
}

func runInit(ctx context.Context, o *initOptions) error {
	path := filepath.Join(o.Dir, check.ConfigFileName)
	if _, err := os.Stat(path); err == nil && !o.Force {
		return report.Inputf("%s already exists; pass --force to overwrite it", path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.WriteFile(path, []byte(check.ConfigTemplate), 0o644); err != nil {
		return report.Inputf("--repo: %v", err)
	}
	fmt.Fprintf(o.out, "wrote %s\n", path)
	return nil
}
