//go:build unix

package telemetry

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"image"
	"image/png"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDashboardInChromium renders the dashboard in a real browser: headless
// Chromium parses the page (so markup the browser would rearrange or drop
// is caught, which string matching on the template's output is not), and
// paints it (so the charts are really drawn, in the palette's colours).
//
// With `go test -artifacts` the rendered DOM and the screenshot are kept.
func TestDashboardInChromium(t *testing.T) {
	browser := findChromium(t)
	ctx := context.Background()
	s, err := OpenStore(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	// Two versions over three ISO weeks: v1.1.0 takes over from v1.0.0,
	// and some of the upgrades to it are rolled back (those installs stay
	// on v1.0.0).
	weeks := []string{"2026-W45", "2026-W46", "2026-W47"}
	old := []int{40, 30, 15}  // running v1.0.0 after upgrading to it
	fresh := []int{6, 20, 35} // running v1.1.0 after upgrading to it
	rolled := []int{2, 3, 2}  // upgrades to v1.1.0 rolled back to v1.0.0
	var rs []*Report
	add := func(wk, id, running string, c Counter) {
		r := report(id, running, c)
		r.Week = wk
		rs = append(rs, r)
	}
	for i, wk := range weeks {
		for j := 0; j < old[i]; j++ {
			add(wk, fmt.Sprint("old", wk, j), "v1.0.0", Counter{Name: "upgrade.success", Version: "v1.0.0", Value: 1})
		}
		for j := 0; j < fresh[i]; j++ {
			add(wk, fmt.Sprint("new", wk, j), "v1.1.0", Counter{Name: "upgrade.success", Version: "v1.1.0", Value: 1})
		}
		for j := 0; j < rolled[i]; j++ {
			add(wk, fmt.Sprint("back", wk, j), "v1.0.0", Counter{Name: "upgrade.rolled_back.health", Version: "v1.1.0", Value: 1})
		}
	}
	added, err := s.Add(ctx, rs, now)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range added {
		if !a {
			t.Fatalf("report %d (%s) not added", i, rs[i].ID)
		}
	}

	// Served on the loopback address only.
	srv := NewServer(s, ServerOptions{MinInstalls: 5, Epsilon: -1, Now: func() time.Time { return now }}) // exact figures
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() { hs.Close(); srv.Close() })
	url := hs.URL + "/"
	out := t.ArtifactDir()

	// 1. The DOM as the browser built it.
	// Chromium logs the page's console, where it reports what the
	// Content-Security-Policy blocked: the page has no script, so any
	// console message is such a report (or another error).
	start := time.Now()
	dom, log := runChromium(t, browser, "--enable-logging=stderr", "--log-level=0", "--dump-dom", url)
	t.Logf("chromium --dump-dom: %s", time.Since(start).Round(time.Millisecond))
	os.WriteFile(filepath.Join(out, "dashboard-dom.html"), dom, 0o644)
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, ":CONSOLE") || strings.Contains(line, "Content Security Policy") {
			t.Errorf("the browser's console: %s", line)
		}
	}

	svgs := map[string]*domNode{}
	for _, raw := range regexp.MustCompile(`(?s)<svg\b.*?</svg>`).FindAll(dom, -1) {
		n := parseFragment(t, raw)
		svgs[n.attr("id")] = n
	}
	installs, rates := svgs["installs-textkit-stable"], svgs["rates-textkit-stable"]
	if installs == nil || rates == nil {
		t.Fatalf("the rendered page lacks the charts installs-textkit-stable and rates-textkit-stable; it has %d svg: %v\n%s", len(svgs), keys(svgs), dom)
	}
	if installs.attr("class") != "chart" || rates.attr("class") != "chart" {
		t.Errorf("chart classes: %q, %q", installs.attr("class"), rates.attr("class"))
	}
	// One line per version, each through the three weeks, in its colour.
	strokes := map[string]string{}
	for _, pl := range installs.all("polyline") {
		if pl.attr("class") != "series" {
			continue
		}
		v := strings.TrimSpace(pl.child("title").text())
		strokes[v] = pl.attr("stroke")
		if pts := strings.Fields(pl.attr("points")); len(pts) != len(weeks) {
			t.Errorf("the line of %s has %d points, want %d: %q", v, len(pts), len(weeks), pl.attr("points"))
		}
	}
	for v, color := range map[string]string{"v1.0.0": "#1f77b4", "v1.1.0": "#ff7f0e"} {
		if strokes[v] != color {
			t.Errorf("the line of %s: stroke %q, want %q (lines: %v)", v, strokes[v], color, strokes)
		}
	}
	if dots := len(installs.all("circle")); dots != 2*len(weeks) {
		t.Errorf("%d dots on the lines, want %d", dots, 2*len(weeks))
	}
	for _, wk := range weeks {
		if !installs.hasText(wk) {
			t.Errorf("the installs chart does not label week %s", wk)
		}
	}
	// A success and a rollback bar per version, with their whiskers.
	bars := map[string]int{}
	var titles []string
	for _, r := range rates.all("rect") {
		bars[r.attr("class")]++
		titles = append(titles, strings.TrimSpace(r.child("title").text()))
		if r.attr("height") == "" || r.attr("width") == "" {
			t.Errorf("bar without a size: %+v", r.Attrs)
		}
	}
	if bars["bar success"] != 2 || bars["bar rollback"] != 2 {
		t.Errorf("bars %v, want 2 success and 2 rollback", bars)
	}
	if n := len(rates.all("line")); n < 1+4 { // the axis and a whisker per bar
		t.Errorf("%d lines in the rates chart, want the axis and 4 whiskers", n)
	}
	// 7 of 68 upgrades to v1.1.0 were rolled back.
	lo, hi := Wilson(7, 68)
	want := fmt.Sprintf("rolled back v1.1.0: 10.3%% of 68 upgrades (95%% CI %.1f–%.1f%%)", 100*lo, 100*hi)
	if !containsString(titles, want) {
		t.Errorf("no bar titled %q: %q", want, titles)
	}
	// The legends: the versions in their line colours, then the outcomes.
	legends := regexp.MustCompile(`(?s)<p class="legend">.*?</p>`).FindAll(dom, -1)
	if len(legends) != 2 {
		t.Fatalf("%d legends in the rendered page, want 2", len(legends))
	}
	versions := parseFragment(t, legends[0])
	for v, color := range strokes {
		found := false
		for _, sp := range versions.all("span") {
			if strings.TrimSpace(sp.text()) == v && strings.Contains(sp.child("i").attr("style"), color) {
				found = true
			}
		}
		if !found {
			t.Errorf("the legend lacks %s in %s: %s", v, color, legends[0])
		}
	}
	outcomes := parseFragment(t, legends[1])
	if !outcomes.hasText("upgrades rolled back") || !outcomes.hasText("upgrades that passed the health check") {
		t.Errorf("the rates legend: %s", legends[1])
	}

	// 2. The page as painted.
	shot := filepath.Join(out, "dashboard.png")
	start = time.Now()
	runChromium(t, browser, "--log-level=3", "--screenshot="+shot, "--window-size=1024,1400", url)
	t.Logf("chromium --screenshot: %s (%s)", time.Since(start).Round(time.Millisecond), shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1024 || b.Dy() != 1400 {
		t.Errorf("screenshot of %v, want 1024x1400", b)
	}
	distinct := map[[3]uint8]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			distinct[rgb(img, x, y)] = true
		}
	}
	if len(distinct) < 16 {
		t.Errorf("the screenshot has %d distinct colours: blank?", len(distinct))
	}
	// A legend's square is 14 by 8 pixels, a dot 7 across: the lines
	// cross most of the chart's 640 px, and the bars are 89 px wide.
	for _, c := range []struct {
		what       string
		hex        string
		minColumns int
		minCount   int
	}{
		{"the v1.0.0 line", "#1f77b4", 400, 300},
		{"the v1.1.0 line", "#ff7f0e", 400, 300},
		{"the success bars", "#2ca02c", 150, 3000},
		{"the rollback bar", "#d62728", 60, 500},
	} {
		n, columns := colourExtent(img, c.hex)
		t.Logf("%s (%s): %d pixels in %d columns", c.what, c.hex, n, columns)
		if n < c.minCount || columns < c.minColumns {
			t.Errorf("%s is not painted: %d pixels of %s in %d columns, want at least %d in %d columns", c.what, n, c.hex, columns, c.minCount, c.minColumns)
		}
	}
}

// findChromium returns Debian's chromium (or chromium-browser). Without it
// the test is skipped, except in CI, where it must be installed.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("in CI Chromium must be installed (Debian package chromium): neither chromium nor chromium-browser is on PATH")
	}
	t.Skip("Chromium is not installed (apt-get install chromium): neither chromium nor chromium-browser is on PATH")
	return ""
}

// runChromium runs headless Chromium once, with a throwaway profile and
// home, for at most a minute, and returns what it printed on stdout and
// stderr. Without a D-Bus Chromium logs dozens of harmless errors: pass
// --log-level=3 to keep only the fatal ones.
func runChromium(t *testing.T, browser string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, browser, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update",
		// /dev/shm is small in containers; Chromium then crashes
		// painting. Its temporary files go to TMPDIR instead.
		"--disable-dev-shm-usage",
		"--disable-extensions", "--disable-sync", "--disable-breakpad",
		"--hide-scrollbars", "--force-device-scale-factor=1",
		"--user-data-dir=" + filepath.Join(home, "profile"),
	}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, "config"), "XDG_CACHE_HOME="+filepath.Join(home, "cache"))
	// Chromium starts helper processes: on a timeout, kill them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s did not finish within 60 s:\n%s", browser, strings.Join(args, " "), errs.Bytes())
	}
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", browser, strings.Join(args, " "), err, errs.Bytes())
	}
	return out.Bytes(), errs.Bytes()
}

// domNode is an element of a fragment of the rendered DOM. Chromium
// serializes SVG and the legend paragraphs with every element closed, so
// encoding/xml (not strict, with HTML's entities) reads them.
type domNode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []*domNode `xml:",any"`
	Text     string     `xml:",chardata"`
}

func parseFragment(t *testing.T, raw []byte) *domNode {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = false
	d.Entity = xml.HTMLEntity
	d.AutoClose = xml.HTMLAutoClose
	var n domNode
	if err := d.Decode(&n); err != nil {
		t.Fatalf("reading the rendered markup: %v\n%s", err, raw)
	}
	return &n
}

func (n *domNode) attr(name string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// all returns the descendants named name.
func (n *domNode) all(name string) []*domNode {
	var out []*domNode
	for _, c := range n.Children {
		if c.XMLName.Local == name {
			out = append(out, c)
		}
		out = append(out, c.all(name)...)
	}
	return out
}

func (n *domNode) child(name string) *domNode {
	if n == nil {
		return nil
	}
	for _, c := range n.Children {
		if c.XMLName.Local == name {
			return c
		}
	}
	return nil
}

// text is the text of n and its descendants.
func (n *domNode) text() string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(n.Text)
	for _, c := range n.Children {
		b.WriteString(c.text())
	}
	return b.String()
}

func (n *domNode) hasText(s string) bool {
	if strings.Contains(n.Text, s) {
		return true
	}
	for _, c := range n.Children {
		if c.hasText(s) {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func rgb(img image.Image, x, y int) [3]uint8 {
	r, g, b, _ := img.At(x, y).RGBA()
	return [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}
}

// colourExtent counts the pixels within a small distance of the colour hex
// (antialiasing and colour management shift them a little), and the
// columns of the image that have such pixels.
func colourExtent(img image.Image, hex string) (count, columns int) {
	var want [3]uint8
	fmt.Sscanf(hex, "#%02x%02x%02x", &want[0], &want[1], &want[2])
	b := img.Bounds()
	for x := b.Min.X; x < b.Max.X; x++ {
		n := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			c := rgb(img, x, y)
			near := true
			for i := range c {
				if d := int(c[i]) - int(want[i]); d < -12 || d > 12 {
					near = false
				}
			}
			if near {
				n++
			}
		}
		count += n
		if n > 0 {
			columns++
		}
	}
	return count, columns
}
