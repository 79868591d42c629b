package channels

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/relcheck/relcheck/telemetry"
)

// Recorder is told what an operator's run did: the telemetry client, in
// relcheck.
type Recorder interface {
	// Outcome is one operation of the run (an install, an upgrade, a
	// rollback, a recovery); running is what the install ran afterwards.
	Outcome(program, channel, running string, o Outcome)
	// Ran is told, once the run is over, what the install runs and which
	// collector the channel announces.
	Ran(ctx context.Context, program, channel, running, collector string)
}

// Run is one operator run of the install: it takes the install's lock,
// recovers from an interrupted operation (told to recovered, if set), runs
// f, then tells rec (if set) the outcomes of this run and what the install
// runs now, and writes the metrics file (Sub.MetricsFile). The CLI's
// upgrade, rollback and recover, and the demo's fleet, all run through it.
func (c *Client) Run(ctx context.Context, rec Recorder, recovered func(Outcome), f func(*LocalState) error) error {
	unlock, err := c.Installer.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	start := c.Installer.now().UTC().Truncate(time.Millisecond)
	st, err := c.Installer.LoadState()
	if err != nil {
		return err
	}
	if out, err := c.Installer.Recover(ctx, st); err != nil {
		return err
	} else if out != nil && recovered != nil {
		recovered(*out)
	}
	err = f(st)
	after, lerr := c.Installer.LoadState()
	if lerr != nil {
		if err == nil {
			err = lerr
		}
		return err
	}
	if rec != nil {
		for _, o := range after.Outcomes {
			if !o.Time.Before(start) {
				rec.Outcome(after.Program, c.Sub.Channel, after.Installed, o)
			}
		}
		if after.Program != "" {
			rec.Ran(ctx, after.Program, c.Sub.Channel, after.Installed, after.Collector)
		}
	}
	if c.Sub.MetricsFile != "" {
		if merr := WriteMetrics(c.Sub.MetricsFile, c.Sub, after); merr != nil && err == nil {
			err = merr
		}
	}
	return err
}

// TelemetryRecorder records an install's runs in its telemetry (nothing in
// mode off) and, in mode on, sends the reports that are due, bounded to a
// few seconds. It never fails the run: problems go to Log.
type TelemetryRecorder struct {
	Telemetry *telemetry.Client
	Log       *slog.Logger
}

func (r TelemetryRecorder) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// Outcome counts one operation's outcome.
func (r TelemetryRecorder) Outcome(program, channel, running string, o Outcome) {
	err := r.Telemetry.Record(telemetry.Event{Program: program, Channel: channel, Running: running, Action: string(o.Action), From: o.From, To: o.To,
		Result: string(o.Result), ReasonClass: o.ReasonClass, Duration: time.Duration(o.DurationMs) * time.Millisecond, Hops: o.Hops, Analyzed: o.Analyzed})
	if err != nil {
		r.log().Warn("telemetry: recording", "error", err)
	}
}

// Ran records the running version and sends past weeks' reports in mode
// on, to the consented collector or else the one the channel announces.
func (r TelemetryRecorder) Ran(ctx context.Context, program, channel, running, collector string) {
	c := r.Telemetry
	if err := c.Running(program, channel, running); err != nil {
		r.log().Warn("telemetry: recording", "error", err)
	}
	if m, _, _ := c.Effective(); m != telemetry.On || !c.Due() {
		return
	}
	url := collector
	if con, err := c.Consent(); err == nil && con.URL != "" {
		url = con.URL
	}
	if url == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c.Retries, c.Backoff, c.HTTP = 2, 500*time.Millisecond, &http.Client{Timeout: 2 * time.Second}
	if n, err := c.Upload(ctx, url, false); err != nil {
		r.log().Warn("telemetry: upload (will try again next time)", "error", err)
	} else if n > 0 {
		r.log().Info("telemetry: sent", "event", "telemetry", "reports", n)
	}
}
