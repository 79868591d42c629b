package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/telemetry"
)

// telemetryClient is the operator's telemetry: consent next to the
// subscription, records in the state directory.
func telemetryClient(s *streams) *telemetry.Client {
	return &telemetry.Client{
		ConfigDir: filepath.Dir(subscriptionPath(s, "")),
		StateDir:  filepath.Join(stateDir(s), "telemetry"),
		Getenv:    s.getenv,
	}
}

func newTelemetryCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "telemetry on|off|local|status|view|upload|serve",
		Short: "Opt-in shared telemetry: your choice, what it says, and the collector",
		Long: `Telemetry is off unless you turn it on. In mode local relcheck counts what
its upgrades did in weekly files on this machine only; in mode on it also
sends each week's report to the collector (the one given with --url, or the
one the maintainers announce in the channel head). DO_NOT_TRACK=1 forces off.
'relcheck telemetry view' prints exactly the next report. A report carries
only these counters, each about a version, plus the program, channel, week,
OS and architecture and the version running — no address, host name or id
that outlives the report:

` + counterList() + `
A new report format asks again: until you run 'relcheck telemetry on' for
it, relcheck stays local.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef(cmd, "missing subcommand: try 'relcheck telemetry status'")
		},
	}
	for _, m := range []telemetry.Mode{telemetry.On, telemetry.Off, telemetry.Local} {
		var url string
		sub := &cobra.Command{
			Use:   string(m),
			Short: map[telemetry.Mode]string{telemetry.On: "Record and send weekly reports", telemetry.Off: "Record and send nothing (the default)", telemetry.Local: "Record on this machine only"}[m],
			Args:  noArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				con, err := telemetryClient(s).SetMode(m, url)
				if err != nil {
					return err
				}
				fmt.Fprintf(s.out, "telemetry %s (report format %d, %s)\n", con.Mode, con.Format, con.Date.Format(time.DateOnly))
				if m == telemetry.On {
					fmt.Fprintln(s.out, "'relcheck telemetry view' shows what will be sent.")
				}
				return nil
			},
		}
		sub.Flags().StringVar(&url, "url", "", "the collector to send to (default: the one the channel head announces)")
		cmd.AddCommand(sub)
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "The mode in force and why",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := telemetryClient(s)
			con, err := c.Consent()
			if err != nil {
				return err
			}
			m, why, err := c.Effective()
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out, "mode      %s\n", m)
			if why != "" {
				fmt.Fprintf(s.out, "          (chosen: %s; %s)\n", con.Mode, why)
			}
			if !con.Date.IsZero() {
				fmt.Fprintf(s.out, "chosen    %s, for report format %d (this relcheck writes format %d)\n", con.Date.Format(time.DateOnly), con.Format, telemetry.Format)
			}
			if con.URL != "" {
				fmt.Fprintf(s.out, "collector %s\n", con.URL)
			}
			pending, _, _ := c.Pending()
			sent, _, _ := c.Sent()
			fmt.Fprintf(s.out, "records   %s (%d pending, %d sent)\n", c.StateDir, len(pending), len(sent))
			return nil
		},
	}
	view := &cobra.Command{
		Use:   "view",
		Short: "Print exactly the next report(s), then the history of sent ones",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := telemetryClient(s)
			pending, _, err := c.Pending()
			if err != nil {
				return err
			}
			sent, _, err := c.Sent()
			if err != nil {
				return err
			}
			if pending == nil {
				pending = []telemetry.Report{}
			}
			if sent == nil {
				sent = []telemetry.Report{}
			}
			data, _ := json.MarshalIndent(struct {
				Next []telemetry.Report `json:"next"`
				Sent []telemetry.Report `json:"sent"`
			}{pending, sent}, "", "  ")
			fmt.Fprintf(s.out, "%s\n", data)
			return nil
		},
	}
	var uploadURL string
	upload := &cobra.Command{
		Use:   "upload",
		Short: "Send the pending reports now, this week's included (mode on only)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := telemetryClient(s)
			// The mode first: in off and local nothing touches the network,
			// not even to find the collector.
			if m, why, err := c.Effective(); err != nil {
				return err
			} else if m != telemetry.On {
				if why == "" {
					why = "mode " + string(m)
				}
				return usagef(cmd, "%v (%s): 'relcheck telemetry on' first", telemetry.ErrNotOn, why)
			}
			url := uploadURL
			if url == "" {
				con, err := c.Consent()
				if err != nil {
					return err
				}
				url = con.URL
			}
			if url == "" {
				url = announcedCollector(s)
			}
			n, err := c.Upload(cmd.Context(), url, true)
			if errors.Is(err, telemetry.ErrNoURL) {
				return usagef(cmd, "%v", err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out, "sent %d report(s) to %s\n", n, url)
			return nil
		},
	}
	upload.Flags().StringVar(&uploadURL, "url", "", "the collector (default: configured, or announced by the channel head)")
	cmd.AddCommand(status, view, upload, newServeCmd(s))
	return cmd
}

func counterList() string {
	var b strings.Builder
	for _, n := range telemetry.CounterNames() {
		fmt.Fprintf(&b, "  %-33s %s\n", n, telemetry.Counters[n])
	}
	return b.String()
}

// announcedCollector is the collector the subscribed channel's head named
// when upgrade last checked it (no network), or "".
func announcedCollector(s *streams) string {
	sub, err := channels.LoadSubscription(subscriptionPath(s, ""))
	if err != nil {
		return ""
	}
	st, err := (&channels.Installer{Sub: sub}).LoadState()
	if err != nil {
		return ""
	}
	return st.Collector
}

func newServeCmd(s *streams) *cobra.Command {
	var listen, db string
	var minInstalls, rateLimit, maxBatch int
	var batchWait time.Duration
	cmd := &cobra.Command{
		Use:   "serve --listen ADDR --db FILE|postgres://…",
		Short: "Run the collector: reports in, aggregates, dashboard and metrics out",
		Long: `Run the telemetry collector. POST /v1/reports takes one report (validated
strictly; duplicates, unknown counters, oversized and future reports refused
with a 4xx); GET /v1/summary aggregates per program, channel, version and
week, withholding every cell with fewer than --min-installs reports; GET /
is a dashboard; GET /metrics the collector's own Prometheus metrics.

Reports are stored in SQLite (a file, the default) or PostgreSQL (a
postgres:// URL), in batches; a report is answered 202 only once it is
stored. SIGINT/SIGTERM stop it gracefully, losing no accepted report. Client
addresses are only used for the rate limit, in memory, and never stored.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if db == "" {
				return usagef(cmd, "give --db FILE or --db postgres://…")
			}
			if minInstalls < 1 {
				return usagef(cmd, "--min-installs must be at least 1")
			}
			if maxBatch < 1 || batchWait < 0 || rateLimit < 0 {
				return usagef(cmd, "--max-batch must be at least 1, --batch-wait and --rate-limit not negative")
			}
			ctx := cmd.Context()
			store, err := telemetry.OpenStore(ctx, db)
			if err != nil {
				return err
			}
			defer store.Close()
			log := slog.New(slog.NewTextHandler(s.err, nil))
			srv := telemetry.NewServer(store, telemetry.ServerOptions{MinInstalls: minInstalls, RateLimit: rateLimit, Log: log, MaxBatch: maxBatch, BatchWait: batchWait})
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				srv.Close()
				return &usageError{msg: fmt.Sprintf("--listen %s: %v", listen, err)}
			}
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
			fmt.Fprintf(s.err, "relcheck: collector on http://%s (store: %s, %s)\n", ln.Addr(), store.Dialect(), dbName(db))
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			select {
			case err := <-errc:
				srv.Close()
				return err
			case <-ctx.Done():
			}
			shut, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = hs.Shutdown(shut) // waits for every request, each for its batch
			srv.Close()
			fmt.Fprintln(s.err, "relcheck: collector stopped")
			return err
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().StringVar(&db, "db", "", "SQLite file, or a postgres:// URL")
	cmd.Flags().IntVar(&minInstalls, "min-installs", 10, "withhold summary cells with fewer reports (k)")
	cmd.Flags().IntVar(&rateLimit, "rate-limit", 60, "reports per minute from one client address (0: no limit)")
	cmd.Flags().IntVar(&maxBatch, "max-batch", 256, "reports written in one transaction at most")
	cmd.Flags().DurationVar(&batchWait, "batch-wait", 200*time.Microsecond, "how long the writer waits for more reports after taking the queued ones")
	return cmd
}

func dbName(dsn string) string {
	if strings.Contains(dsn, "://") {
		return telemetry.Redact(dsn)
	}
	if abs, err := filepath.Abs(dsn); err == nil {
		return abs
	}
	return dsn
}
