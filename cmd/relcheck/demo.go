package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck"
	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/check"
	"github.com/relcheck/relcheck/internal/demo"
	"github.com/relcheck/relcheck/report"
	"github.com/relcheck/relcheck/telemetry"
)

func newDemoCmd(s *streams) *cobra.Command {
	var dir, format string
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the gates on a bundled sample project (no setup, no network)",
		Long: `Materialise a small sample Go library — three releases as git tags and a
pending, uncommitted change — into a temporary directory, and run
relcheck check on it (the report ends with the next version), showing what
a maintainer would see in CI. The pending change breaks the deprecation policy on
purpose; the demo itself exits 0 when it ran.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := report.ParseFormat(format)
			if err != nil {
				return usagef(cmd, "--format: %v", err)
			}
			ctx := cmd.Context()
			stages, err := demo.Stages(relcheck.Demo, "testdata/demo")
			if err != nil {
				return err
			}
			target := dir
			if target == "" {
				tmp, err := os.MkdirTemp("", "relcheck-demo-")
				if err != nil {
					return err
				}
				target = filepath.Join(tmp, "textkit")
				if !keep {
					defer os.RemoveAll(tmp)
				}
			}
			if err := demo.Materialize(ctx, target, stages); err != nil {
				return err
			}
			info := s.err
			if f != report.FormatText {
				info = nil
			}
			say := func(format string, args ...any) {
				if info != nil {
					fmt.Fprintf(info, format, args...)
				}
			}
			say("relcheck demo: sample project example.com/textkit in %s\n", target)
			for _, st := range stages {
				if st.Tag != "" {
					say("  %s  %s\n", st.Tag, st.Message)
				} else {
					say("  (working tree)  %s\n", st.Message)
				}
			}
			say("\n$ relcheck check\n")
			env, err := check.Resolve(ctx, check.Options{Dir: target})
			if err != nil {
				return err
			}
			env.Display = "textkit"
			rep, err := check.Run(ctx, env, nil, nil)
			if err != nil {
				return err
			}
			if err := writeReport(s, rep, f, ""); err != nil {
				return err
			}
			if f == report.FormatText {
				outcome := rep.Outcome()
				fmt.Fprintf(s.out, "\nrelcheck check would exit %d here", exitCode(outcome))
				if outcome != nil {
					fmt.Fprint(s.out, ": the pending change is not releasable until the errors above are fixed")
				}
				fmt.Fprintln(s.out, ".")
				if keep || dir != "" {
					fmt.Fprintf(s.out, "The sample project stays in %s; try: relcheck check --repo %s\n", target, target)
				}
				if err := demoChannels(ctx, s, env, keep || dir != ""); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "materialise the sample project here (must be empty) and keep it")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary sample project and print its path")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json, github, markdown or sarif")
	return cmd
}

// demoChannels publishes the sample's last release to edge in a local OCI
// layout, promotes it to beta and to stable at 25%, and shows the
// verified channels.
func demoChannels(ctx context.Context, s *streams, env *check.Env, keep bool) error {
	root, err := os.MkdirTemp("", "relcheck-demo-releases-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(root)
	}
	out := s.out
	fmt.Fprintf(out, "\nThe last release, v0.3.0, passed these gates when it was made. Release it:\n")
	fmt.Fprintf(out, "\n$ relcheck keys generate\n")
	if _, _, err := channels.GenerateKeys(root, []byte("demo")); err != nil {
		return err
	}
	signer, err := channels.LoadSigner(filepath.Join(root, channels.PrivateKeyFile), []byte("demo"))
	if err != nil {
		return err
	}
	src := filepath.Join(root, "src")
	if err := env.Repo.Archive(ctx, "v0.3.0", src); err != nil {
		return err
	}
	bin := filepath.Join(root, "textkitd")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/textkitd")
	build.Dir = src
	if msg, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the sample's textkitd: %v\n%s", err, msg)
	}
	version, err := check.EdgeVersion(ctx, env, "v0.3.0", "v0.3.0")
	if err != nil {
		return err
	}
	st, err := channels.Open("oci:"+filepath.Join(root, "releases"), false)
	if err != nil {
		return err
	}
	pub := &channels.Publisher{Store: st, Signer: signer, Project: "textkit"}

	// The fleet runs the release before: a stand-in for v0.2.0's build.
	old := filepath.Join(root, "v0.2.0", "textkitd")
	os.MkdirAll(filepath.Dir(old), 0o755)
	if err := os.WriteFile(old, []byte("#!/bin/sh\necho textkitd v0.2.0\n"), 0o755); err != nil {
		return err
	}
	oldImg, err := channels.NewRelease(channels.Metadata{Project: "textkit", Version: "v0.2.0", Created: time.Now().UTC()}, []string{old}, nil)
	if err != nil {
		return err
	}
	if _, _, err := pub.Publish(ctx, oldImg, channels.PublishOptions{Version: "v0.2.0", Channel: "stable", Rollout: 100}); err != nil {
		return err
	}
	fleet, err := newDemoFleet(ctx, root, st, 20)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "(A fleet of %d installs follows stable and runs v0.2.0, released earlier.)\n", len(fleet))

	fmt.Fprintf(out, "\n$ relcheck publish %s textkitd --channel edge\n", st)
	img, err := channels.NewRelease(channels.Metadata{Project: "textkit", Version: version, Created: time.Now().UTC(), APIBump: "minor"}, []string{bin}, nil)
	if err != nil {
		return err
	}
	d, h, err := pub.Publish(ctx, img, channels.PublishOptions{Version: version, Channel: "edge", Rollout: 100})
	if err != nil {
		return err
	}
	printHeadChange(s, "text", st, h, version, d, fmt.Sprintf("published %s to edge", version))
	fmt.Fprintf(out, "\n$ relcheck promote %s %s --to beta\n", st, version)
	beta, h, err := pub.Promote(ctx, version, channels.PromoteOptions{To: "beta", Rollout: 100})
	if err != nil {
		return err
	}
	printHeadChange(s, "text", st, h, beta, d, fmt.Sprintf("promoted %s to beta as %s, rollout 100%%", version, beta))
	fmt.Fprintf(out, "\n$ relcheck promote %s %s --to stable --rollout 25\n", st, beta)
	stable, h, err := pub.Promote(ctx, beta, channels.PromoteOptions{To: "stable", Rollout: 25})
	if err != nil {
		return err
	}
	printHeadChange(s, "text", st, h, stable, d, fmt.Sprintf("promoted %s to stable as %s, rollout 25%%", beta, stable))
	fmt.Fprintf(out, "\n$ relcheck channel show %s\n", st)
	demoStreams := *s
	demoStreams.getenv = func(k string) string {
		if k == "XDG_STATE_HOME" {
			return filepath.Join(root, "state")
		}
		return s.getenv(k)
	}
	heads, err := verifiedHeads(ctx, &demoStreams, st, "", filepath.Join(root, channels.PublicKeyFile))
	if err != nil {
		return err
	}
	for i, h := range heads {
		if i > 0 {
			fmt.Fprintln(out)
		}
		printHead(out, st, h)
	}
	fmt.Fprintf(out, "\nOne digest on three channels, signed with cosign; operators on stable get it in phases (25%% first).\n")
	fmt.Fprintf(out, "\n$ relcheck upgrade --phased --yes        # on each of the %d installs, from its timer\n", len(fleet))
	if err := fleet.upgrade(ctx, out); err != nil {
		return err
	}
	if err := fleet.shareTelemetry(ctx, out, root); err != nil {
		return err
	}
	if keep {
		fmt.Fprintf(out, "The releases stay in oci:%s (key password: demo)\n", filepath.Join(root, "releases"))
	}
	return nil
}

// demoInstall is one simulated install of the demo's fleet.
type demoInstall struct {
	name      string
	client    *channels.Client
	telemetry *telemetry.Client
	mode      telemetry.Mode
}

type demoFleet []demoInstall

// newDemoFleet subscribes n installs (fixed install ids, so the demo
// shows the same phasing every time) to stable and installs what it
// offers. The first install that phasing will take to v0.3.0 gets a
// failing health check.
func newDemoFleet(ctx context.Context, root string, st channels.Store, n int) (demoFleet, error) {
	failing := -1
	var fleet demoFleet
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("%032x", sha256.Sum256([]byte(fmt.Sprintf("relcheck demo install %d", i))))[:32]
		sub := &channels.Subscription{Repo: st.String(), Channel: "stable", Key: filepath.Join(root, channels.PublicKeyFile),
			InstallDir: filepath.Join(root, "fleet", fmt.Sprintf("host%02d", i)), InstallID: id,
			HealthCmd: "test -x current/textkitd", HealthRetries: 1}
		c, err := channels.NewClient(sub, nil)
		if err != nil {
			return nil, err
		}
		if err := c.Run(ctx, nil, nil, func(*channels.LocalState) error {
			chk, err := c.Check(ctx, channels.DecideOptions{Phased: true}, true)
			if err != nil {
				return err
			}
			_, err = c.Installer.Apply(ctx, chk.State, chk.Decision, chk.HeadDigest)
			return err
		}); err != nil {
			return nil, err
		}
		if failing < 0 && channels.Covers(25, channels.Bucket(id, "v0.3.0")) {
			// From now on something else holds this host's port.
			failing = i
			sub.HealthCmd = "echo 'port 8080 is taken' >&2; exit 1"
		}
		// Telemetry is each operator's choice: some off, some local,
		// half of them on.
		tc := &telemetry.Client{ConfigDir: filepath.Join(sub.InstallDir, "config"), StateDir: filepath.Join(sub.InstallDir, "telemetry"),
			Getenv: func(string) string { return "" }}
		mode := []telemetry.Mode{telemetry.Off, telemetry.Local, telemetry.On, telemetry.On}[i%4]
		if _, err := tc.SetMode(mode, ""); err != nil {
			return nil, err
		}
		fleet = append(fleet, demoInstall{name: fmt.Sprintf("host%02d", i), client: c, telemetry: tc, mode: mode})
	}
	return fleet, nil
}

// upgrade runs upgrade --phased on every install, as the operator's timer
// would (channels.Client.Run, telemetry recorded as each operator chose),
// and prints what each did.
func (f demoFleet) upgrade(ctx context.Context, out io.Writer) error {
	upgraded, back, waiting := 0, 0, 0
	for _, in := range f {
		var d *channels.Decision
		var applyErr error
		rec := channels.TelemetryRecorder{Telemetry: in.telemetry}
		err := in.client.Run(ctx, rec, nil, func(*channels.LocalState) error {
			chk, err := in.client.Check(ctx, channels.DecideOptions{Phased: true}, true)
			if err != nil {
				return err
			}
			if d = chk.Decision; d.Action != channels.ActionUpgrade {
				return nil
			}
			_, applyErr = in.client.Installer.Apply(ctx, chk.State, d, chk.HeadDigest)
			return nil
		})
		if err != nil {
			return err
		}
		var he *channels.HopError
		switch {
		case d.Action != channels.ActionUpgrade:
			waiting++
			fmt.Fprintf(out, "  %s  %s  waits: %s\n", in.name, d.From, strings.Join(d.Reasons, "; "))
		case errors.As(applyErr, &he):
			back++
			why := he.Outcome.Reason
			if i := strings.LastIndex(why, ": "); i >= 0 {
				why = why[i+2:]
			}
			fmt.Fprintf(out, "  %s  %s → %s → %s  rolled back: %s check failed (%s); %s is marked bad here\n", in.name, d.From, d.Target, d.From, he.Outcome.ReasonClass, why, d.Target)
		case applyErr != nil:
			return applyErr
		default:
			upgraded++
			fmt.Fprintf(out, "  %s  %s → %s  upgraded\n", in.name, d.From, d.Target)
		}
	}
	fmt.Fprintf(out, "%d of %d installs upgraded, %d rolled back, %d wait for the rollout to widen.\n", upgraded, len(f), back, waiting)
	return nil
}

// shareTelemetry has the installs in mode on send their week's report to
// an in-process collector, and asks it whether the rollout may widen.
func (f demoFleet) shareTelemetry(ctx context.Context, out io.Writer, root string) error {
	store, err := telemetry.OpenStore(ctx, filepath.Join(root, "collector.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	// k is 3 here, for a fleet of 20; a real collector keeps the default 10.
	srv := telemetry.NewServer(store, telemetry.ServerOptions{MinInstalls: 3})
	hs := httptest.NewServer(srv.Handler())
	defer func() { hs.Close(); srv.Close() }()
	modes := map[telemetry.Mode]int{}
	sent := 0
	for _, in := range f {
		modes[in.mode]++
		if in.mode != telemetry.On {
			continue
		}
		n, err := in.telemetry.Upload(ctx, hs.URL, true)
		if err != nil {
			return err
		}
		sent += n
	}
	fmt.Fprintf(out, "\nTelemetry is each operator's choice: %d installs off, %d local (kept on the host), %d on.\n", modes[telemetry.Off], modes[telemetry.Local], modes[telemetry.On])
	fmt.Fprintf(out, "$ relcheck telemetry upload               # on the %d installs in mode on: %d report(s) to the collector\n", modes[telemetry.On], sent)
	gate, err := telemetry.NewGate("installs>=3,rollback_rate<10%", hs.URL)
	if err != nil {
		return err
	}
	v, err := gate.Judge(ctx, "textkit", "v0.3.0", 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n$ relcheck rollout REPO v0.3.0 --channel stable --percent 100 --require 'installs>=3,rollback_rate<10%%'\n")
	for _, l := range v.Lines {
		fmt.Fprintf(out, "  %s\n", l)
	}
	switch v.Result {
	case telemetry.Pass:
		fmt.Fprintln(out, "the shared data allows widening the rollout.")
	case telemetry.Inconclusive:
		fmt.Fprintln(out, "inconclusive — hold: the rollout stays at 25% until more installs report.")
	default:
		fmt.Fprintln(out, "refused: the rollout stays at 25%.")
	}
	return nil
}
