package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/relcheck/relcheck/analysis"
	"github.com/relcheck/relcheck/config"
)

// demoService is the watched host's service as its operator's Prometheus
// sees it: a /metrics endpoint (client_golang) whose request counter runs
// at 100 requests/s, 0.2% of them errors while the host runs v0.2.0 and 8%
// once it runs v0.3.0.
type demoService struct {
	current atomic.Value // the watched host's current symlink (string)
	reqs    *prometheus.CounterVec
	reg     *prometheus.Registry
}

func newDemoService() *demoService {
	d := &demoService{reg: prometheus.NewRegistry(),
		reqs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "Requests served, by status code."}, []string{"code"})}
	d.reg.MustRegister(d.reqs)
	d.current.Store("")
	return d
}

// ratio is the service's error ratio now.
func (d *demoService) ratio() float64 {
	if t, err := os.Readlink(d.current.Load().(string)); err == nil && strings.Contains(t, "v0.3.0") {
		return 0.08
	}
	return 0.002
}

// serve counts the service's traffic until ctx ends: each 10 ms a request,
// its error share counted as a fraction so that the ratio is exact.
func (d *demoService) serve(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r := d.ratio()
			d.reqs.WithLabelValues("200").Add(1 - r)
			d.reqs.WithLabelValues("500").Add(r)
		}
	}
}

// demoMetrics is where the demo's analysis reads the SLI: the operator's
// Prometheus, real when the machine has one.
type demoMetrics struct {
	service  *demoService
	analysis analysis.Config
	// About says where the SLI comes from, for the demo's output.
	About string
	stop  []func()
}

func (m *demoMetrics) Close() {
	for i := len(m.stop) - 1; i >= 0; i-- {
		m.stop[i]()
	}
}

// newDemoMetrics starts the watched service's metrics and, when the
// machine has a prometheus binary, a real Prometheus scraping them every
// second; otherwise (or when it does not answer within 30 s) a stand-in
// that answers Prometheus' query API from the same service. Either is
// read through analysis' client.
func newDemoMetrics(ctx context.Context, root string) (*demoMetrics, error) {
	svc := newDemoService()
	m := &demoMetrics{service: svc}
	sctx, cancel := context.WithCancel(context.Background())
	m.stop = append(m.stop, cancel)
	go svc.serve(sctx)
	exporter := httptest.NewServer(promhttp.HandlerFor(svc.reg, promhttp.HandlerOpts{}))
	m.stop = append(m.stop, exporter.Close)

	const query = `sum(rate(http_requests_total{code=~"5.."}[5s])) / sum(rate(http_requests_total[5s]))`
	m.analysis = analysis.Config{Bake: config.Duration(10 * time.Second), Interval: config.Duration(time.Second),
		SLIs: []analysis.SLI{{Name: "error_ratio", Query: query, Condition: "< 0.01"}}}
	url, stop, why := startDemoPrometheus(ctx, filepath.Join(root, "prometheus"), strings.TrimPrefix(exporter.URL, "http://"), query)
	if stop != nil {
		m.stop = append(m.stop, stop)
		m.analysis.Prometheus = url
		m.About = fmt.Sprintf("a real Prometheus on %s, scraping the service's /metrics every second", strings.TrimPrefix(url, "http://"))
		return m, nil
	}
	standIn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"%g"]}]}}`, time.Now().Unix(), svc.ratio())
	}))
	m.stop = append(m.stop, standIn.Close)
	m.analysis.Prometheus = standIn.URL
	m.analysis.Bake = config.Duration(2 * time.Second)
	m.About = "a stand-in for Prometheus' query API (" + why + ")"
	return m, nil
}

// startDemoPrometheus starts prometheus scraping target and waits until
// query has a value. It returns stop == nil and why when it cannot.
func startDemoPrometheus(ctx context.Context, dir, target, query string) (url string, stop func(), why string) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return "", nil, "this machine has no prometheus"
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err.Error()
	}
	addr := l.Addr().String()
	l.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err.Error()
	}
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: textkitd\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		return "", nil, err.Error()
	}
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		return "", nil, err.Error()
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--web.listen-address="+addr,
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", nil, err.Error()
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	url = "http://" + addr
	// Ready when the SLI has a value: Prometheus answers and has scraped
	// the service twice.
	p, err := analysis.NewPrometheus(url, 2*time.Second)
	if err != nil {
		stop()
		return "", nil, err.Error()
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err = p.Query(wctx, query, time.Now()); err == nil {
			return url, stop, ""
		}
		select {
		case <-done:
			return "", nil, fmt.Sprintf("prometheus exited; see %s", filepath.Join(dir, "prometheus.log"))
		case <-wctx.Done():
			stop()
			return "", nil, fmt.Sprintf("prometheus gave no value within 30 s: %v", err)
		case <-tick.C:
		}
	}
}
