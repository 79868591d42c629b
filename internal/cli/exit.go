package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/report"
)

// usageError is a mistake in the command line (exit 2).
type usageError struct {
	msg string
	cmd *cobra.Command
}

func (e *usageError) Error() string { return e.msg }

// ExitCode is report.ExitUsage.
func (e *usageError) ExitCode() int { return report.ExitUsage }

func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), cmd: cmd}
}

// exitCode maps an error to the exit code of DESIGN.md: report.ExitCode,
// which every error that decides one implements.
func exitCode(err error) int { return report.ExitCode(err) }

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef(cmd, "%s takes %d argument(s), got %d", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef(cmd, "unexpected argument %q", args[0])
	}
	return nil
}

// writeError turns a failure to write where a flag points into an input
// error (exit 2) that names the flag.
func writeError(flag string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return report.Inputf("%s: cannot write %s: %v", flag, pe.Path, pe.Err)
	case errors.As(err, &le):
		return report.Inputf("%s: cannot write %s: %v", flag, le.New, le.Err)
	}
	return err
}

// formatFlag checks a --format that takes text or json.
func formatFlag(cmd *cobra.Command, format string) error {
	if format != "text" && format != "json" {
		return usagef(cmd, "--format must be text or json, not %q", format)
	}
	return nil
}

// run calls a command's run seam (a test's) or its run function.
func run[O any](cmd *cobra.Command, runF, runX func(context.Context, *O) error, o *O) error {
	if runF != nil {
		return runF(cmd.Context(), o)
	}
	return runX(cmd.Context(), o)
}

// optionFlags are the flags whose names are not their library option's
// name in kebab case.
var optionFlags = map[string]string{"Dir": "--repo"}

// flagName is the flag that sets a library's option: the libraries name
// their Options fields (report.OptionNamer), the CLI its flags.
// "DatabaseURL" is --database-url, "rollbackTo" --rollback-to.
func flagName(option string) string {
	if f, ok := optionFlags[option]; ok {
		return f
	}
	var b strings.Builder
	rs := []rune(option)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			// A word starts at an upper-case letter after a lower-case one,
			// or before a lower-case one at the end of an acronym.
			if i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return "--" + b.String()
}
