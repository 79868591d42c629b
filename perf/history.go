package perf

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aclements/go-moremath/stats"

	"github.com/relcheck/relcheck/report"
)

// The perf history is a JSON-lines file, one record per perf run that was
// asked to add to it (relcheck check perf --history FILE): the head's
// median time per operation of each benchmark with its interval. A plain
// file, not an OCI referrer of the release: it needs no registry, it is
// written by the same CI job that ran the gate, a maintainer can commit it
// or keep it as a CI artifact, and a line per run is easy to diff, merge
// and trim. relcheck perf history renders it as a chart.

// HistoryVersion is the version of a history record's format.
const HistoryVersion = 1

// HistoryRecord is one run in the history.
type HistoryRecord struct {
	Format int `json:"format"`
	// Version is what was measured (the head: a tag, or a commit), Base
	// what it was compared with.
	Version    string         `json:"version"`
	Base       string         `json:"base,omitempty"`
	Time       time.Time      `json:"time"`
	Mode       string         `json:"mode,omitempty"`
	CPU        string         `json:"cpu,omitempty"`
	NumCPU     int            `json:"numCPU,omitempty"`
	GoVersion  string         `json:"goVersion,omitempty"`
	Benchmarks []HistoryBench `json:"benchmarks"`
}

// HistoryBench is a benchmark's head time per operation in one run: the
// median of the rounds and its 95% distribution-free interval, and the
// ratio to the base of that run.
type HistoryBench struct {
	Name   string  `json:"name"`
	Median float64 `json:"median"`
	Lo     float64 `json:"lo"`
	Hi     float64 `json:"hi"`
	N      int     `json:"n"`
	Ratio  float64 `json:"ratio,omitempty"`
}

// NewHistoryRecord summarises a run's results.
func NewHistoryRecord(res *Results, version string) HistoryRecord {
	rec := HistoryRecord{Format: HistoryVersion, Version: version, Base: res.Base, Time: res.Environment.Start, Mode: res.Mode,
		CPU: res.Environment.CPU, NumCPU: res.Environment.NumCPU, GoVersion: res.Environment.GoVersion}
	if rec.Time.IsZero() {
		rec.Time = time.Now().UTC().Truncate(time.Second)
	}
	st := Stats{Alpha: 0.025}
	for _, b := range res.Benchmarks {
		u := b.Units["sec/op"]
		if u == nil || len(u.Head) == 0 {
			continue
		}
		hb := HistoryBench{Name: b.FullName(), N: len(u.Head)}
		hb.Median, hb.Lo, hb.Hi = medianCI(u.Head, 0.95)
		if len(u.Base) > 0 {
			hb.Ratio = res.compare(st, u).Ratio
		}
		rec.Benchmarks = append(rec.Benchmarks, hb)
	}
	slices.SortFunc(rec.Benchmarks, func(a, b HistoryBench) int { return strings.Compare(a.Name, b.Name) })
	return rec
}

// medianCI is the median of xs with its distribution-free interval from
// order statistics (as wide as the sample when it is too small).
func medianCI(xs []float64, confidence float64) (med, lo, hi float64) {
	s := stats.Sample{Xs: slices.Clone(xs)}
	s.Sort()
	med = median(xs)
	_, lo, hi = stats.QuantileCI(len(xs), 0.5, confidence).SampleCI(s)
	if math.IsNaN(lo) || math.IsInf(lo, 0) {
		lo = s.Xs[0]
	}
	if math.IsNaN(hi) || math.IsInf(hi, 0) {
		hi = s.Xs[len(s.Xs)-1]
	}
	return med, lo, hi
}

// CheckHistory reads an existing history file: an unreadable or damaged
// one is an input error naming the line, so that nothing is appended to
// it (a missing file is fine: it will be created).
func CheckHistory(file string) error {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return report.Inputf("perf history: %v", err)
	}
	defer f.Close()
	_, err = ReadHistory(f, file)
	return err
}

// AppendHistory adds a record to the history file (created if needed),
// after checking that what is there is a history.
func AppendHistory(file string, rec HistoryRecord) error {
	if err := CheckHistory(file); err != nil {
		return err
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_APPEND|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	// A last line without its newline (written by hand) stays a line.
	last := []byte{'\n'}
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		f.ReadAt(last, st.Size()-1)
	}
	if last[0] != '\n' {
		data = append([]byte{'\n'}, data...)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadHistory reads a history file; a line that is not a record is an
// input error naming it.
func ReadHistory(r io.Reader, name string) ([]HistoryRecord, error) {
	var out []HistoryRecord
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var rec HistoryRecord
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return nil, report.Inputf("%s:%d: not a perf history record: %v", name, n, err)
		}
		if rec.Format != HistoryVersion {
			return nil, report.Inputf("%s:%d: history format %d, this relcheck reads %d", name, n, rec.Format, HistoryVersion)
		}
		for _, b := range rec.Benchmarks {
			if b.Name == "" || !(b.Median > 0) || !(b.Lo > 0) || !(b.Hi >= b.Lo) || math.IsInf(b.Hi, 0) {
				return nil, report.Inputf("%s:%d: benchmark %q has no valid median and interval", name, n, b.Name)
			}
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, report.Inputf("%s: %v", name, err)
	}
	return out, nil
}

// HistorySeries is one benchmark across the history's runs.
type HistorySeries struct {
	Name   string         `json:"name"`
	Points []HistoryPoint `json:"points"`
}

// HistoryPoint is a benchmark in one run.
type HistoryPoint struct {
	Run     int       `json:"run"` // index into the records
	Version string    `json:"version"`
	Base    string    `json:"base,omitempty"`
	Time    time.Time `json:"time"`
	HistoryBench
}

// Series groups the records by benchmark, in name order.
func Series(recs []HistoryRecord) []HistorySeries {
	by := map[string]*HistorySeries{}
	var names []string
	for i, r := range recs {
		for _, b := range r.Benchmarks {
			s := by[b.Name]
			if s == nil {
				s = &HistorySeries{Name: b.Name}
				by[b.Name] = s
				names = append(names, b.Name)
			}
			s.Points = append(s.Points, HistoryPoint{Run: i, Version: r.Version, Base: r.Base, Time: r.Time, HistoryBench: b})
		}
	}
	slices.Sort(names)
	out := make([]HistorySeries, 0, len(names))
	for _, n := range names {
		out = append(out, *by[n])
	}
	return out
}

// WriteHistoryHTML renders the history as a self-contained page: per
// benchmark an SVG chart of the median time per operation (with its
// interval) per run, so drift across releases shows, not only base
// against head.
func WriteHistoryHTML(w io.Writer, recs []HistoryRecord) error {
	type point struct {
		X, Y, Y0, Y1 float64
		Title        string
	}
	type chart struct {
		Name    string
		Points  []point
		Path    string
		Labels  []point
		YTop    string
		YBottom string
		Drift   string
	}
	const width, height, left, right, top, bottom = 640.0, 220.0, 70.0, 60.0, 20.0, 50.0
	var charts []chart
	for _, s := range Series(recs) {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, p := range s.Points {
			lo, hi = math.Min(lo, p.Lo), math.Max(hi, p.Hi)
		}
		if hi <= lo {
			hi = lo * 1.01
		}
		pad := (hi - lo) * 0.1
		lo, hi = math.Max(0, lo-pad), hi+pad
		x := func(i int) float64 {
			if len(recs) == 1 {
				return left + (width-left-right)/2
			}
			return left + float64(i)*(width-left-right)/float64(len(recs)-1)
		}
		y := func(v float64) float64 { return top + (hi-v)/(hi-lo)*(height-top-bottom) }
		c := chart{Name: s.Name, YTop: formatTime(hi), YBottom: formatTime(lo)}
		var path strings.Builder
		for i, p := range s.Points {
			pt := point{X: x(p.Run), Y: y(p.Median), Y0: y(p.Lo), Y1: y(p.Hi),
				Title: fmt.Sprintf("%s (%s): %s per op (95%% interval %s–%s, %d rounds)", p.Version, p.Time.Format("2006-01-02 15:04"), formatTime(p.Median), formatTime(p.Lo), formatTime(p.Hi), p.N)}
			if p.Ratio > 0 {
				pt.Title += fmt.Sprintf("; ×%.3f against its base", p.Ratio)
			}
			c.Points = append(c.Points, pt)
			cmd := "L"
			if i == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, pt.X, pt.Y)
		}
		c.Path = strings.TrimSpace(path.String())
		for i, r := range recs {
			c.Labels = append(c.Labels, point{X: x(i), Y: height - bottom + 16, Title: runLabel(recs, i)})
			c.Labels = append(c.Labels, point{X: x(i), Y: height - bottom + 30, Title: r.Time.Format("01-02 15:04")})
		}
		if n := len(s.Points); n >= 2 {
			first, last := s.Points[0], s.Points[n-1]
			c.Drift = fmt.Sprintf("%+.1f%% from %s to %s", 100*(last.Median/first.Median-1), runLabel(recs, first.Run), runLabel(recs, last.Run))
		}
		charts = append(charts, c)
	}
	return historyPage.Execute(w, map[string]any{"Charts": charts, "Runs": len(recs), "W": width, "H": height, "Left": left, "Right": width - right, "Bottom": height - bottom})
}

var historyPage = template.Must(template.New("history").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>relcheck perf history</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222;background:#fff}
h1{font-size:1.3em} h2{font-size:1em;margin:1.5em 0 .3em;font-family:monospace}
svg{max-width:100%;height:auto} .axis{stroke:#999} .line{fill:none;stroke:#1f6feb;stroke-width:1.5}
.ci{stroke:#1f6feb;stroke-opacity:.45;stroke-width:6;stroke-linecap:round} .dot{fill:#1f6feb}
text{font-size:11px;fill:#555} .drift{color:#555}
@media (prefers-color-scheme: dark){body{background:#111;color:#ddd} text{fill:#aaa}}
</style></head><body>
<h1>Time per operation across {{.Runs}} run(s)</h1>
<p>Each point is a run's median time per operation at its head, with its 95% interval (order statistics of the rounds). Hover a point for its figures.</p>
{{range .Charts}}<h2>{{.Name}}</h2>{{if .Drift}}<p class="drift">{{.Drift}}</p>{{end}}
<svg viewBox="0 0 {{$.W}} {{$.H}}" role="img" aria-label="{{.Name}} time per operation by run">
<line class="axis" x1="{{$.Left}}" y1="{{$.Bottom}}" x2="{{$.Right}}" y2="{{$.Bottom}}"/>
<line class="axis" x1="{{$.Left}}" y1="20" x2="{{$.Left}}" y2="{{$.Bottom}}"/>
<text x="4" y="24">{{.YTop}}</text><text x="4" y="{{$.Bottom}}">{{.YBottom}}</text>
<path class="line" d="{{.Path}}"/>
{{range .Points}}<g><title>{{.Title}}</title><line class="ci" x1="{{.X}}" y1="{{.Y0}}" x2="{{.X}}" y2="{{.Y1}}"/><circle class="dot" cx="{{.X}}" cy="{{.Y}}" r="3.5"/></g>
{{end}}{{range .Labels}}<text x="{{.X}}" y="{{.Y}}" text-anchor="middle">{{.Title}}</text>
{{end}}</svg>
{{end}}</body></html>
`))

// runLabel names run i: its version, with its position among the runs of
// the same version when there are several ("abc123 #2").
func runLabel(recs []HistoryRecord, i int) string {
	n, k := 0, 0
	for j, r := range recs {
		if r.Version == recs[i].Version {
			n++
			if j <= i {
				k = n
			}
		}
	}
	if n > 1 {
		return fmt.Sprintf("%s #%d", recs[i].Version, k)
	}
	return recs[i].Version
}

// RunLabel is runLabel for the CLI.
func RunLabel(recs []HistoryRecord, i int) string { return runLabel(recs, i) }

// FormatTime formats seconds per operation ("1.64 ms").
func FormatTime(s float64) string { return formatTime(s) }
