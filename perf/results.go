package perf

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/relcheck/relcheck/report"
)

// ResultsVersion is the version of the saved results format.
const ResultsVersion = 1

// Results are everything a perf run measured: enough to recompute its
// verdict later (relcheck perf compare) or elsewhere.
type Results struct {
	Version     int         `json:"version"`
	Environment Environment `json:"environment"`
	Base        string      `json:"base"`
	Head        string      `json:"head"`
	Benchtime   string      `json:"benchtime"`
	Rounds      int         `json:"rounds"`
	// Mode is how the rounds ran: duet (paired) or interleaved ("":
	// interleaved, as before the mode existed).
	Mode string `json:"mode,omitempty"`
	// RoundsRun is fewer than Rounds when the time budget ran out.
	RoundsRun int `json:"roundsRun"`
	// Benchmarks hold the samples of the interleaved rounds; Confirm those
	// of the fresh rounds that re-ran the candidate regressions.
	Benchmarks []*Bench `json:"benchmarks"`
	Confirm    []*Bench `json:"confirm,omitempty"`
	// Scenarios are the load scenarios' rounds.
	Scenarios []*ScenarioResult `json:"scenarios,omitempty"`
	// Skipped says what the time budget left out.
	Skipped []string `json:"skipped,omitempty"`
	// BenchSeconds is how long the benchmark binaries ran, WallSeconds
	// the whole run (builds included).
	BenchSeconds float64 `json:"benchSeconds"`
	WallSeconds  float64 `json:"wallSeconds"`
	// Raw is the benchmark output of each side in the Go benchmark format.
	Raw map[string]string `json:"raw"`
}

// ScenarioResult are a load scenario's rounds at base and head.
type ScenarioResult struct {
	Name string `json:"name"`
	Rate int    `json:"rate"`
	// Threshold (percent) and SLO are the scenario's, ConfigFile and Line
	// where it is declared: enough to judge the rounds again.
	Threshold  float64       `json:"threshold"`
	SLO        []string      `json:"slo,omitempty"`
	ConfigFile string        `json:"configFile,omitempty"`
	Line       int           `json:"line,omitempty"`
	Base       []*roundStats `json:"base"`
	Head       []*roundStats `json:"head"`
	// NoBase says why the base was not run (the program is new).
	NoBase string `json:"noBase,omitempty"`
	// Database says how the scenario's databases were made; Metrics are
	// the program's own metrics compared.
	Database string   `json:"database,omitempty"`
	Metrics  []string `json:"metrics,omitempty"`
}

// Environment is the machine a run was measured on.
type Environment struct {
	CPU        string    `json:"cpu"`
	NumCPU     int       `json:"numCPU"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	GoVersion  string    `json:"goVersion"`
	GOOS       string    `json:"goos"`
	GOARCH     string    `json:"goarch"`
	LoadAvg    string    `json:"loadAvg,omitempty"` // at the start, from /proc/loadavg
	Start      time.Time `json:"start"`
}

// Bench is one benchmark's samples per unit.
type Bench struct {
	Package string                  `json:"package"`
	Dir     string                  `json:"dir"` // relative to the module root
	Name    string                  `json:"name"`
	File    string                  `json:"file,omitempty"` // where it is declared, repository-relative
	Line    int                     `json:"line,omitempty"`
	Units   map[string]*UnitSamples `json:"units"`
}

// UnitSamples are a unit's values at base and at head, one per round.
type UnitSamples struct {
	Base []float64 `json:"base"`
	Head []float64 `json:"head"`
}

// FullName is the package and benchmark name.
func (b *Bench) FullName() string { return b.Package + "." + b.Name }

func (b *Bench) key() string { return b.Dir + "\x00" + b.Name }

func (b *Bench) add(side Side, unit string, v float64) {
	u := b.Units[unit]
	if u == nil {
		u = &UnitSamples{}
		b.Units[unit] = u
	}
	if side == Base {
		u.Base = append(u.Base, v)
	} else {
		u.Head = append(u.Head, v)
	}
}

// environment describes this machine now.
func environment() Environment {
	env := Environment{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Start: time.Now().UTC().Truncate(time.Second)}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				env.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(data)); len(f) >= 3 {
			env.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return env
}

// Save writes the results as JSON to file, and each side's raw benchmark
// output next to it (FILE without .json, plus .base.txt and .head.txt), for
// benchstat.
func (r *Results) Save(file string) ([]string, error) {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	written := []string{file}
	stem := strings.TrimSuffix(file, ".json")
	for _, side := range []string{"base", "head"} {
		f := stem + "." + side + ".txt"
		if err := os.WriteFile(f, []byte(r.Raw[side]), 0o644); err != nil {
			return nil, err
		}
		written = append(written, f)
	}
	return written, nil
}

// Load reads results saved with Save, or Go benchmark output (as written by
// go test -bench), which becomes the head side of a results value.
func Load(file string) (*Results, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &report.InputError{Err: err}
	}
	if trimmed := strings.TrimSpace(string(data)); strings.HasPrefix(trimmed, "{") {
		var head struct {
			Version int `json:"version"`
		}
		if err := json.Unmarshal([]byte(trimmed), &head); err != nil {
			return nil, report.Inputf("%s: not relcheck perf results: %v", file, err)
		}
		if head.Version != ResultsVersion {
			return nil, report.Inputf("%s: results format version %d; this relcheck reads version %d", file, head.Version, ResultsVersion)
		}
		var r Results
		dec := json.NewDecoder(strings.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return nil, report.Inputf("%s: not relcheck perf results: %v", file, err)
		}
		for _, list := range [][]*Bench{r.Benchmarks, r.Confirm} {
			for _, b := range list {
				if err := b.valid(); err != nil {
					return nil, report.Inputf("%s: %v", file, err)
				}
			}
		}
		for _, sc := range r.Scenarios {
			if err := sc.valid(); err != nil {
				return nil, report.Inputf("%s: %v", file, err)
			}
		}
		if r.Raw == nil {
			r.Raw = map[string]string{}
		}
		return &r, nil
	}
	results, err := parse(data, file, 0)
	if err != nil {
		return nil, report.Inputf("%s: %v", file, err)
	}
	if len(results) == 0 {
		return nil, report.Inputf("%s: neither relcheck perf results (JSON) nor Go benchmark output: no benchmark lines", file)
	}
	r := &Results{Version: ResultsVersion, Raw: map[string]string{"head": string(data)}}
	byName := map[string]*Bench{}
	for _, res := range results {
		k := res.Pkg + "." + res.Name
		b := byName[k]
		if b == nil {
			b = &Bench{Package: res.Pkg, Dir: ".", Name: res.Name, Units: map[string]*UnitSamples{}}
			byName[k] = b
			r.Benchmarks = append(r.Benchmarks, b)
		}
		for u, v := range res.Values {
			b.add(Head, u, v)
		}
	}
	return r, nil
}

// valid checks a scenario read from a results file.
func (sc *ScenarioResult) valid() error {
	if sc == nil {
		return fmt.Errorf("an empty scenario")
	}
	for _, rounds := range [][]*roundStats{sc.Base, sc.Head} {
		for _, r := range rounds {
			if r == nil {
				return fmt.Errorf("scenario %s: an empty round", sc.Name)
			}
			for _, v := range append([]float64{r.P50, r.P99}, r.Latencies...) {
				if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
					return fmt.Errorf("scenario %s: latency %v is not a measurement", sc.Name, v)
				}
			}
		}
	}
	return nil
}

// valid checks a benchmark read from a results file.
func (b *Bench) valid() error {
	if b == nil || b.Units == nil {
		return fmt.Errorf("a benchmark without samples")
	}
	for u, s := range b.Units {
		if s == nil {
			return fmt.Errorf("%s: no samples for %s", b.Name, u)
		}
		for _, v := range append(slices.Clone(s.Base), s.Head...) {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return fmt.Errorf("%s: %s sample %v is not a measurement", b.Name, u, v)
			}
		}
	}
	return nil
}

// Against pairs the head samples of old (as base) with the head samples of
// new: two runs (or two benchmark outputs) compared as base and head.
func Against(old, new *Results) *Results {
	r := &Results{Version: ResultsVersion, Rounds: new.Rounds, RoundsRun: new.RoundsRun, Environment: new.Environment,
		Raw: map[string]string{"base": old.Raw["head"], "head": new.Raw["head"]}}
	byKey := map[string]*Bench{}
	get := func(b *Bench) *Bench {
		k := b.FullName()
		if n := byKey[k]; n != nil {
			return n
		}
		n := &Bench{Package: b.Package, Dir: b.Dir, Name: b.Name, File: b.File, Line: b.Line, Units: map[string]*UnitSamples{}}
		byKey[k] = n
		r.Benchmarks = append(r.Benchmarks, n)
		return n
	}
	for side, run := range []*Results{Base: old, Head: new} {
		for _, b := range run.Benchmarks {
			n := get(b)
			for u, s := range b.Units {
				for _, v := range s.Head {
					n.add(Side(side), u, v)
				}
			}
		}
	}
	for _, ns := range new.Scenarios {
		for _, os := range old.Scenarios {
			if os.Name == ns.Name {
				pair := *ns
				pair.Base, pair.NoBase = os.Head, ""
				r.Scenarios = append(r.Scenarios, &pair)
			}
		}
	}
	return r
}
