package perf

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	"gopkg.in/yaml.v3"

	"github.com/relcheck/relcheck/config"
)

// Scenario is a realistic load test: the program built at base and at
// head, started fresh for each round, driven at a fixed arrival rate.
type Scenario struct {
	Name string `yaml:"name"`
	// Build is the Go package of the program, relative to the module
	// ("./cmd/server"); Args are its arguments, where {port} and {addr}
	// are replaced (the port is also in $PORT).
	Build string   `yaml:"build"`
	Args  []string `yaml:"args"`
	// Ready is the path polled with GET until it answers 2xx.
	Ready        string          `yaml:"ready"`
	ReadyTimeout config.Duration `yaml:"readyTimeout"`
	Targets      []Target        `yaml:"targets"`
	// Rate is the arrival rate in requests per second (open model: it does
	// not slow down when the program does).
	Rate     int             `yaml:"rate"`
	Duration config.Duration `yaml:"duration"`
	// Warmup is discarded at the start of every round.
	Warmup config.Duration `yaml:"warmup"`
	Rounds int             `yaml:"rounds"`
	// SLO are absolute objectives at head, like "p99 < 50ms" or
	// "errors < 0.1%".
	SLO []string `yaml:"slo"`
	// Threshold is the relative slowdown against base that counts.
	Threshold config.Percent `yaml:"threshold"`
	// Database, when set, gives each side a real database at production
	// size (scenario_db.go).
	Database *ScenarioDatabase `yaml:"database"`
	// Metrics are the program's own metrics (Prometheus text format at
	// MetricsPath), scraped before and after each round's load and
	// compared base against head like the latencies.
	Metrics     []string `yaml:"metrics"`
	MetricsPath string   `yaml:"metricsPath"`

	// Line is where the scenario starts in the configuration file.
	Line int    `yaml:"-"`
	slos []slo  `yaml:"-"`
	key  string `yaml:"-"`
}

// Target is one request of a scenario's mix.
type Target struct {
	Method  string            `yaml:"method"`
	Path    string            `yaml:"path"`
	Body    string            `yaml:"body"`
	Headers map[string]string `yaml:"headers"`
}

type slo struct {
	text   string
	metric string  // "p50", "p99.9", "mean", "max", "errors"
	limit  float64 // seconds, or a fraction for errors
	le     bool    // <= rather than <
}

var reSLO = regexp.MustCompile(`^(p\d{1,2}(?:\.\d+)?|mean|max|errors)\s*(<=|<)\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|%)$`)

func parseSLO(s string) (slo, error) {
	m := reSLO.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return slo{}, fmt.Errorf("%q is not an objective like \"p99 < 50ms\" or \"errors < 0.1%%\"", s)
	}
	v, _ := strconv.ParseFloat(m[3], 64)
	o := slo{text: strings.TrimSpace(s), metric: m[1], le: m[2] == "<="}
	switch {
	case m[1] == "errors" && m[4] == "%":
		o.limit = v / 100
	case m[1] == "errors" || m[4] == "%":
		return slo{}, fmt.Errorf("%q: errors take a percentage, latencies a duration", s)
	default:
		unit := map[string]float64{"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1}[m[4]]
		o.limit = v * unit
	}
	if strings.HasPrefix(o.metric, "p") {
		if q, _ := strconv.ParseFloat(o.metric[1:], 64); q <= 0 || q >= 100 {
			return slo{}, fmt.Errorf("%q: a percentile is between p0 and p100", s)
		}
	}
	return o, nil
}

var scenarioKeys = []string{"name", "build", "args", "ready", "readyTimeout", "targets", "rate", "duration", "warmup", "rounds", "slo", "threshold", "database", "metrics", "metricsPath"}
var targetKeys = []string{"method", "path", "body", "headers"}

// ParseScenarios reads perf.scenarios from relcheck.yaml's nodes.
func ParseScenarios(file string, nodes []yaml.Node) ([]*Scenario, error) {
	var out []*Scenario
	for i := range nodes {
		n := &nodes[i]
		key := fmt.Sprintf("perf.scenarios[%d]", i)
		bad := func(line int, k, format string, args ...any) error {
			return &config.Error{File: file, Line: line, Key: key + k, Msg: fmt.Sprintf(format, args...)}
		}
		// at is the line of key k of the scenario (its first line if absent).
		at := func(k string) int {
			for j := 0; j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == k {
					return n.Content[j].Line
				}
			}
			return n.Line
		}
		if n.Kind != yaml.MappingNode {
			return nil, bad(n.Line, "", "must be a mapping with build, targets, rate, duration, ...")
		}
		if err := checkKeys(n, scenarioKeys, func(line int, k string) error {
			return bad(line, "."+k, "unknown key (known: %s)", strings.Join(scenarioKeys, ", "))
		}); err != nil {
			return nil, err
		}
		for j := 1; j < len(n.Content); j += 2 {
			if n.Content[j-1].Value == "database" {
				if err := checkKeys(n.Content[j], databaseKeys, func(line int, k string) error {
					return bad(line, ".database."+k, "unknown key (known: %s)", strings.Join(databaseKeys, ", "))
				}); err != nil {
					return nil, err
				}
			}
			if n.Content[j-1].Value == "targets" && n.Content[j].Kind == yaml.SequenceNode {
				for ti, t := range n.Content[j].Content {
					if err := checkKeys(t, targetKeys, func(line int, k string) error {
						return bad(line, fmt.Sprintf(".targets[%d].%s", ti, k), "unknown key (known: %s)", strings.Join(targetKeys, ", "))
					}); err != nil {
						return nil, err
					}
				}
			}
		}
		sc := &Scenario{Ready: "/", ReadyTimeout: config.Duration(10 * time.Second), Rate: 50, Duration: config.Duration(5 * time.Second),
			Warmup: config.Duration(time.Second), Rounds: 6, Threshold: 10, MetricsPath: "/metrics", Line: n.Line}
		if err := n.Decode(sc); err != nil {
			return nil, bad(n.Line, "", "%v", err)
		}
		sc.key = key
		if sc.Name == "" {
			sc.Name = fmt.Sprintf("scenario %d", i+1)
		}
		switch {
		case sc.Build == "":
			return nil, bad(at("build"), ".build", "missing: the Go package of the program to start, e.g. ./cmd/server")
		case len(sc.Targets) == 0:
			return nil, bad(at("targets"), ".targets", "missing: at least one {method, path}")
		case sc.Rate < 1 || sc.Rate > 100000:
			return nil, bad(at("rate"), ".rate", "must be between 1 and 100000 requests per second")
		case time.Duration(sc.Duration) < 100*time.Millisecond || time.Duration(sc.Duration) > time.Hour:
			return nil, bad(at("duration"), ".duration", "must be between 100ms and 1h")
		case sc.Warmup < 0 || time.Duration(sc.Warmup) >= time.Hour:
			return nil, bad(at("warmup"), ".warmup", "must be between 0 and 1h")
		case sc.Rounds < minSamples || sc.Rounds > 1000:
			return nil, bad(at("rounds"), ".rounds", "must be between %d and 1000: fewer rounds per side cannot show a significant change", minSamples)
		case sc.Threshold < 0 || sc.Threshold > 1000:
			return nil, bad(at("threshold"), ".threshold", "must be between 0%% and 1000%%")
		case sc.ReadyTimeout <= 0 || time.Duration(sc.ReadyTimeout) > time.Hour:
			return nil, bad(at("readyTimeout"), ".readyTimeout", "must be between 0 and 1h")
		case !strings.HasPrefix(sc.Ready, "/"):
			return nil, bad(at("ready"), ".ready", "must be a path starting with /")
		}
		for ti := range sc.Targets {
			t := &sc.Targets[ti]
			if t.Method == "" {
				t.Method = http.MethodGet
			}
			if !strings.HasPrefix(t.Path, "/") {
				return nil, bad(at("targets"), fmt.Sprintf(".targets[%d].path", ti), "must be a path starting with /")
			}
		}
		if k, msg := sc.validateDB(); msg != "" {
			return nil, bad(at(strings.Split(k, ".")[1]), k, "%s", msg)
		}
		for _, s := range sc.SLO {
			o, err := parseSLO(s)
			if err != nil {
				return nil, bad(at("slo"), ".slo", "%v", err)
			}
			sc.slos = append(sc.slos, o)
		}
		out = append(out, sc)
	}
	return out, nil
}

func checkKeys(n *yaml.Node, known []string, bad func(line int, k string) error) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if k := n.Content[j]; !slices.Contains(known, k.Value) {
			return bad(k.Line, k.Value)
		}
	}
	return nil
}

// roundStats is what one round of a scenario measured, after the warm-up.
type roundStats struct {
	Latencies []float64 `json:"latencies"` // seconds, from the intended send time
	Errors    int       `json:"errors"`
	Requests  int       `json:"requests"`
	P50       float64   `json:"p50"`
	P99       float64   `json:"p99"`
	Achieved  float64   `json:"achievedRate"`
	// Metrics are what the round's load did to the program's own metrics.
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// ScenarioError is a scenario that could not be measured (exit 3).
type ScenarioError struct{ Msg string }

func (e *ScenarioError) Error() string { return e.Msg }

// buildProgram builds a scenario's program in the module at modDir.
func buildProgram(ctx context.Context, modDir, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = modDir
	if msg, err := cmd.CombinedOutput(); err != nil {
		return &BuildError{Package: pkg, Output: strings.TrimSpace(string(msg))}
	}
	return nil
}

// runRound starts the program, waits until it is ready, drives the load,
// and stops it; dsn, if set, is its database.
func (sc *Scenario) runRound(ctx context.Context, side Side, exe, dir, dsn string) (*roundStats, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var args []string
	for _, a := range sc.Args {
		args = append(args, strings.NewReplacer("{port}", strconv.Itoa(port), "{addr}", addr, "{dsn}", dsn).Replace(a))
	}
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
	if dsn != "" {
		cmd.Env = append(cmd.Env, "DATABASE_URL="+dsn)
	}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, &ScenarioError{Msg: fmt.Sprintf("%s: starting the program at the %s: %v", sc.Name, side, err)}
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}()

	// Ready: GET until 2xx, the program exits, or the timeout.
	base := "http://" + addr
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(time.Duration(sc.ReadyTimeout))
	for {
		if resp, err := client.Get(base + sc.Ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				break
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return nil, &ScenarioError{Msg: fmt.Sprintf("%s: the program at the %s exited before it was ready (%v): %s", sc.Name, side, err, lastLines(out.String(), 5))}
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, &ScenarioError{Msg: fmt.Sprintf("%s: the program at the %s was not ready within %s: GET %s never answered 2xx%s", sc.Name, side, time.Duration(sc.ReadyTimeout), base+sc.Ready, outputTail(out.String()))}
		}
	}

	var targets []vegeta.Target
	for _, t := range sc.Targets {
		h := http.Header{}
		for k, v := range t.Headers {
			h.Set(k, v)
		}
		targets = append(targets, vegeta.Target{Method: t.Method, URL: base + t.Path, Body: []byte(t.Body), Header: h})
	}
	var before map[string]*dto.MetricFamily
	if len(sc.Metrics) > 0 {
		if before, err = scrape(ctx, base+sc.MetricsPath); err != nil {
			return nil, &ScenarioError{Msg: fmt.Sprintf("%s: reading the program's metrics at the %s: %v", sc.Name, side, err)}
		}
	}
	attacker := vegeta.NewAttacker(vegeta.Timeout(30*time.Second), vegeta.KeepAlive(true), vegeta.Workers(10), vegeta.MaxWorkers(10000))
	defer attacker.Stop()
	warm, dur := time.Duration(sc.Warmup), time.Duration(sc.Duration)
	interval := time.Second / time.Duration(sc.Rate)
	began := time.Now()
	rs := &roundStats{}
	var lags []float64
	for res := range attacker.Attack(vegeta.NewStaticTargeter(targets...), vegeta.ConstantPacer{Freq: sc.Rate, Per: time.Second}, warm+dur, sc.Name) {
		// vegeta's constant pacer schedules hit n (from 0) at (n+1) intervals.
		intended := began.Add(time.Duration(res.Seq+1) * interval)
		if intended.Before(began.Add(warm)) {
			continue
		}
		// Latency from when the request should have been sent: a stall of
		// the program or of the generator is not hidden.
		rs.Latencies = append(rs.Latencies, res.End().Sub(intended).Seconds())
		lags = append(lags, res.Timestamp.Sub(intended).Seconds())
		rs.Requests++
		if res.Error != "" || res.Code < 200 || res.Code >= 400 {
			rs.Errors++
		}
		if ctx.Err() != nil {
			attacker.Stop()
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	expected := float64(sc.Rate) * dur.Seconds()
	rs.Achieved = float64(rs.Requests) / dur.Seconds()
	if float64(rs.Requests) < 0.9*expected {
		return nil, &ScenarioError{Msg: fmt.Sprintf("%s: the load generator could not keep %d requests/s at the %s (sent %d of %.0f): lower the rate or run on a less loaded machine", sc.Name, sc.Rate, side, rs.Requests, expected)}
	}
	slices.Sort(lags)
	if lag := quantile(lags, 0.95); lag > math.Max(0.05, 10*interval.Seconds()) {
		return nil, &ScenarioError{Msg: fmt.Sprintf("%s: the load generator fell behind at the %s (95%% of requests sent up to %s late): lower the rate or run on a less loaded machine", sc.Name, side, formatTime(lag))}
	}
	sorted := slices.Clone(rs.Latencies)
	slices.Sort(sorted)
	rs.P50, rs.P99 = quantile(sorted, 0.50), quantile(sorted, 0.99)
	if len(sc.Metrics) > 0 {
		after, err := scrape(ctx, base+sc.MetricsPath)
		if err != nil {
			return nil, &ScenarioError{Msg: fmt.Sprintf("%s: reading the program's metrics at the %s: %v", sc.Name, side, err)}
		}
		var missing []string
		rs.Metrics, missing = roundMetrics(sc.Metrics, before, after)
		if len(missing) > 0 && side == Head {
			return nil, &ScenarioError{Msg: fmt.Sprintf("%s: the program at the %s does not export %s at %s (perf.scenarios: metrics)", sc.Name, side, strings.Join(missing, ", "), sc.MetricsPath)}
		}
		// A metric new at head is not compared; evaluateScenarios says so.
	}
	return rs, nil
}

func outputTail(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return " (the program printed nothing)"
	}
	return "; its output ends:\n" + lastLines(s, 5)
}

// quantile of sorted xs by the nearest rank.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil // keep the first MiB
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// exePath is where a scenario's program is built for a side.
func exePath(work string, side Side, i int) string {
	return filepath.Join(work, side.String(), fmt.Sprintf("scenario%d", i))
}
