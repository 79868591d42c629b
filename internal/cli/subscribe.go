package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/config"
	"github.com/relcheck/relcheck/report"
)

// subscribeOptions are the inputs of `relcheck subscribe`. The optional
// settings are nil when their flag was not given: subscribing again keeps
// what the file has.
type subscribeOptions struct {
	*streams
	Repo string
	// Channel is the channel to follow; nil keeps the subscription's (or
	// stable for a new one).
	Channel *string
	// Project is the project whose heads the install accepts; "": the
	// one the channel's signed head names now.
	Project    string
	Key        string
	InstallDir string
	// Config is the subscription file ("": the default place).
	Config                           string
	Pre, Post, Health, Rollback, Pin *string
	MetricsFile, Cohort              *string
	MinAge                           *config.Duration
	Keep                             *int
	Insecure                         *bool
}

func newSubscribeCmd(s *streams, runF func(context.Context, *subscribeOptions) error) *cobra.Command {
	o := &subscribeOptions{streams: s}
	var v struct {
		channel, pre, post, health, rollback, pin, minAge, metrics, cohort string
		insecure                                                           bool
		keep                                                               int
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
  require: {installs: 50, rollbackRate: "<2%"}   # wait for the shared telemetry
  cohort: canary                 # canary | early | default | late: place in a rollout
  network: {connectTimeout: 10s, responseTimeout: 30s, stallTimeout: 30s}
                                 # bounds on every registry operation (a transfer
                                 # moving less than 1 KiB per stallTimeout is abandoned)`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.InstallDir == "" {
				return usagef(cmd, "give --install-dir: where versions are installed")
			}
			fl := cmd.Flags()
			str := func(flag string, val string) *string {
				if fl.Changed(flag) {
					return &val
				}
				return nil
			}
			o.Channel = str("channel", v.channel)
			o.Pre, o.Post, o.Health, o.Rollback = str("pre-cmd", v.pre), str("post-cmd", v.post), str("health-cmd", v.health), str("rollback-cmd", v.rollback)
			o.Pin, o.MetricsFile, o.Cohort = str("pin", v.pin), str("metrics-file", v.metrics), str("cohort", v.cohort)
			if fl.Changed("min-age") {
				d, err := config.ParseDuration(v.minAge)
				if err != nil {
					return usagef(cmd, "--min-age: %v", err)
				}
				o.MinAge = (*config.Duration)(&d)
			}
			if fl.Changed("keep") {
				o.Keep = &v.keep
			}
			if fl.Changed("insecure") {
				o.Insecure = &v.insecure
			}
			o.Repo = args[0]
			return run(cmd, runF, runSubscribe, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&v.channel, "channel", "stable", "channel: edge, beta or stable")
	f.StringVar(&o.Key, "key", channels.PublicKeyFile, "the maintainers' public key")
	f.StringVar(&o.Project, "project", "", "the project whose releases to accept (default: the one the channel's signed head names)")
	f.StringVar(&o.InstallDir, "install-dir", "", "where versions are installed (DIR/current links to the running one)")
	f.StringVar(&o.Config, "config", "", "subscription file")
	f.StringVar(&v.pre, "pre-cmd", "", "shell command before switching (e.g. a backup)")
	f.StringVar(&v.post, "post-cmd", "", "shell command after switching (e.g. migrate)")
	f.StringVar(&v.health, "health-cmd", "", "shell command that exits 0 when the new version is healthy")
	f.StringVar(&v.rollback, "rollback-cmd", "", "shell command after switching back from a failed version")
	f.StringVar(&v.pin, "pin", "", "stay on a major (1) or minor (1.4) line")
	f.StringVar(&v.minAge, "min-age", "", "a release must have been on the channel this long (e.g. 3d)")
	f.StringVar(&v.metrics, "metrics-file", "", "keep a Prometheus textfile-collector file here")
	f.StringVar(&v.cohort, "cohort", "", "this install's place in a rollout: canary (from the first percent), early (by 25%), default or late (from 90%)")
	f.IntVar(&v.keep, "keep", 0, "versions kept on disk (default 3)")
	f.BoolVar(&v.insecure, "insecure", false, "allow a plain-HTTP registry")
	return cmd
}

func runSubscribe(ctx context.Context, o *subscribeOptions) error {
	path := subscriptionPath(o.streams, o.Config)
	sub := &channels.Subscription{}
	if old, err := channels.LoadSubscription(path); err == nil {
		sub = old
	} else if _, statErr := os.Stat(path); statErr == nil {
		return err
	}
	key, err := filepath.Abs(o.Key)
	if err != nil {
		return err
	}
	if _, err := channels.LoadVerifier(key); err != nil {
		return err
	}
	dir, err := filepath.Abs(o.InstallDir)
	if err != nil {
		return err
	}
	sub.Repo, sub.Key, sub.InstallDir = o.Repo, key, dir
	// Subscribing again keeps what the flags do not change.
	switch {
	case o.Channel != nil:
		sub.Channel = *o.Channel
	case sub.Channel == "":
		sub.Channel = "stable"
	}
	if o.Insecure != nil {
		sub.Insecure = *o.Insecure
	}
	if sub.InstallID == "" {
		sub.InstallID = channels.NewInstallID()
	}
	for _, set := range []struct {
		dst *string
		v   *string
	}{{&sub.PreCmd, o.Pre}, {&sub.PostCmd, o.Post}, {&sub.HealthCmd, o.Health}, {&sub.RollbackCmd, o.Rollback}, {&sub.Pin, o.Pin}, {&sub.MetricsFile, o.MetricsFile}, {&sub.Cohort, o.Cohort}} {
		if set.v != nil {
			*set.dst = *set.v
		}
	}
	if o.MinAge != nil {
		sub.MinAge = *o.MinAge
	}
	if o.Keep != nil {
		sub.Keep = *o.Keep
	}
	if err := sub.Validate(); err != nil {
		return err
	}
	bound, err := bindProject(ctx, o, sub)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(sub.InstallDir, 0o755); err != nil {
		return err
	}
	if err := sub.Save(path); err != nil {
		return err
	}
	fmt.Fprintf(o.out, "subscribed to %s of %s\n  project       %s\n  subscription  %s\n  install dir   %s\n  install id    %s\n", sub.Channel, sub.Repo, bound, path, sub.InstallDir, sub.InstallID)
	return nil
}

// bindProject sets the project the subscription accepts heads of: --project,
// else what it already says, else the project the channel's signed head
// names now (shown, and asked about on a terminal). It says how it was
// bound.
func bindProject(ctx context.Context, o *subscribeOptions, sub *channels.Subscription) (string, error) {
	if o.Project != "" {
		sub.Project = o.Project
		return sub.Project, nil
	}
	if sub.Project != "" {
		return sub.Project, nil
	}
	st, err := channels.Open(sub.Repo, sub.Insecure)
	if err != nil {
		return "", err
	}
	v, err := channels.LoadVerifier(sub.Key)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	project, err := channels.HeadProject(ctx, st, sub.Channel, v, time.Now())
	var ve *channels.VerifyError
	switch {
	case errors.As(err, &ve):
		return "", err
	case err != nil:
		fmt.Fprintf(o.err, "relcheck: warning: the %s head cannot be read now (%v): the first head an upgrade verifies decides the project; pass --project to state it\n", sub.Channel, err)
		return "(not known yet)", nil
	}
	if in, ok := o.in.(*os.File); ok && isTerminal(in) && isTerminal(o.err) {
		if yes, err := confirm(o.streams, fmt.Sprintf("The signed %s head is of project %q. Accept only its releases?", sub.Channel, project)); err != nil || !yes {
			return "", report.Inputf("not subscribed: pass --project NAME with the project you expect")
		}
	}
	sub.Project = project
	return project + " (from the signed " + sub.Channel + " head; --project states it)", nil
}
