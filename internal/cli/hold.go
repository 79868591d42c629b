package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/report"
)

// holdOptions are the inputs of `relcheck hold` and `relcheck unhold`.
type holdOptions struct {
	*streams
	opFlags
	// Version is the release held ("": every upgrade).
	Version string
	// Until ends the hold (zero: until unheld).
	Until time.Time
	// Unhold removes the hold (and a version's bad mark) instead.
	Unhold bool
}

func newHoldCmd(s *streams, runF func(context.Context, *holdOptions) error) *cobra.Command {
	o := &holdOptions{streams: s}
	var until string
	var forever bool
	cmd := &cobra.Command{
		Use:   "hold [VERSION] [--until DATE | --forever]",
		Short: "Keep this install from upgrading (to VERSION, or at all)",
		Long: `Keep this install from taking VERSION, or any upgrade without VERSION, until
DATE (YYYY-MM-DD or RFC 3339) or until 'relcheck unhold' (--forever, the
default). The hold is kept in the install's state: timer runs, channel
refreshes and restarts keep it. 'relcheck rollback' holds the version it
left by itself, until a newer release is on the channel.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(cmd); err != nil {
				return err
			}
			if len(args) == 1 {
				if _, _, err := channels.ParseVersion(args[0]); err != nil {
					return usagef(cmd, "%v", err)
				}
				o.Version = args[0]
			}
			if until != "" && forever {
				return usagef(cmd, "--until and --forever exclude each other")
			}
			if until != "" {
				t, err := time.Parse("2006-01-02", until)
				if err != nil {
					if t, err = time.Parse(time.RFC3339, until); err != nil {
						return usagef(cmd, "--until: %q is not a date like 2026-12-24", until)
					}
				}
				o.Until = t.UTC()
			}
			return run(cmd, runF, runHold, o)
		},
	}
	o.flags(cmd)
	cmd.Flags().StringVar(&until, "until", "", "end the hold on this date (YYYY-MM-DD)")
	cmd.Flags().BoolVar(&forever, "forever", false, "hold until 'relcheck unhold' (the default)")
	return cmd
}

func newUnholdCmd(s *streams, runF func(context.Context, *holdOptions) error) *cobra.Command {
	o := &holdOptions{streams: s, Unhold: true}
	cmd := &cobra.Command{
		Use:   "unhold [VERSION]",
		Short: "Remove a hold, and let a release that failed here be tried again",
		Long: `Remove the hold of VERSION (or, without VERSION, the hold of every upgrade).
For a VERSION that failed here (health check), also remove its bad mark, so
the next upgrade may try it again.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(cmd); err != nil {
				return err
			}
			if len(args) == 1 {
				o.Version = args[0]
			}
			return run(cmd, runF, runHold, o)
		},
	}
	o.flags(cmd)
	return cmd
}

func runHold(_ context.Context, o *holdOptions) error {
	c, err := o.client(o.streams)
	if err != nil {
		return err
	}
	what := "every upgrade"
	if o.Version != "" {
		what = o.Version
	}
	return c.Installer.Edit(func(st *channels.LocalState) error {
		if o.Unhold {
			hold, bad := st.Unhold(o.Version)
			switch {
			case hold && bad:
				fmt.Fprintf(o.out, "unheld %s, and removed its bad mark: the next upgrade may take it\n", what)
			case hold:
				fmt.Fprintf(o.out, "unheld %s\n", what)
			case bad:
				fmt.Fprintf(o.out, "removed the bad mark of %s: the next upgrade may try it again\n", what)
			default:
				return report.Inputf("%s is not held here, and not marked bad (relcheck status lists holds)", what)
			}
			return nil
		}
		h := channels.HoldMark{Version: o.Version, At: time.Now().UTC(), Until: o.Until, Reason: "held by the operator"}
		st.Hold(h)
		fmt.Fprintln(o.out, h.String())
		return nil
	})
}
