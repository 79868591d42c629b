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
	"time"

	"github.com/relcheck/relcheck/analysis"
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
// offers. The first install that phasing will take to v0.3.0 is watched
// by the metric analysis, reading metrics, and its service's error ratio
// rises once it runs v0.3.0.
func newDemoFleet(ctx context.Context, root string, st channels.Store, n int, metrics *demoMetrics) (fleet demoFleet, err error) {
	failing := -1
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
			// This operator judges upgrades by the service's error ratio
			// in their Prometheus, and v0.3.0 will raise it here.
			failing = i
			metrics.service.current.Store(filepath.Join(sub.InstallDir, "current"))
			a := metrics.analysis
			sub.Analysis = &a
			if c.Installer.Analyzer, err = analysis.New(a); err != nil {
				return nil, err
			}
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
			if he.Outcome.ReasonClass == "analysis" {
				fmt.Fprintf(out, "  %s  %s → %s → %s  rolled back within the bake: %s; %s is marked bad here\n", in.name, d.From, d.Target, d.From, why, d.Target)
				break
			}
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
func (f demoFleet) shareTelemetry(ctx context.Context, out io.Writer, root string, pub *channels.Publisher) error {
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
	return f.advance(ctx, out, pub, hs.URL)
}

// advance runs the maintainers' scheduled rollout job against the shared
// data (a tighter requirement on rollbacks halts the release), then the
// installs' timers once more: the ones on the halted release go back, the
// others never install it.
func (f demoFleet) advance(ctx context.Context, out io.Writer, pub *channels.Publisher, collector string) error {
	const require = "rollback_rate<1%"
	gate, err := telemetry.NewGate(require, collector)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n$ relcheck rollout advance REPO --channel stable --schedule 25%%/6h --require '%s'   # the maintainers' scheduled job\n", require)
	res, err := pub.Advance(ctx, "stable", channels.Schedule{Step: 25, Period: 6 * time.Hour}, sharedJudge(ctx, out, gate))
	var refused *channels.RefusedError
	if err != nil && !errors.As(err, &refused) {
		return err
	}
	switch res.Action {
	case "halted":
		fmt.Fprintf(out, "halted %s on stable at %v%%%s: it stops spreading, without a person.\n", res.Version, res.From, orRollbackTo(res.RollbackTo))
	default:
		fmt.Fprintf(out, "%s %s: %s\n", res.Action, res.Version, res.Why)
	}
	fmt.Fprintf(out, "\n$ relcheck upgrade --phased --yes        # the timers' next run\n")
	back, never := 0, 0
	for _, in := range f {
		err := in.client.Run(ctx, channels.TelemetryRecorder{Telemetry: in.telemetry}, nil, func(*channels.LocalState) error {
			chk, err := in.client.Check(ctx, channels.DecideOptions{Phased: true}, true)
			if err != nil {
				return err
			}
			switch chk.Decision.Action {
			case channels.ActionRollback:
				if _, err := in.client.Installer.Apply(ctx, chk.State, chk.Decision, chk.HeadDigest); err != nil {
					return err
				}
				back++
				fmt.Fprintf(out, "  %s  %s → %s  went back: %s is halted\n", in.name, chk.Decision.From, chk.Decision.Target, res.Version)
			default:
				if chk.State.Installed != res.Version {
					never++
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "%d installs went back to %s; %d never installed %s.\n", back, res.RollbackTo, never, res.Version)
	return nil
}
