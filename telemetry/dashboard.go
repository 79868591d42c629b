package telemetry

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strings"
)

// The dashboard is one HTML page with inline SVG charts drawn here: no
// script, no font or library from a CDN, nothing fetched at runtime.

type chartLine struct {
	Version string
	Color   string
	Points  string
	Dots    []chartDot
}

type chartDot struct {
	X, Y  float64
	Label string
	// Value is written beside the dot.
	Value string
}

type rateBar struct {
	Version              string
	N                    int64
	Label                string
	Value                string // written above the bar
	X, Width             float64
	Y, H                 float64 // the bar: the observed rate
	WhiskerLo, WhiskerHi float64
	Color                string
}

type dashboardGroup struct {
	Program, Channel string
	Weeks            []string
	WeekX            []float64
	Lines            []chartLine
	MaxInstalls      int64
	YTicks           []chartDot
	Rollback         []rateBar
	Success          []rateBar
	// Withheld names each withheld cell: version and week.
	Withheld []string
}

var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

const (
	chartW, chartH = 640.0, 240.0
	padL, padB     = 48.0, 28.0
)

func (s *Server) getDashboard(w http.ResponseWriter, req *http.Request) {
	cells, err := s.store.Summary(req.Context(), s.query(req))
	if err != nil {
		http.Error(w, "summary: "+err.Error(), http.StatusInternalServerError)
		return
	}
	cells = s.noise.cells(cells)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	dashboardTmpl.Execute(w, struct {
		MinInstalls int
		Groups      []dashboardGroup
	}{s.minInstalls, groups(cells)})
}

// groups lays out the charts of each program and channel.
func groups(cells []Cell) []dashboardGroup {
	type key struct{ p, c string }
	byKey := map[key][]Cell{}
	var keys []key
	for _, c := range cells {
		k := key{c.Program, c.Channel}
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], c)
	}
	var out []dashboardGroup
	for _, k := range keys {
		g := dashboardGroup{Program: k.p, Channel: k.c}
		cs := byKey[k]
		if !slices.ContainsFunc(cs, func(c Cell) bool { return !c.Suppressed }) {
			// Every cell withheld: not even the program's name is shown
			// (it could be one install's).
			continue
		}
		weekSet, versionSet := map[string]bool{}, map[string]bool{}
		for _, c := range cs {
			weekSet[c.Week] = true
			versionSet[c.Version] = true
			if c.Suppressed {
				g.Withheld = append(g.Withheld, c.Version+" in "+c.Week)
			}
			g.MaxInstalls = max(g.MaxInstalls, c.Installs)
		}
		for wk := range weekSet {
			g.Weeks = append(g.Weeks, wk)
		}
		slices.Sort(g.Weeks)
		slices.Sort(g.Withheld)
		var versions []string
		for v := range versionSet {
			versions = append(versions, v)
		}
		slices.Sort(versions)
		x := func(i int) float64 {
			if len(g.Weeks) == 1 {
				return padL + (chartW-padL)/2
			}
			return padL + 30 + float64(i)*(chartW-padL-70)/float64(len(g.Weeks)-1)
		}
		for i := range g.Weeks {
			g.WeekX = append(g.WeekX, x(i))
		}
		top := float64(max(g.MaxInstalls, 1))
		y := func(v int64) float64 { return chartH - padB - float64(v)/top*(chartH-padB-12) }
		for _, t := range []int64{0, g.MaxInstalls / 2, g.MaxInstalls} {
			g.YTicks = append(g.YTicks, chartDot{X: padL - 6, Y: y(t), Label: fmt.Sprint(t)})
		}
		// Installs per version and week.
		byCell := map[[2]string]Cell{}
		for _, c := range cs {
			byCell[[2]string{c.Version, c.Week}] = c
		}
		for vi, v := range versions {
			l := chartLine{Version: v, Color: palette[vi%len(palette)]}
			var pts []string
			for wi, wk := range g.Weeks {
				if c, ok := byCell[[2]string{v, wk}]; ok && !c.Suppressed && c.Installs > 0 {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(wi), y(c.Installs)))
					l.Dots = append(l.Dots, chartDot{X: x(wi), Y: y(c.Installs), Label: fmt.Sprintf("%s %s: %d installs", v, wk, c.Installs), Value: fmt.Sprint(c.Installs)})
				}
			}
			if len(l.Dots) == 0 {
				continue
			}
			l.Points = strings.Join(pts, " ")
			g.Lines = append(g.Lines, l)
		}
		// Upgrade outcomes per version, over all weeks, with 95% Wilson
		// intervals.
		type tally struct{ ok, back int64 }
		per := map[string]*tally{}
		for _, c := range cs {
			if c.Suppressed {
				continue
			}
			t := per[c.Version]
			if t == nil {
				t = &tally{}
				per[c.Version] = t
			}
			for name, n := range c.Counters {
				switch {
				case name == "upgrade.success":
					t.ok += n
				case strings.HasPrefix(name, "upgrade.rolled_back."):
					t.back += n
				}
			}
		}
		var withData []string
		for _, v := range versions {
			if t := per[v]; t != nil && t.ok+t.back > 0 {
				withData = append(withData, v)
			}
		}
		slot := (chartW - padL) / float64(max(len(withData), 1))
		for i, v := range withData {
			t := per[v]
			n := t.ok + t.back
			for _, which := range []struct {
				k     int64
				into  *[]rateBar
				color string
			}{{t.back, &g.Rollback, "#d62728"}, {t.ok, &g.Success, "#2ca02c"}} {
				lo, hi := Wilson(which.k, n)
				p := float64(which.k) / float64(n)
				ry := func(r float64) float64 { return chartH - padB - r*(chartH-padB-12) }
				*which.into = append(*which.into, rateBar{Version: v, N: n,
					Label: fmt.Sprintf("%s: %.1f%% of %d upgrades (95%% CI %.1f–%.1f%%)", v, 100*p, n, 100*lo, 100*hi),
					Value: fmt.Sprintf("%.1f%%", 100*p),
					X:     padL + float64(i)*slot + slot*0.2, Width: slot * 0.6, Y: ry(p), H: ry(0) - ry(p),
					WhiskerLo: ry(lo), WhiskerHi: ry(hi), Color: which.color})
			}
		}
		out = append(out, g)
	}
	return out
}

// Wilson returns the 95% Wilson score interval of k successes in n trials.
func Wilson(k, n int64) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	const z = 1.959963984540054
	p := float64(k) / float64(n)
	nf := float64(n)
	denom := 1 + z*z/nf
	center := (p + z*z/(2*nf)) / denom
	half := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / denom
	return max(0, center-half), min(1, center+half)
}

var dashboardTmpl = template.Must(template.New("dashboard").Funcs(template.FuncMap{
	"add":  func(a, b float64) float64 { return a + b },
	"half": func(a float64) float64 { return a / 2 },
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>relcheck telemetry</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
h2 { margin-top: 2em; }
svg { background: #fafafa; border: 1px solid #ddd; width: 100%; height: auto; }
svg text.value { font-weight: 600; fill: #222; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
.legend span { display: inline-block; margin-right: 1em; }
.legend i { display: inline-block; width: 1em; height: .6em; margin-right: .3em; }
p.note { color: #666; }
</style>
</head>
<body>
<h1>relcheck telemetry</h1>
<p class="note">Opt-in reports from installs, aggregated per program, channel, version and ISO week.
Cells with fewer than {{.MinInstalls}} reports are withheld.</p>
{{if not .Groups}}<p id="empty">No reports yet.</p>{{end}}
{{range .Groups}}{{$grp := .}}
<section class="group">
<h2>{{.Program}} on {{.Channel}}</h2>
{{if .Withheld}}<p class="note withheld">Withheld for too few reports ({{len .Withheld}}): {{range $i, $w := .Withheld}}{{if $i}}, {{end}}{{$grp.Program}} on {{$grp.Channel}}, {{$w}}{{end}}.</p>{{end}}
<h3>Installs per version</h3>
<svg class="chart" id="installs-{{.Program}}-{{.Channel}}" role="img" aria-label="installs per version over time" viewBox="0 0 640 240" preserveAspectRatio="xMinYMin meet">
{{range .YTicks}}<text x="{{.X}}" y="{{.Y}}" text-anchor="end">{{.Label}}</text>{{end}}
<line x1="48" y1="212" x2="640" y2="212" stroke="#999"/>
{{$g := .}}{{range $i, $w := .Weeks}}<text x="{{index $g.WeekX $i}}" y="228" text-anchor="middle">{{$w}}</text>{{end}}
{{range .Lines}}<polyline class="series" fill="none" stroke="{{.Color}}" stroke-width="2" points="{{.Points}}"><title>{{.Version}}</title></polyline>
{{$c := .Color}}{{range .Dots}}<circle cx="{{.X}}" cy="{{.Y}}" r="3" fill="{{$c}}"><title>{{.Label}}</title></circle><text class="value" x="{{.X}}" y="{{add .Y -7}}" text-anchor="middle">{{.Value}}</text>{{end}}
{{end}}
</svg>
<p class="legend">{{range .Lines}}<span><i style="background:{{.Color}}"></i>{{.Version}}</span>{{end}}</p>
<h3>Upgrade success and rollback rates (95% Wilson intervals)</h3>
<svg class="chart" id="rates-{{.Program}}-{{.Channel}}" role="img" aria-label="upgrade success and rollback rates" viewBox="0 0 640 240" preserveAspectRatio="xMinYMin meet">
<text x="42" y="16" text-anchor="end">100%</text><text x="42" y="212" text-anchor="end">0%</text>
<line x1="48" y1="212" x2="640" y2="212" stroke="#999"/>
{{range .Success}}<rect class="bar success" x="{{.X}}" y="{{.Y}}" width="{{half .Width}}" height="{{.H}}" fill="{{.Color}}"><title>success {{.Label}}</title></rect>
<line x1="{{add .X (half (half .Width))}}" y1="{{.WhiskerLo}}" x2="{{add .X (half (half .Width))}}" y2="{{.WhiskerHi}}" stroke="#222"/>
<text class="value" x="{{add .X (half (half .Width))}}" y="{{add .WhiskerHi -4}}" text-anchor="middle">{{.Value}}</text>
<text x="{{add .X (half .Width)}}" y="228" text-anchor="middle">{{.Version}} (n={{.N}})</text>{{end}}
{{range .Rollback}}<rect class="bar rollback" x="{{add .X (half .Width)}}" y="{{.Y}}" width="{{half .Width}}" height="{{.H}}" fill="{{.Color}}"><title>rolled back {{.Label}}</title></rect>
<line x1="{{add (add .X (half .Width)) (half (half .Width))}}" y1="{{.WhiskerLo}}" x2="{{add (add .X (half .Width)) (half (half .Width))}}" y2="{{.WhiskerHi}}" stroke="#222"/>
<text class="value" x="{{add (add .X (half .Width)) (half (half .Width))}}" y="{{add .WhiskerHi -4}}" text-anchor="middle">{{.Value}}</text>{{end}}
</svg>
<p class="legend"><span><i style="background:#2ca02c"></i>upgrades that passed the health check</span><span><i style="background:#d62728"></i>upgrades rolled back</span></p>
</section>
{{end}}
</body>
</html>
`))
