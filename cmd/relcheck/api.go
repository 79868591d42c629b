package main

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/apicompat"
	"github.com/relcheck/relcheck/internal/config"
)

func newAPICmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Write or refresh the API report file",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef(cmd, "missing subcommand: try 'relcheck api dump' or 'relcheck api update'")
		},
	}
	var repo, cfgFile, file string
	load := func(cmd *cobra.Command) (*apicompat.Module, *config.Config, string, error) {
		dir, err := filepath.Abs(repo)
		if err != nil {
			return nil, nil, "", err
		}
		cfg, _, err := config.LoadFor(dir, cfgFile)
		if err != nil {
			return nil, nil, "", err
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
			return nil, nil, "", usagef(cmd, "%s has no go.mod: run it in a Go module or pass --repo", repo)
		}
		m, err := apicompat.LoadModule(cmd.Context(), dir, dir, cfg.API.Packages)
		if err != nil {
			return nil, nil, "", err
		}
		for rel, why := range m.Broken {
			what := "listed as far as it is declared"
			if m.Packages[rel] == nil {
				what = "left out"
			}
			fmt.Fprintf(s.err, "relcheck: warning: package %s does not type-check (%s): %s\n", path.Join(m.Path, rel), what, why)
		}
		return m, cfg, dir, nil
	}
	dump := &cobra.Command{
		Use:   "dump",
		Short: "Print the API report: one sorted line per exported feature",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, _, _, err := load(cmd)
			if err != nil {
				return err
			}
			_, err = s.out.Write(apicompat.FormatReport(m.Path, m.Features()))
			return err
		},
	}
	update := &cobra.Command{
		Use:   "update",
		Short: "Rewrite the API report file (api.report in relcheck.yaml) from the code",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, cfg, dir, err := load(cmd)
			if err != nil {
				return err
			}
			target := file
			if target == "" {
				target = cfg.API.Report
			}
			hint := ""
			if target == "" {
				target = "api/relcheck.txt"
				hint = fmt.Sprintf(" (set api.report: %s in relcheck.yaml so relcheck check compares with it)", target)
			}
			path := apicompat.ReportPath(dir, target)
			data := apicompat.FormatReport(m.Path, m.Features())
			if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
				fmt.Fprintf(s.out, "%s is up to date\n", target)
				return nil
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(s.out, "wrote %s: %d features%s\n", target, bytes.Count(data, []byte("\npkg ")), hint)
			return nil
		},
	}
	for _, c := range []*cobra.Command{dump, update} {
		c.Flags().StringVar(&repo, "repo", ".", "module directory")
		c.Flags().StringVar(&cfgFile, "config", "", "configuration file (default: relcheck.yaml in --repo)")
	}
	update.Flags().StringVar(&file, "file", "", "report file to write (default: api.report, else api/relcheck.txt)")
	cmd.AddCommand(dump, update)
	return cmd
}
