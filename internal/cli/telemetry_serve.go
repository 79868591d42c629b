package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/report"
	"github.com/relcheck/relcheck/telemetry"
)

// telemetryServeOptions are the inputs of `relcheck telemetry serve`.
type telemetryServeOptions struct {
	*streams
	Listen string
	// DB is a SQLite file or a postgres:// URL.
	DB string
	telemetry.ServerOptions
}

func newTelemetryServeCmd(s *streams, runF func(context.Context, *telemetryServeOptions) error) *cobra.Command {
	o := &telemetryServeOptions{streams: s}
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
addresses are only used for the rate limit and the per-network daily quota,
in memory (keyed by a salt drawn each day), and never stored.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.DB == "" {
				return usagef(cmd, "give --db FILE or --db postgres://…")
			}
			if o.MinInstalls < 1 {
				return usagef(cmd, "--min-installs must be at least 1")
			}
			if o.MaxBatch < 1 || o.BatchWait < 0 || o.RateLimit < 0 {
				return usagef(cmd, "--max-batch must be at least 1, --batch-wait and --rate-limit not negative")
			}
			return run(cmd, runF, runTelemetryServe, o)
		},
	}
	cmd.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().StringVar(&o.DB, "db", "", "SQLite file, or a postgres:// URL")
	cmd.Flags().IntVar(&o.MinInstalls, "min-installs", 10, "withhold summary cells with fewer reports (k)")
	cmd.Flags().IntVar(&o.RateLimit, "rate-limit", 60, "reports per minute from one client address (0: no limit)")
	cmd.Flags().Float64Var(&o.Epsilon, "epsilon", telemetry.DefaultEpsilon, "differential privacy of each published figure (ε; -1: exact figures, for a private collector)")
	cmd.Flags().IntVar(&o.PerNetworkDay, "per-network-day", telemetry.DefaultPerNetworkDay, "reports one source network (IPv4 /24, IPv6 /48) may have counted per day (-1: no limit)")
	cmd.Flags().IntVar(&o.MaxBatch, "max-batch", 256, "reports written in one transaction at most")
	cmd.Flags().DurationVar(&o.BatchWait, "batch-wait", 200*time.Microsecond, "how long the writer waits for more reports after taking the queued ones")
	return cmd
}

func runTelemetryServe(ctx context.Context, o *telemetryServeOptions) error {
	store, err := telemetry.OpenStore(ctx, o.DB)
	if err != nil {
		return err
	}
	defer store.Close()
	opts := o.ServerOptions
	opts.Log = slog.New(slog.NewTextHandler(o.err, nil))
	srv := telemetry.NewServer(store, opts)
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		srv.Close()
		return report.Inputf("--listen %s: %v", o.Listen, err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
	fmt.Fprintf(o.err, "relcheck: collector on http://%s (store: %s, %s)\n", ln.Addr(), store.Dialect(), dbName(o.DB))
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
	fmt.Fprintln(o.err, "relcheck: collector stopped")
	return err
}

// dbName is the store for people: a URL without its password, or the
// file's absolute path.
func dbName(dsn string) string {
	if strings.Contains(dsn, "://") {
		return telemetry.Redact(dsn)
	}
	if abs, err := filepath.Abs(dsn); err == nil {
		return abs
	}
	return dsn
}
