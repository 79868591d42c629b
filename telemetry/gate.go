package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/relcheck/relcheck/config"
)

// Requirement is one condition on shared data: installs>=20,
// rollback_rate<1%, soak>=72h.
type Requirement struct {
	Metric string
	Op     string
	Value  float64
	Soak   time.Duration
}

func (r Requirement) String() string {
	switch r.Metric {
	case "soak":
		return fmt.Sprintf("soak%s%s", r.Op, config.Duration(r.Soak))
	case "rollback_rate":
		return fmt.Sprintf("rollback_rate%s%v%%", r.Op, r.Value*100)
	}
	return fmt.Sprintf("%s%s%v", r.Metric, r.Op, r.Value)
}

// ParseRequire parses a comma-separated list of requirements.
func ParseRequire(s string) ([]Requirement, error) {
	var out []Requirement
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		i := strings.IndexAny(part, "<>=")
		if i <= 0 {
			return nil, fmt.Errorf("%q: want METRIC OP VALUE, like installs>=20, rollback_rate<1%% or soak>=72h", part)
		}
		r := Requirement{Metric: strings.TrimSpace(part[:i])}
		rest := part[i:]
		for _, op := range []string{">=", "<=", "<", ">"} {
			if strings.HasPrefix(rest, op) {
				r.Op = op
				rest = strings.TrimSpace(rest[len(op):])
				break
			}
		}
		if r.Op == "" {
			return nil, fmt.Errorf("%q: the operator must be >=, <=, < or >", part)
		}
		var err error
		switch r.Metric {
		case "installs":
			if r.Op != ">=" && r.Op != ">" {
				return nil, fmt.Errorf("%q: installs takes >= or >", part)
			}
			r.Value, err = strconv.ParseFloat(rest, 64)
		case "upgrades", "analyzed":
			// Successful upgrades to the version (health check and, where
			// the install has one, analysis passed), or only those that
			// passed a metric analysis: what canaries have shown.
			if r.Op != ">=" && r.Op != ">" {
				return nil, fmt.Errorf("%q: %s takes >= or >", part, r.Metric)
			}
			r.Value, err = strconv.ParseFloat(rest, 64)
		case "rollback_rate":
			if r.Op != "<" && r.Op != "<=" {
				return nil, fmt.Errorf("%q: rollback_rate takes < or <=", part)
			}
			var pct float64
			pct, err = strconv.ParseFloat(strings.TrimSuffix(rest, "%"), 64)
			if err == nil && !strings.HasSuffix(rest, "%") {
				err = fmt.Errorf("write the rate as a percentage, like 1%%")
			}
			r.Value = pct / 100
		case "soak":
			if r.Op != ">=" && r.Op != ">" {
				return nil, fmt.Errorf("%q: soak takes >= or >", part)
			}
			r.Soak, err = config.ParseDuration(rest)
		default:
			return nil, fmt.Errorf("%q: unknown metric %q (installs, upgrades, analyzed, rollback_rate, soak)", part, r.Metric)
		}
		if err != nil {
			return nil, fmt.Errorf("%q: %v", part, err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no requirement in %q", s)
	}
	return out, nil
}

// Figures are what the shared data says about one version.
type Figures struct {
	Version string `json:"version"`
	// Installs is the most reports running the version in one week.
	Installs int64 `json:"installs"`
	// Upgrades to the version, and how many were rolled back.
	Upgrades   int64 `json:"upgrades"`
	RolledBack int64 `json:"rolledBack"`
	// Analyzed counts the successful upgrades that passed a metric
	// analysis.
	Analyzed int64 `json:"analyzed"`
	// Withheld weeks had too few reports for their count of installs to
	// be shown: fewer than MinInstalls (the collector's k; 0 when unknown).
	Withheld    int `json:"withheld"`
	MinInstalls int `json:"minInstalls,omitempty"`
	// Networks is the most distinct source networks one week's reports
	// came from (counted per day): what the figures rest on.
	Networks int64 `json:"networks"`
	// NoiseScale is the Laplace scale of the figures' differential-privacy
	// noise (0: exact figures); requirements keep a margin of it.
	NoiseScale float64 `json:"noiseScale,omitempty"`
}

// margin is how much noise of scale b a requirement allows for on a sum
// of k noisy figures: three standard deviations of the sum, rounded up
// (a Laplace figure's standard deviation is b√2).
func margin(b float64, k int) int64 {
	return int64(math.Ceil(3 * b * math.Sqrt(2*float64(k))))
}

// FiguresFor sums the cells of version.
func FiguresFor(cells []Cell, version string) Figures {
	f := Figures{Version: version}
	for _, c := range cells {
		if c.Version != version {
			continue
		}
		if c.Suppressed {
			f.Withheld++
			continue
		}
		if c.InstallsWithheld {
			f.Withheld++ // the week's count of installs alone is withheld
		}
		f.Installs = max(f.Installs, c.Installs)
		f.Networks = max(f.Networks, c.Networks)
		for name, n := range c.Counters {
			switch {
			case name == "upgrade.success":
				f.Upgrades += n
			case name == "upgrade.analysis.passed":
				f.Analyzed += n
			case strings.HasPrefix(name, "upgrade.rolled_back."):
				f.Upgrades += n
				f.RolledBack += n
			}
		}
	}
	return f
}

// Result is a verdict's outcome.
type Result string

const (
	Pass Result = "pass"
	Fail Result = "fail"
	// Inconclusive is too little data: hold, never pass.
	Inconclusive Result = "inconclusive"
)

// Verdict is what requirements say about a version, with a line per
// requirement.
type Verdict struct {
	Result Result   `json:"result"`
	Lines  []string `json:"lines"`
}

// Evaluate checks requirements against the figures and the soak time.
func Evaluate(reqs []Requirement, f Figures, soak time.Duration) Verdict {
	v := Verdict{Result: Pass}
	worse := func(r Result) {
		if r == Fail || (r == Inconclusive && v.Result == Pass) {
			v.Result = r
		}
	}
	for _, r := range reqs {
		switch r.Metric {
		case "soak":
			ok := soak >= r.Soak
			if r.Op == ">" {
				ok = soak > r.Soak
			}
			if ok {
				v.Lines = append(v.Lines, fmt.Sprintf("pass: %s (on the channel for %s)", r, soak.Round(time.Minute)))
			} else {
				worse(Fail)
				v.Lines = append(v.Lines, fmt.Sprintf("fail: %s (on the channel for %s)", r, soak.Round(time.Minute)))
			}
		case "installs":
			m := margin(f.NoiseScale, 1)
			ok := float64(f.Installs-m) >= r.Value
			if r.Op == ">" {
				ok = float64(f.Installs-m) > r.Value
			}
			noise := ""
			if m > 0 {
				noise = fmt.Sprintf(", counted as %d for the privacy noise", max(f.Installs-m, 0))
			}
			switch {
			case ok:
				v.Lines = append(v.Lines, fmt.Sprintf("pass: %s (%d installs%s)", r, f.Installs, noise))
			case f.Installs == 0 && f.Withheld > 0:
				// Not zero: a count below k is withheld, not shown.
				worse(Inconclusive)
				k := "k"
				if f.MinInstalls > 0 {
					k = fmt.Sprint(f.MinInstalls)
				}
				v.Lines = append(v.Lines, fmt.Sprintf("inconclusive — hold: %s (fewer than %s installs in each of %d week(s) so far: the collector withholds counts below %s)", r, k, f.Withheld, k))
			default:
				worse(Inconclusive)
				extra := ""
				if f.Withheld > 0 {
					extra = fmt.Sprintf("; %d week(s) withheld for too few reports", f.Withheld)
				}
				v.Lines = append(v.Lines, fmt.Sprintf("inconclusive — hold: %s (%d installs so far%s%s)", r, f.Installs, noise, extra))
			}
		case "upgrades", "analyzed":
			good, m, what := f.Upgrades-f.RolledBack, margin(f.NoiseScale, 2), "successful upgrades"
			if r.Metric == "analyzed" {
				good, m, what = f.Analyzed, margin(f.NoiseScale, 1), "upgrades that passed a metric analysis"
			}
			ok := float64(good-m) >= r.Value
			if r.Op == ">" {
				ok = float64(good-m) > r.Value
			}
			if ok {
				v.Lines = append(v.Lines, fmt.Sprintf("pass: %s (%d %s)", r, good, what))
			} else {
				worse(Inconclusive)
				v.Lines = append(v.Lines, fmt.Sprintf("inconclusive — hold: %s (%d %s so far)", r, good, what))
			}
		case "rollback_rate":
			if f.Upgrades == 0 {
				worse(Inconclusive)
				v.Lines = append(v.Lines, fmt.Sprintf("inconclusive — hold: %s (no upgrades reported yet)", r))
				continue
			}
			// The rolled-back figure sums the rollback reasons' counters,
			// each with its own noise: the interval is taken from the
			// worst and the best count the noise allows.
			m := margin(f.NoiseScale, rollbackReasons)
			_, hi := Wilson(min(f.RolledBack+m, f.Upgrades), f.Upgrades)
			lo, _ := Wilson(max(f.RolledBack-m, 0), f.Upgrades)
			obs := fmt.Sprintf("%d of %d upgrades rolled back, %.2f%%; 95%% interval %.2f–%.2f%%", f.RolledBack, f.Upgrades, 100*float64(f.RolledBack)/float64(f.Upgrades), 100*lo, 100*hi)
			if m > 0 {
				obs += fmt.Sprintf(" allowing ±%d for the privacy noise", m)
			}
			below := func(x float64) bool { return x < r.Value || (r.Op == "<=" && x == r.Value) }
			switch {
			case below(hi):
				v.Lines = append(v.Lines, fmt.Sprintf("pass: %s (%s)", r, obs))
			case !below(lo):
				worse(Fail)
				v.Lines = append(v.Lines, fmt.Sprintf("fail: %s (%s)", r, obs))
			default:
				worse(Inconclusive)
				v.Lines = append(v.Lines, fmt.Sprintf("inconclusive — hold: %s (%s: too few upgrades to tell)", r, obs))
			}
		}
	}
	if (f.Networks > 0 || f.NoiseScale > 0) && len(reqs) > 0 {
		about := ""
		if f.NoiseScale > 0 {
			about = "about "
		}
		v.Lines = append(v.Lines, fmt.Sprintf("these figures rest on reports from %s%d source network(s) in a week (each network counts a limited number of reports a day)", about, f.Networks))
	}
	return v
}

// Gate judges a release by the shared telemetry: requirements evaluated on
// a collector's figures for one version of a project. Promotions, rollouts
// and an operator's subscription all decide through it.
type Gate struct {
	Requirements []Requirement
	// Collector is the collector's base URL.
	Collector string
	// HTTP is the client to ask it with; nil: one with a 10 s timeout.
	HTTP *http.Client
}

// NewGate parses requirements ("installs>=20,rollback_rate<1%,soak>=72h")
// into a gate on a collector.
func NewGate(require, collector string) (*Gate, error) {
	reqs, err := ParseRequire(require)
	if err != nil {
		return nil, err
	}
	return &Gate{Requirements: reqs, Collector: collector}, nil
}

// Judge reads the figures of a project's version and evaluates the
// requirements; soak is how long the release has been out.
func (g *Gate) Judge(ctx context.Context, project, version string, soak time.Duration) (Verdict, error) {
	if g.Collector == "" {
		return Verdict{}, errors.New("no telemetry collector to read the shared data from")
	}
	sum, err := FetchSummary(ctx, g.HTTP, g.Collector, project, version)
	if err != nil {
		return Verdict{}, err
	}
	f := FiguresFor(sum.Cells, version)
	// The summary leaves withheld cells out, and says how many there were.
	f.Withheld += sum.Withheld
	f.MinInstalls = sum.MinInstalls
	if sum.Noise != nil {
		f.NoiseScale = sum.Noise.Scale
	}
	return Evaluate(g.Requirements, f, soak), nil
}

// FetchSummary reads a collector's summary for a program and version.
func FetchSummary(ctx context.Context, client *http.Client, base, program, version string) (*Summary, error) {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	q := url.Values{}
	if program != "" {
		q.Set("program", program)
	}
	if version != "" {
		q.Set("version", version)
	}
	u := strings.TrimRight(base, "/") + "/v1/summary?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the shared data at %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, fmt.Errorf("reading the shared data at %s: %s: %s", base, resp.Status, strings.TrimSpace(string(msg)))
	}
	var s Summary
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&s); err != nil {
		return nil, fmt.Errorf("reading the shared data at %s: %v", base, err)
	}
	return &s, nil
}

// rollbackReasons is how many counters the rolled-back figure sums.
const rollbackReasons = 6
