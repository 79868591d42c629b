package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck"
	"github.com/relcheck/relcheck/internal/demo"
	"github.com/relcheck/relcheck/internal/pipeline"
	"github.com/relcheck/relcheck/internal/report"
)

func newDemoCmd(s *streams) *cobra.Command {
	var dir, format string
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the gates on a bundled sample project (no setup, no network)",
		Long: `Materialise a small sample Go library — three releases as git tags and a
pending, uncommitted change — into a temporary directory, and run
relcheck check on it (the report ends with the next version), showing what
a maintainer would see in CI. The pending change breaks the deprecation policy on
purpose; the demo itself exits 0 when it ran.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := report.ParseFormat(format)
			if err != nil {
				return usagef(cmd, "--format: %v", err)
			}
			ctx := cmd.Context()
			stages, err := demo.Stages(relcheck.Demo, "testdata/demo")
			if err != nil {
				return err
			}
			target := dir
			if target == "" {
				tmp, err := os.MkdirTemp("", "relcheck-demo-")
				if err != nil {
					return err
				}
				target = filepath.Join(tmp, "textkit")
				if !keep {
					defer os.RemoveAll(tmp)
				}
			}
			if err := demo.Materialize(ctx, target, stages); err != nil {
				return err
			}
			info := s.err
			if f != report.FormatText {
				info = nil
			}
			say := func(format string, args ...any) {
				if info != nil {
					fmt.Fprintf(info, format, args...)
				}
			}
			say("relcheck demo: sample project example.com/textkit in %s\n", target)
			for _, st := range stages {
				if st.Tag != "" {
					say("  %s  %s\n", st.Tag, st.Message)
				} else {
					say("  (working tree)  %s\n", st.Message)
				}
			}
			say("\n$ relcheck check\n")
			env, err := pipeline.Resolve(ctx, pipeline.Options{Dir: target})
			if err != nil {
				return err
			}
			env.Display = "textkit"
			rep, err := pipeline.Run(ctx, env, nil, nil)
			if err != nil {
				return err
			}
			if err := writeReport(s, rep, f, ""); err != nil {
				return err
			}
			if f == report.FormatText {
				outcome := rep.Outcome()
				fmt.Fprintf(s.out, "\nrelcheck check would exit %d here", exitCode(outcome))
				if outcome != nil {
					fmt.Fprint(s.out, ": the pending change is not releasable until the errors above are fixed")
				}
				fmt.Fprintln(s.out, ".")
				if keep || dir != "" {
					fmt.Fprintf(s.out, "The sample project stays in %s; try: relcheck check --repo %s\n", target, target)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "materialise the sample project here (must be empty) and keep it")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary sample project and print its path")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json, github, markdown or sarif")
	return cmd
}
