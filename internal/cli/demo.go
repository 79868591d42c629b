package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck"
	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/check"
	"github.com/relcheck/relcheck/internal/demo"
	"github.com/relcheck/relcheck/internal/gitx"
	"github.com/relcheck/relcheck/report"
)

// demoOptions are the inputs of `relcheck demo`.
type demoOptions struct {
	*streams
	// Dir is where the sample project goes ("": a temporary directory).
	Dir    string
	Keep   bool
	Format report.Format
}

func newDemoCmd(s *streams, runF func(context.Context, *demoOptions) error) *cobra.Command {
	o := &demoOptions{streams: s}
	var format string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "The whole release loop on a bundled sample project (no server, no account)",
		Long: `Run relcheck's release loop on a bundled sample project, in a temporary
directory, with no server, no account and no network:

 1. The maintainer's CI: a small Go library (textkit) with three releases as
    git tags and a pending, uncommitted change, checked by every gate
    (relcheck check): the api gate finds an identifier removed without a
    deprecation, the migrations gate replays the new migration and finds a
    rename that breaks the release before, the perf gate a slower
    benchmark; the report ends with the next version. The pending change
    fails on purpose.
 2. Releasing: the last release, v0.3.0, signed with a fresh cosign key and
    published to edge in a local OCI image layout, promoted to beta and to
    stable at 25%, then 'relcheck channel show'.
 3. Operators: a fleet of installs following stable upgrades with
    'relcheck upgrade --phased': a quarter of them take v0.3.0 first. On
    one, the metric analysis sees the service's error ratio rise during the
    bake (in a real Prometheus when the machine has one) and rolls it back. The installs that opted in share telemetry;
    the maintainers' scheduled 'relcheck rollout advance' halts v0.3.0 on
    it, and at the timers' next run the installs on it go back while the
    others never take it.

The demo exits 0 when it ran (the failing check is part of the show).
--dir keeps the sample project (try 'relcheck check --repo DIR' there);
--format json prints the check's JSON report.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := report.ParseFormat(format)
			if err != nil {
				return usagef(cmd, "--format: %v", err)
			}
			o.Format = f
			return run(cmd, runF, runDemo, o)
		},
	}
	cmd.Flags().StringVar(&o.Dir, "dir", "", "materialise the sample project here (must be empty) and keep it")
	cmd.Flags().BoolVar(&o.Keep, "keep", false, "keep the temporary sample project and print its path")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json, github, markdown or sarif")
	return cmd
}

func runDemo(ctx context.Context, o *demoOptions) error {
	s, f, dir, keep := o.streams, o.Format, o.Dir, o.Keep
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
	if err := (&gitx.Repo{Root: env.Root}).Archive(ctx, "v0.3.0", src); err != nil {
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
	metrics, err := newDemoMetrics(ctx, root)
	if err != nil {
		return err
	}
	defer metrics.Close()
	fleet, err := newDemoFleet(ctx, root, st, 20, metrics)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "(A fleet of %d installs follows stable and runs v0.2.0, released earlier; one operator's metric analysis reads its service's error ratio from %s.)\n", len(fleet), metrics.About)

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
	if err := fleet.shareTelemetry(ctx, out, root, pub); err != nil {
		return err
	}
	if keep {
		fmt.Fprintf(out, "The releases stay in oci:%s (key password: demo)\n", filepath.Join(root, "releases"))
	}
	return nil
}
