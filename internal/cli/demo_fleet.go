package cli

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/telemetry"
)

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
	// The fleet reports from this one machine (no per-network quota), and
	// twenty installs are too few for privacy noise to leave anything to
	// show: the demo's collector publishes exact figures.
	srv := telemetry.NewServer(store, telemetry.ServerOptions{MinInstalls: 3, PerNetworkDay: -1, Epsilon: -1})
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
