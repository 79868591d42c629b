package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/apicompat"
)

// apiUpdateOptions are the inputs of `relcheck api update`.
type apiUpdateOptions struct {
	*streams
	apiModule
	// File is the report file to write ("": api.report, else
	// api/relcheck.txt).
	File string
}

func newAPIUpdateCmd(s *streams, runF func(context.Context, *apiUpdateOptions) error) *cobra.Command {
	o := &apiUpdateOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Rewrite the API report file (api.report in relcheck.yaml) from the code",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, runF, runAPIUpdate, o)
		},
	}
	o.flags(cmd)
	cmd.Flags().StringVar(&o.File, "file", "", "report file to write (default: api.report, else api/relcheck.txt)")
	return cmd
}

func runAPIUpdate(ctx context.Context, o *apiUpdateOptions) error {
	m, cfg, dir, err := o.load(ctx, o.streams)
	if err != nil {
		return err
	}
	target := o.File
	if target == "" {
		target = cfg.API.Report
	}
	hint := ""
	if target == "" {
		target = "api/relcheck.txt"
		hint = fmt.Sprintf(" (set api.report: %s in relcheck.yaml so relcheck check compares with it)", target)
	}
	path := apicompat.ReportPath(dir, target)
	features, err := o.features(m, cfg, dir)
	if err != nil {
		return err
	}
	data := apicompat.FormatReport(m.Path, features)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		fmt.Fprintf(o.out, "%s is up to date\n", target)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(o.out, "wrote %s: %d features%s\n", target, bytes.Count(data, []byte("\npkg "))+bytes.Count(data, []byte("\nhttp ")), hint)
	return nil
}
