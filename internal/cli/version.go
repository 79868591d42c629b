package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/check"
	"github.com/relcheck/relcheck/report"
)

func newVersionCmd(s *streams) *cobra.Command {
	cmd := parent("version", "This relcheck's version; 'version next': the next version the gates allow", "relcheck version next")
	// 'relcheck version' alone is what many look for first: relcheck's own.
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		fmt.Fprintf(s.out, "relcheck version %s\n(the next version of a project: relcheck version next)\n", versionString())
		return nil
	}
	cmd.AddCommand(newVersionNextCmd(s, nil))
	return cmd
}

// versionNextOptions are the inputs of `relcheck version next`.
type versionNextOptions struct {
	*streams
	Repo, Base, Config, Format, Channel string
	// AllGates runs every gate, as relcheck check does, not only those that
	// decide the version.
	AllGates bool
}

func newVersionNextCmd(s *streams, runF func(context.Context, *versionNextOptions) error) *cobra.Command {
	o := &versionNextOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "next",
		Short: "Print the next version the gates allow (e.g. v1.5.0)",
		Long: `Print the next version derived from the gates: a minor bump for compatible
additions (and for incompatible changes before v1), a patch bump when the
API did not change. A project without an exported Go API gets
a minor bump for new migrations, a patch bump otherwise.

By default only what decides the version runs, in seconds: the api gate, and
the migrations directory's files (no database is started, perf does not
run). --all-gates runs every gate, as 'relcheck check' does.

Exit codes:
  0  the version is printed
  1  a gate that ran failed, so the change cannot be released as is: an
     incompatible API change at v1 or later under the same module path, an
     identifier removed before its deprecation window ended, a released
     migration modified or deleted; with --all-gates also a migration that
     fails to replay or exceeds the error budget, or a perf regression.
     The version it would be, if any, is still printed.
  2  bad flags, configuration or repository
  3  relcheck could not decide (e.g. PostgreSQL missing with --all-gates)

--channel edge gives a sortable prerelease of the next version for the
current commit; beta gives the next -beta.N; stable (the default) the plain
version.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(cmd, o.Format); err != nil {
				return err
			}
			switch o.Channel {
			case "stable", "beta", "edge":
			default:
				return usagef(cmd, "--channel must be edge, beta or stable, not %q", o.Channel)
			}
			return run(cmd, runF, runVersionNext, o)
		},
	}
	cmd.Flags().StringVar(&o.Repo, "repo", ".", "project directory")
	cmd.Flags().StringVar(&o.Base, "base", "", "ref to compare with (default: latest vX.Y.Z tag reachable from HEAD)")
	cmd.Flags().StringVar(&o.Config, "config", "", "configuration file (default: relcheck.yaml in --repo)")
	cmd.Flags().StringVar(&o.Format, "format", "text", "text or json")
	cmd.Flags().StringVar(&o.Channel, "channel", "stable", "edge, beta or stable")
	cmd.Flags().BoolVar(&o.AllGates, "all-gates", false, "run every gate (migrations on a database, perf), not only those that decide the version")
	return cmd
}

func runVersionNext(ctx context.Context, o *versionNextOptions) error {
	env, err := check.Resolve(ctx, check.Options{Dir: o.Repo, Base: o.Base, ConfigFile: o.Config})
	if err != nil {
		return err
	}
	runGates := check.RunVersion
	if o.AllGates {
		runGates = func(ctx context.Context, env *check.Env, p check.Progress) (*report.Report, error) {
			return check.Run(ctx, env, nil, p)
		}
	}
	rep, err := runGates(ctx, env, nil)
	if err != nil {
		return err
	}
	outcome := rep.Outcome()
	out := report.Version{}
	if rep.Version != nil {
		out = *rep.Version
	} else {
		out.Reasons = append(out.Reasons, "no gate derived a version: "+check.Summaries(rep))
	}
	if out.Next != "" {
		ch, err := check.ChannelVersion(ctx, env, out.Next, o.Channel, nil)
		if err != nil {
			return err
		}
		out.Next = ch
	}
	if o.Format == "json" {
		data, _ := json.MarshalIndent(struct {
			report.Version
			Channel string        `json:"channel"`
			Status  report.Status `json:"status"`
		}{out, o.Channel, rep.Status}, "", "  ")
		fmt.Fprintf(o.out, "%s\n", data)
	} else if out.Next != "" {
		fmt.Fprintln(o.out, out.Next)
	}
	if rep.Version == nil && outcome == nil {
		return fmt.Errorf("no gate derived a version (%s)", check.Summaries(rep))
	}
	if outcome != nil {
		if out.Next == "" {
			fmt.Fprintf(o.err, "relcheck: no release is possible as is: %s (%s)\n", strings.Join(out.Reasons, "; "), check.Summaries(rep))
		} else {
			fmt.Fprintf(o.err, "relcheck: %s is not releasable as is: %s\n", out.Next, check.Summaries(rep))
		}
		return outcome
	}
	if out.Next == "" {
		return fmt.Errorf("%s", strings.Join(out.Reasons, "; "))
	}
	return nil
}
