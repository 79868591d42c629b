package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
)

// statusOptions are the inputs of `relcheck status`.
type statusOptions struct {
	*streams
	opFlags
	// Phased decides as 'upgrade --phased' would.
	Phased bool
}

func newStatusCmd(s *streams, runF func(context.Context, *statusOptions) error) *cobra.Command {
	o := &statusOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "What this install runs, what happened last, and what upgrade would do and why",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(cmd); err != nil {
				return err
			}
			return run(cmd, runF, runStatus, o)
		},
	}
	o.flags(cmd)
	cmd.Flags().BoolVar(&o.Phased, "phased", false, "decide as 'upgrade --phased' would")
	return cmd
}

func runStatus(ctx context.Context, o *statusOptions) error {
	s := o.streams
	c, err := o.client(s)
	if err != nil {
		return err
	}
	st, err := c.Installer.LoadState()
	if err != nil {
		return err
	}
	cur, _ := c.Installer.Current()
	stopped, err := c.Installer.Interrupted()
	if err != nil {
		return err
	}
	chk, cerr := c.Check(ctx, channels.DecideOptions{Phased: o.Phased}, false)
	if o.Format == "json" {
		v := struct {
			Installed   string                      `json:"installed,omitempty"`
			Current     string                      `json:"current,omitempty"`
			Previous    string                      `json:"previous,omitempty"`
			LastCheck   time.Time                   `json:"lastCheck,omitzero"`
			LastSuccess time.Time                   `json:"lastSuccess,omitzero"`
			Last        *channels.Outcome           `json:"lastOutcome,omitempty"`
			Decision    *channels.Decision          `json:"decision,omitempty"`
			Error       string                      `json:"error,omitempty"`
			Bad         map[string]channels.BadMark `json:"bad,omitempty"`
			Holds       []channels.HoldMark         `json:"holds,omitempty"`
			Interrupted *channels.Interrupted       `json:"interrupted,omitempty"`
		}{Installed: st.Installed, Current: cur, Previous: st.Previous, LastCheck: st.LastCheck, LastSuccess: st.LastSuccess, Bad: st.Bad, Holds: st.Holds, Interrupted: stopped}
		if n := len(st.Outcomes); n > 0 {
			v.Last = &st.Outcomes[n-1]
		}
		if cerr != nil {
			v.Error = cerr.Error()
		} else {
			v.Decision = chk.Decision
		}
		o.marshal(s, v)
		return cerr
	}
	if st.Installed == "" && cur == "" {
		fmt.Fprintln(s.out, "installed  nothing yet")
	} else {
		fmt.Fprintf(s.out, "installed  %s (current → %s)\n", orNothing(st.Installed), orNothing(cur))
	}
	if st.Previous != "" {
		fmt.Fprintf(s.out, "previous   %s\n", st.Previous)
	}
	if n := len(st.Outcomes); n > 0 {
		l := st.Outcomes[n-1]
		fmt.Fprintf(s.out, "last       %s %s → %s: %s at %s\n", l.Action, orNothing(l.From), l.To, describeResult(l), l.Time.Format(time.RFC3339))
	}
	for _, h := range st.Holds {
		fmt.Fprintf(s.out, "held       %s\n", h)
	}
	for _, v := range slices.Sorted(maps.Keys(st.Bad)) {
		b := st.Bad[v]
		fmt.Fprintf(s.out, "bad        %s failed here at %s (%s): 'relcheck unhold %s' to try it again\n", v, b.At.Format(time.RFC3339), b.Reason, v)
	}
	if stopped != nil {
		fmt.Fprintf(s.out, "interrupted %s %s → %s stopped at step %s (started %s): 'relcheck recover' finishes or undoes it (the next upgrade does too)\n",
			stopped.Action, orNothing(stopped.From), stopped.To, stopped.Step, stopped.Started.Format(time.RFC3339))
	}
	if cerr != nil {
		return cerr
	}
	return o.printDecision(s, "text", c, chk, true)
}
