package clitest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/relcheck/relcheck/analysis"
)

// metricsapp VAR MODEFILE: serve /metrics of a service (built with
// prometheus/client_golang) whose traffic the test steers through
// MODEFILE: "good" (every request 200, 10 ms), "errors" (30% answer 500),
// "slight" (5% answer 500) or "slow" (every request 800 ms). Synthetic traffic at 50 requests/s
// is recorded in the metrics, bounded by the script's life. VAR gets the
// port.
func cmdMetricsApp(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: metricsapp VAR MODEFILE")
	}
	modeFile := ts.MkAbs(args[1])
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "Requests by status code."}, []string{"code"})
	dur := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "http_request_duration_seconds", Help: "Request latency.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}})
	reg.MustRegister(reqs, dur)
	// Both series exist from the start: a ratio has a denominator.
	reqs.WithLabelValues("200")
	reqs.WithLabelValues("500")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		// Bounded: at most 10 minutes of traffic.
		for end := time.Now().Add(10 * time.Minute); time.Now().Before(end); {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			mode := "good"
			if b, err := os.ReadFile(modeFile); err == nil {
				mode = strings.TrimSpace(string(b))
			}
			code, lat := "200", 0.01
			switch mode {
			case "errors":
				if rand.Float64() < 0.3 {
					code = "500"
				}
			case "slight":
				if rand.Float64() < 0.05 {
					code = "500"
				}
			case "slow":
				lat = 0.8
			}
			reqs.WithLabelValues(code).Inc()
			dur.Observe(lat)
		}
	}()
	ts.Defer(func() {
		cancel()
		wg.Wait()
		srv.Close()
	})
	ts.Setenv(args[0], strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
}

// waitprom PORT CONDITION QUERY: wait (at most a minute) until the
// Prometheus on 127.0.0.1:PORT has one value for QUERY that meets
// CONDITION ("< 0.05"; "any" for any value).
func cmdWaitProm(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: waitprom PORT CONDITION QUERY")
	}
	var cond *analysis.Condition
	if args[1] != "any" {
		c, err := analysis.ParseCondition(args[1])
		ts.Check(err)
		cond = &c
	}
	// Through the analysis' own query client.
	prom, err := analysis.NewPrometheus("http://127.0.0.1:"+args[0], 5*time.Second)
	ts.Check(err)
	var last string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		v, err := prom.Query(context.Background(), args[2], time.Now())
		if err != nil {
			last = err.Error()
			continue
		}
		if cond == nil || cond.Met(v) {
			return
		}
		last = fmt.Sprintf("value %v", v)
	}
	ts.Fatalf("waitprom: %s never met %s within a minute: %s", args[2], args[1], last)
}
