package cli

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
)

// Shell completion beyond cobra's commands and flags: channel names,
// output formats, and the versions a release repository holds.

// completionDeadline bounds a completion that reads a release repository:
// a shell waits for it.
const completionDeadline = 3 * time.Second

// versionArgCommands take REPO VERSION as their first two arguments.
var versionArgCommands = map[string]bool{"promote": true, "halt": true, "rollout": true}

// addCompletions registers the completions of every command under root.
func addCompletions(root *cobra.Command) {
	walk(root, func(cmd *cobra.Command) {
		if f := cmd.Flags().Lookup("channel"); f != nil {
			_ = cmd.RegisterFlagCompletionFunc("channel", cobra.FixedCompletions(channels.Names, cobra.ShellCompDirectiveNoFileComp))
		}
		if f := cmd.Flags().Lookup("format"); f != nil {
			if _, ok := cmd.GetFlagCompletionFunc("format"); !ok {
				_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(formatsIn(f.Usage), cobra.ShellCompDirectiveNoFileComp))
			}
		}
		switch cmd.Name() {
		case "promote":
			_ = cmd.RegisterFlagCompletionFunc("to", cobra.FixedCompletions([]string{"beta", "stable"}, cobra.ShellCompDirectiveNoFileComp))
		case "path":
			_ = cmd.RegisterFlagCompletionFunc("from", repoVersions(0))
			_ = cmd.RegisterFlagCompletionFunc("to", repoVersions(0))
		}
		if versionArgCommands[cmd.Name()] && cmd.ValidArgsFunction == nil {
			cmd.ValidArgsFunction = func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				if len(args) == 1 {
					return repoVersions(0)(c, args, toComplete)
				}
				return nil, cobra.ShellCompDirectiveDefault
			}
		}
	})
}

func walk(cmd *cobra.Command, f func(*cobra.Command)) {
	f(cmd)
	for _, c := range cmd.Commands() {
		walk(c, f)
	}
}

// formatsIn lists the output formats a --format flag's usage names.
func formatsIn(usage string) []string {
	var out []string
	for _, f := range []string{"text", "json", "github", "markdown", "sarif", "html", "csv"} {
		if strings.Contains(usage, f) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		out = []string{"text", "json"}
	}
	return out
}

// repoVersions completes the versions published in the release repository
// that is argument i of the command.
func repoVersions(i int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) <= i {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		insecure, _ := cmd.Flags().GetBool("insecure")
		st, err := channels.Open(args[i], insecure)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(context.Background(), completionDeadline)
		defer cancel()
		tags, err := st.Tags(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, t := range tags {
			if _, _, err := channels.ParseVersion(t); err == nil && strings.HasPrefix(t, "v") && strings.HasPrefix(t, toComplete) {
				out = append(out, t)
			}
		}
		slices.Sort(out)
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
