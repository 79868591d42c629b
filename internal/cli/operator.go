package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/report"
)

// What the operator's commands (upgrade, status, rollback, recover) share:
// their flags, the client of the subscription, the run under the install's
// lock, and how a decision is printed.

// opFlags are the flags of the operator's commands.
type opFlags struct {
	Config, Format, LogFormat string
}

func (o *opFlags) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.Config, "config", "", "subscription file")
	cmd.Flags().StringVar(&o.Format, "format", "text", "output format: text or json")
	cmd.Flags().StringVar(&o.LogFormat, "log-format", "text", "log lines on stderr: text or json (json also makes stdout one JSON record per line, unless --format is given)")
}

// check checks the flags' values. With --log-format json, stdout is JSON
// too unless --format says otherwise: a log collector reading both
// streams gets no text lines.
func (o *opFlags) check(cmd *cobra.Command) error {
	if err := formatFlag(cmd, o.Format); err != nil {
		return err
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		return usagef(cmd, "--log-format must be text or json, not %q", o.LogFormat)
	}
	if o.LogFormat == "json" && !cmd.Flags().Changed("format") {
		o.Format = "json"
	}
	return nil
}

// marshal writes v as JSON on stdout: one line per record beside JSON
// logs (a log collector reads records by line), indented otherwise.
func (o *opFlags) marshal(s *streams, v any) {
	enc := json.NewEncoder(s.out)
	// Conditions like "< 0.01" stay readable (not \u003c).
	enc.SetEscapeHTML(false)
	if o.LogFormat != "json" {
		enc.SetIndent("", "  ")
	}
	enc.Encode(v)
}

// client opens the subscription, with structured logs on stderr.
func (o *opFlags) client(s *streams) (*channels.Client, error) {
	var h slog.Handler = slog.NewTextHandler(s.err, nil)
	if o.LogFormat == "json" {
		h = slog.NewJSONHandler(s.err, nil)
	}
	sub, err := channels.LoadSubscription(subscriptionPath(s, o.Config))
	if err != nil {
		return nil, err
	}
	c, err := channels.NewClient(sub, slog.New(h))
	if err != nil {
		return nil, err
	}
	c.Installer.AfterStep = s.afterStep
	return c, nil
}

// locked runs f as one operator run of the install (channels.Client.Run):
// under its lock, after recovering an interrupted operation, with the
// run's outcomes recorded in telemetry.
func (o *opFlags) locked(ctx context.Context, s *streams, c *channels.Client, f func(*channels.LocalState) error) error {
	rec := channels.TelemetryRecorder{Telemetry: telemetryClient(s), Log: c.Installer.Log}
	return c.Run(ctx, rec, func(out channels.Outcome) {
		if o.LogFormat == "json" {
			c.Installer.Log.Warn("recovered an interrupted operation", "from", out.From, "to", out.To, "result", describeResult(out))
			return
		}
		fmt.Fprintf(s.err, "relcheck: recovered an interrupted operation on %s → %s: %s\n", orNothing(out.From), out.To, describeResult(out))
	}, f)
}

// progress is the download progress of an install: a bar on a terminal,
// nothing in JSON logs (the installer logs each hop).
func (o *opFlags) progress(s *streams, label string) *byteBar {
	if o.LogFormat == "json" {
		return nil
	}
	return &byteBar{w: s.err, tty: isTerminal(s.err), label: label}
}

func orNothing(v string) string {
	if v == "" {
		return "(nothing)"
	}
	return v
}

func describeResult(o channels.Outcome) string {
	switch o.Result {
	case channels.Success:
		return "done"
	case channels.RolledBack:
		return "rolled back (" + o.ReasonClass + ": " + o.Reason + ")"
	}
	return o.Reason
}

// confirm asks a yes/no question on the terminal.
func confirm(s *streams, q string) (bool, error) {
	in, ok := s.in.(*os.File)
	if !ok || !isTerminal(s.err) || !isTerminal(in) {
		return false, report.Inputf("not a terminal: pass --yes to proceed without confirmation")
	}
	fmt.Fprintf(s.err, "%s [y/N] ", q)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && err != io.EOF {
		return false, err
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

// proceed asks q on the terminal unless yes; a no, or no terminal to ask
// on, is an input error and nothing changes.
func proceed(s *streams, yes bool, q string) error {
	if yes {
		return nil
	}
	ok, err := confirm(s, q)
	if err != nil {
		return err
	}
	if !ok {
		return report.Inputf("not confirmed: nothing changed")
	}
	return nil
}

// decisionJSON is the machine-readable decision.
type decisionJSON struct {
	*channels.Decision
	Channel   string `json:"channel"`
	HeadSeq   uint64 `json:"headSeq"`
	Installed string `json:"installed,omitempty"`
}

func (o *opFlags) printDecision(s *streams, format string, c *channels.Client, chk *channels.Checked, explain bool) error {
	d := chk.Decision
	if format == "json" {
		o.marshal(s, decisionJSON{d, c.Sub.Channel, chk.Head.Seq, chk.State.Installed})
		return nil
	}
	w := s.out
	fmt.Fprintf(w, "%s of %s (head seq %d, verified): installed %s\n", c.Sub.Channel, c.Sub.Repo, chk.Head.Seq, orNothing(chk.State.Installed))
	switch d.Action {
	case channels.ActionNone:
		fmt.Fprintf(w, "nothing to do\n")
	case channels.ActionWait:
		fmt.Fprintf(w, "waiting\n")
	default:
		fmt.Fprintf(w, "%s to %s:\n", d.Action, d.Target)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  HOP\tVERSION\tDIGEST\tWHY")
		for i, h := range d.Path {
			why := "target"
			if h.RequiredStop && i < len(d.Path)-1 {
				why = "required stop: " + h.StopReason
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", i+1, h.Version, shortDigest(h.Digest), why)
		}
		tw.Flush()
	}
	if explain || d.Action == channels.ActionWait || d.Action == channels.ActionNone {
		for _, r := range d.Reasons {
			fmt.Fprintf(w, "  - %s\n", r)
		}
	}
	if explain && c.Sub.Analysis != nil {
		fmt.Fprintf(w, "  analysis: %s\n", c.Sub.Analysis.Plan())
	}
	return nil
}
