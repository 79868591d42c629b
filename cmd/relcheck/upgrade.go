package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/internal/config"
	"github.com/relcheck/relcheck/report"
)

// subscriptionPath is where the subscription lives: --config, else
// $XDG_CONFIG_HOME/relcheck/subscription.yaml when XDG_CONFIG_HOME is set,
// /etc/relcheck/ as root, ~/.config/relcheck/ otherwise.
func subscriptionPath(s *streams, flag string) string {
	if flag != "" {
		return flag
	}
	if d := s.getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "relcheck", "subscription.yaml")
	}
	if os.Geteuid() == 0 {
		return "/etc/relcheck/subscription.yaml"
	}
	home := s.getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".config", "relcheck", "subscription.yaml")
}

func newSubscribeCmd(s *streams) *cobra.Command {
	var o struct {
		channel, key, dir, cfg, pre, post, health, rollback, pin, minAge, metrics string
		insecure                                                                  bool
		keep                                                                      int
	}
	cmd := &cobra.Command{
		Use:   "subscribe REPO --channel C --key cosign.pub --install-dir DIR",
		Short: "Follow a release channel: write this install's subscription",
		Long: `Write the subscription 'relcheck upgrade' follows: the repository and channel,
the maintainers' public key, where versions are installed, the hooks, and a
random install id that places this install in phased rollouts (and says
nothing else about it). Subscribing again keeps the install id.

The file ($XDG_CONFIG_HOME/relcheck/subscription.yaml, /etc/relcheck/ as root,
or --config) takes more options by editing it:

  pin: "1.4"                     # stay on a major (1) or minor (1.4) line
  hold: {until: 2026-12-24, security: true}   # or until: forever; security fixes pass
  window: {days: [sat, sun], hours: "02:00-05:00", timezone: Europe/Berlin}
  minAge: 3d                     # a release must be this old
  staging: [{days: 2, percent: 25}, {days: 7, percent: 100}]  # counted from first seen here
  healthTimeout: 60s
  healthRetries: 5
  keep: 3                        # versions kept on disk
  metricsFile: /var/lib/node_exporter/textfile/relcheck.prom
  require: {installs: 50, rollbackRate: "<2%"}   # wait for the shared telemetry`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.dir == "" {
				return usagef(cmd, "give --install-dir: where versions are installed")
			}
			path := subscriptionPath(s, o.cfg)
			sub := &channels.Subscription{}
			if old, err := channels.LoadSubscription(path); err == nil {
				sub = old
			} else if _, statErr := os.Stat(path); statErr == nil {
				return err
			}
			key, err := filepath.Abs(o.key)
			if err != nil {
				return err
			}
			if _, err := channels.LoadVerifier(key); err != nil {
				return err
			}
			dir, err := filepath.Abs(o.dir)
			if err != nil {
				return err
			}
			sub.Repo, sub.Key, sub.InstallDir = args[0], key, dir
			// Subscribing again keeps what the flags do not change.
			if sub.Channel == "" || cmd.Flags().Changed("channel") {
				sub.Channel = o.channel
			}
			if cmd.Flags().Changed("insecure") {
				sub.Insecure = o.insecure
			}
			if sub.InstallID == "" {
				sub.InstallID = channels.NewInstallID()
			}
			set := func(flag string, dst *string, v string) {
				if cmd.Flags().Changed(flag) {
					*dst = v
				}
			}
			set("pre-cmd", &sub.PreCmd, o.pre)
			set("post-cmd", &sub.PostCmd, o.post)
			set("health-cmd", &sub.HealthCmd, o.health)
			set("rollback-cmd", &sub.RollbackCmd, o.rollback)
			set("pin", &sub.Pin, o.pin)
			set("metrics-file", &sub.MetricsFile, o.metrics)
			if cmd.Flags().Changed("min-age") {
				d, err := config.ParseDuration(o.minAge)
				if err != nil {
					return usagef(cmd, "--min-age: %v", err)
				}
				sub.MinAge = config.Duration(d)
			}
			if cmd.Flags().Changed("keep") {
				sub.Keep = o.keep
			}
			if err := sub.Validate(); err != nil {
				return err
			}
			if err := os.MkdirAll(sub.InstallDir, 0o755); err != nil {
				return err
			}
			if err := sub.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(s.out, "subscribed to %s of %s\n  subscription  %s\n  install dir   %s\n  install id    %s\n", sub.Channel, sub.Repo, path, sub.InstallDir, sub.InstallID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.channel, "channel", "stable", "channel: edge, beta or stable")
	f.StringVar(&o.key, "key", channels.PublicKeyFile, "the maintainers' public key")
	f.StringVar(&o.dir, "install-dir", "", "where versions are installed (DIR/current links to the running one)")
	f.StringVar(&o.cfg, "config", "", "subscription file")
	f.StringVar(&o.pre, "pre-cmd", "", "shell command before switching (e.g. a backup)")
	f.StringVar(&o.post, "post-cmd", "", "shell command after switching (e.g. migrate)")
	f.StringVar(&o.health, "health-cmd", "", "shell command that exits 0 when the new version is healthy")
	f.StringVar(&o.rollback, "rollback-cmd", "", "shell command after switching back from a failed version")
	f.StringVar(&o.pin, "pin", "", "stay on a major (1) or minor (1.4) line")
	f.StringVar(&o.minAge, "min-age", "", "a release must have been on the channel this long (e.g. 3d)")
	f.StringVar(&o.metrics, "metrics-file", "", "keep a Prometheus textfile-collector file here")
	f.IntVar(&o.keep, "keep", 0, "versions kept on disk (default 3)")
	f.BoolVar(&o.insecure, "insecure", false, "allow a plain-HTTP registry")
	return cmd
}

// opOpts are the flags of the operator's commands.
type opOpts struct {
	cfg, format, logFormat string
}

func (o *opOpts) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.cfg, "config", "", "subscription file")
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text or json")
	cmd.Flags().StringVar(&o.logFormat, "log-format", "text", "log lines on stderr: text or json")
}

// client opens the subscription, with structured logs on stderr.
func (o *opOpts) client(cmd *cobra.Command, s *streams) (*channels.Client, error) {
	if o.format != "text" && o.format != "json" {
		return nil, usagef(cmd, "--format must be text or json, not %q", o.format)
	}
	var h slog.Handler
	switch o.logFormat {
	case "json":
		h = slog.NewJSONHandler(s.err, nil)
	case "text":
		h = slog.NewTextHandler(s.err, nil)
	default:
		return nil, usagef(cmd, "--log-format must be text or json, not %q", o.logFormat)
	}
	sub, err := channels.LoadSubscription(subscriptionPath(s, o.cfg))
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
func locked(ctx context.Context, s *streams, c *channels.Client, f func(*channels.LocalState) error) error {
	rec := channels.TelemetryRecorder{Telemetry: telemetryClient(s), Log: c.Installer.Log}
	return c.Run(ctx, rec, func(out channels.Outcome) {
		fmt.Fprintf(s.err, "relcheck: recovered an interrupted operation on %s → %s: %s\n", orNothing(out.From), out.To, describeResult(out))
	}, f)
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

func newUpgradeCmd(s *streams) *cobra.Command {
	var o opOpts
	var phased, dryRun, yes bool
	var to string
	cmd := &cobra.Command{
		Use:   "upgrade [--phased] [--dry-run] [--to V] [--yes]",
		Short: "Install the newest release of the subscribed channel that is for this install",
		Long: `Fetch and verify the channel's head (signature, not expired, seq not below
the newest seen here), pick the newest release that is for this install —
not halted, inside the pin, past any hold, old enough, covered by the phased
rollout (--phased: this install's bucket below the rollout) and the local
staging schedule, inside the window — and install it through the required
stops, hop by hop: download and verify, pre hook, switch DIR/current, post
hook, health check; on failure switch back, run the rollback hook and mark
the release bad here.

The plan is printed before anything changes; --yes skips the question (and is
needed without a terminal). --dry-run explains the decision and changes
nothing. Quiet, exit 0, when there is nothing to do; exit 1 when a hop
failed and was rolled back or verification refused the channel.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(cmd, s)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			opts := channels.DecideOptions{Phased: phased, To: to}
			if dryRun {
				chk, err := c.Check(ctx, opts, false)
				if err != nil {
					return err
				}
				return printDecision(s, o.format, c, chk, true)
			}
			return locked(ctx, s, c, func(*channels.LocalState) error {
				chk, err := c.Check(ctx, opts, true)
				if err != nil {
					return err
				}
				d := chk.Decision
				if d.Action == channels.ActionNone || d.Action == channels.ActionWait {
					if o.format == "json" {
						return printDecision(s, o.format, c, chk, false)
					}
					return nil // quiet for timers
				}
				if o.format == "text" {
					printDecision(s, o.format, c, chk, false)
				}
				if !yes {
					ok, err := confirm(s, "Proceed?")
					if err != nil {
						return err
					}
					if !ok {
						return &report.InputError{Err: errors.New("not confirmed: nothing changed")}
					}
				}
				bar := &byteBar{w: s.err, tty: isTerminal(s.err), label: "downloading " + d.Target}
				c.Installer.Progress = bar.add
				out, err := c.Installer.Apply(ctx, chk.State, d, chk.HeadDigest)
				bar.finish()
				if err != nil {
					return err
				}
				if o.format == "json" {
					return printDecision(s, o.format, c, chk, false)
				}
				fmt.Fprintf(s.out, "%s: %s → %s in %s (%d hop(s))\n", d.Action, orNothing(out.From), out.To, (time.Duration(out.DurationMs) * time.Millisecond).Round(time.Millisecond), out.Hops)
				return nil
			})
		},
	}
	o.flags(cmd)
	cmd.Flags().BoolVar(&phased, "phased", false, "take part in phased rollouts: wait until a release's rollout covers this install")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "explain the decision, change nothing")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	cmd.Flags().StringVar(&to, "to", "", "install this version (phasing, staging, holds, minimum age and window do not apply)")
	return cmd
}

// confirm asks a yes/no question on the terminal.
func confirm(s *streams, q string) (bool, error) {
	in, ok := s.in.(*os.File)
	if !ok || !isTerminal(s.err) || !isTerminal(in) {
		return false, &report.InputError{Err: errors.New("not a terminal: pass --yes to proceed without confirmation")}
	}
	fmt.Fprintf(s.err, "%s [y/N] ", q)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && err != io.EOF {
		return false, err
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

// decisionJSON is the machine-readable decision.
type decisionJSON struct {
	*channels.Decision
	Channel   string `json:"channel"`
	HeadSeq   uint64 `json:"headSeq"`
	Installed string `json:"installed,omitempty"`
}

func printDecision(s *streams, format string, c *channels.Client, chk *channels.Checked, explain bool) error {
	d := chk.Decision
	if format == "json" {
		data, _ := json.MarshalIndent(decisionJSON{d, c.Sub.Channel, chk.Head.Seq, chk.State.Installed}, "", "  ")
		fmt.Fprintf(s.out, "%s\n", data)
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
	return nil
}

func newStatusCmd(s *streams) *cobra.Command {
	var o opOpts
	var phased bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "What this install runs, what happened last, and what upgrade would do and why",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(cmd, s)
			if err != nil {
				return err
			}
			st, err := c.Installer.LoadState()
			if err != nil {
				return err
			}
			cur, _ := c.Installer.Current()
			chk, cerr := c.Check(cmd.Context(), channels.DecideOptions{Phased: phased}, false)
			if o.format == "json" {
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
				}{Installed: st.Installed, Current: cur, Previous: st.Previous, LastCheck: st.LastCheck, LastSuccess: st.LastSuccess, Bad: st.Bad}
				if n := len(st.Outcomes); n > 0 {
					v.Last = &st.Outcomes[n-1]
				}
				if cerr != nil {
					v.Error = cerr.Error()
				} else {
					v.Decision = chk.Decision
				}
				data, _ := json.MarshalIndent(v, "", "  ")
				fmt.Fprintf(s.out, "%s\n", data)
				return cerr
			}
			fmt.Fprintf(s.out, "installed  %s (current → %s)\n", orNothing(st.Installed), orNothing(cur))
			if st.Previous != "" {
				fmt.Fprintf(s.out, "previous   %s\n", st.Previous)
			}
			if n := len(st.Outcomes); n > 0 {
				l := st.Outcomes[n-1]
				fmt.Fprintf(s.out, "last       %s %s → %s: %s at %s\n", l.Action, orNothing(l.From), l.To, describeResult(l), l.Time.Format(time.RFC3339))
			}
			if cerr != nil {
				return cerr
			}
			return printDecision(s, "text", c, chk, true)
		},
	}
	o.flags(cmd)
	cmd.Flags().BoolVar(&phased, "phased", false, "decide as 'upgrade --phased' would")
	return cmd
}

func newRollbackCmd(s *streams) *cobra.Command {
	var o opOpts
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Switch back to the previous version (hooks and health check as for an upgrade)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(cmd, s)
			if err != nil {
				return err
			}
			return locked(cmd.Context(), s, c, func(st *channels.LocalState) error {
				out, err := c.Installer.Rollback(cmd.Context(), st)
				if err != nil {
					return err
				}
				fmt.Fprintf(s.out, "rolled back: %s → %s\n", out.From, out.To)
				return nil
			})
		},
	}
	o.flags(cmd)
	return cmd
}

func newRecoverCmd(s *streams) *cobra.Command {
	var o opOpts
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Finish or undo an operation that was interrupted (upgrade does this too)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(cmd, s)
			if err != nil {
				return err
			}
			unlock, err := c.Installer.Lock()
			if err != nil {
				return err
			}
			defer unlock()
			st, err := c.Installer.LoadState()
			if err != nil {
				return err
			}
			out, err := c.Installer.Recover(cmd.Context(), st)
			if err != nil {
				return err
			}
			if out == nil {
				fmt.Fprintln(s.out, "nothing to recover")
				return nil
			}
			fmt.Fprintf(s.out, "recovered %s → %s: %s\n", orNothing(out.From), out.To, describeResult(*out))
			if out.Result == channels.RolledBack {
				return &channels.HopError{Outcome: *out}
			}
			return nil
		},
	}
	o.flags(cmd)
	return cmd
}
