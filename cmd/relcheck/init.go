package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/internal/config"
)

func newInitCmd(s *streams) *cobra.Command {
	var dir string
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented relcheck.yaml with every setting and its default",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := filepath.Join(dir, config.FileName)
			if _, err := os.Stat(path); err == nil && !force {
				return &usageError{msg: fmt.Sprintf("%s already exists; pass --force to overwrite it", path)}
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := os.WriteFile(path, []byte(config.Template), 0o644); err != nil {
				return usagef(cmd, "--repo: %v", err)
			}
			fmt.Fprintf(s.out, "wrote %s\n", path)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "repo", ".", "directory to write relcheck.yaml into")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing relcheck.yaml")
	return cmd
}
