package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manOptions are the inputs of `relcheck man`.
type manOptions struct {
	*streams
	Dir  string
	root *cobra.Command
}

func newManCmd(s *streams, runF func(context.Context, *manOptions) error) *cobra.Command {
	o := &manOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "man DIR",
		Short: "Write relcheck's man pages (section 1) into DIR",
		Long: `Write one man page per command into DIR (relcheck.1, relcheck-check.1,
relcheck-upgrade.1, …), generated from the commands' help. Install them with
e.g. 'relcheck man /usr/local/share/man/man1'; read one with
'man -l DIR/relcheck-upgrade.1'.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef(cmd, "give the directory to write the man pages into")
			}
			return nil
		},
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveFilterDirs
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Dir, o.root = args[0], cmd.Root()
			return run(cmd, runF, runMan, o)
		},
	}
	return cmd
}

func runMan(_ context.Context, o *manOptions) error {
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	o.root.DisableAutoGenTag = true
	// The help's indented blocks (lists, tables, YAML) are preformatted
	// text; the man page generator reads Long as markdown, which would
	// reflow them.
	walk(o.root, func(c *cobra.Command) { c.Long = manMarkdown(c.Long) })
	header := &doc.GenManHeader{Title: "RELCHECK", Section: "1", Source: "relcheck " + versionString(), Manual: "relcheck manual"}
	if err := doc.GenManTree(o.root, header, o.Dir); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	entries, _ := os.ReadDir(o.Dir)
	fmt.Fprintf(o.out, "wrote %d man pages into %s\n", len(entries), o.Dir)
	return nil
}

// manMarkdown marks the indented blocks of a help text as code blocks, so
// that they keep their lines in a man page.
func manMarkdown(long string) string {
	lines := strings.Split(long, "\n")
	var out []string
	in := false
	for _, l := range lines {
		indented := strings.HasPrefix(l, " ") && strings.TrimSpace(l) != ""
		switch {
		case indented && !in:
			if len(out) > 0 && out[len(out)-1] != "" {
				out = append(out, "")
			}
			in = true
		case !indented && in && strings.TrimSpace(l) != "":
			out = append(out, "")
			in = false
		}
		if in && l != "" {
			l = "    " + l
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
