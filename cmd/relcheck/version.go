package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/check"
	"github.com/relcheck/relcheck/report"
)

func newVersionCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Versions derived from the gates",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef(cmd, "missing subcommand: try 'relcheck version next'")
		},
	}
	var o struct {
		repo, base, config, format, channel string
	}
	next := &cobra.Command{
		Use:   "next",
		Short: "Print the next version the gates allow (e.g. v1.5.0)",
		Long: `Print the next version derived from the gates: a minor bump for compatible
additions (and for incompatible changes before v1), a patch bump when the API
did not change. Exit 1 when the change cannot be released under the current
module path (an incompatible change at v1 or later).

--channel edge gives a sortable prerelease of the next version for the
current commit; beta gives the next -beta.N; stable (the default) the plain
version.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.format != "text" && o.format != "json" {
				return usagef(cmd, "--format must be text or json, not %q", o.format)
			}
			switch o.channel {
			case "stable", "beta", "edge":
			default:
				return usagef(cmd, "--channel must be edge, beta or stable, not %q", o.channel)
			}
			ctx := cmd.Context()
			env, err := check.Resolve(ctx, check.Options{Dir: o.repo, Base: o.base, ConfigFile: o.config})
			if err != nil {
				return err
			}
			rep, err := check.Run(ctx, env, nil, nil)
			if err != nil {
				return err
			}
			outcome := rep.Outcome()
			out := report.Version{}
			if rep.Version != nil {
				out = *rep.Version
			} else {
				out.Reasons = append(out.Reasons, "no gate derived a version: "+checkSummaries(rep))
			}
			if out.Next != "" {
				ch, err := check.ChannelVersion(ctx, env, out.Next, o.channel, nil)
				if err != nil {
					return err
				}
				out.Next = ch
			}
			if o.format == "json" {
				data, _ := json.MarshalIndent(struct {
					report.Version
					Channel string        `json:"channel"`
					Status  report.Status `json:"status"`
				}{out, o.channel, rep.Status}, "", "  ")
				fmt.Fprintf(s.out, "%s\n", data)
			} else if out.Next != "" {
				fmt.Fprintln(s.out, out.Next)
			}
			if rep.Version == nil && outcome == nil {
				return fmt.Errorf("no gate derived a version (%s)", checkSummaries(rep))
			}
			if outcome != nil {
				if out.Next == "" {
					fmt.Fprintf(s.err, "relcheck: no release is possible as is: %s (%s)\n", strings.Join(out.Reasons, "; "), checkSummaries(rep))
				} else {
					fmt.Fprintf(s.err, "relcheck: %s is not releasable as is: %s\n", out.Next, checkSummaries(rep))
				}
				return outcome
			}
			if out.Next == "" {
				return fmt.Errorf("%s", strings.Join(out.Reasons, "; "))
			}
			return nil
		},
	}
	next.Flags().StringVar(&o.repo, "repo", ".", "project directory")
	next.Flags().StringVar(&o.base, "base", "", "ref to compare with (default: latest vX.Y.Z tag reachable from HEAD)")
	next.Flags().StringVar(&o.config, "config", "", "configuration file (default: relcheck.yaml in --repo)")
	next.Flags().StringVar(&o.format, "format", "text", "text or json")
	next.Flags().StringVar(&o.channel, "channel", "stable", "edge, beta or stable")
	cmd.AddCommand(next)
	return cmd
}

func checkSummaries(rep *report.Report) string {
	var parts []string
	for _, c := range rep.Checks {
		parts = append(parts, fmt.Sprintf("%s %s: %s", c.Name, c.Status, c.Summary))
	}
	return strings.Join(parts, "; ")
}
