package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relcheck/relcheck/migrations"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC) // a Friday of 2026-W47

func report(id, running string, counters ...Counter) *Report {
	return &Report{Format: Format, ID: fmt.Sprintf("%032x", id), Program: "textkit", Channel: "stable", Week: "2026-W47", OS: "linux", Arch: "amd64", Running: running, Counters: counters}
}

// stores returns a SQLite store and, when PostgreSQL is installed, a
// PostgreSQL one: the conformance suite runs against both.
func stores(t *testing.T) map[string]*Store {
	t.Helper()
	ctx := context.Background()
	out := map[string]*Store{}
	s, err := OpenStore(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	out["sqlite"] = s
	if _, err := migrations.FindPostgresBin(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("in CI PostgreSQL must be installed: %v", err)
		}
		t.Logf("PostgreSQL not installed: the store suite runs on SQLite only (%v)", err)
		return out
	}
	pg := postgres(t)
	ps, err := OpenStore(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	out["postgres"] = ps
	return out
}

var (
	pgOnce sync.Once
	pgEng  *migrations.Postgres
	pgErr  error
)

// postgres returns the URL of a fresh database on a throwaway cluster
// shared by the package's tests.
func postgres(t *testing.T) string {
	t.Helper()
	pgOnce.Do(func() { pgEng, pgErr = migrations.NewPostgres(context.Background(), "") })
	if pgErr != nil {
		t.Fatal(pgErr)
	}
	db, err := pgEng.NewDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return db.(interface{ URL() string }).URL()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pgEng != nil {
		pgEng.Close()
	}
	os.Exit(code)
}

func TestStoreContract(t *testing.T) {
	ctx := context.Background()
	for kind, s := range stores(t) {
		t.Run(kind, func(t *testing.T) {
			var rs []*Report
			for i := 0; i < 12; i++ {
				rs = append(rs, report(fmt.Sprint(i), "v1.1.0",
					Counter{Name: "upgrade.success", Version: "v1.1.0", Value: 1},
					Counter{Name: "upgrade.hops", Version: "v1.1.0", Value: 2}))
			}
			rs = append(rs, report("back", "v1.0.0", Counter{Name: "upgrade.rolled_back.health", Version: "v1.1.0", Value: 1}))
			added, err := s.Add(ctx, rs, now)
			if err != nil {
				t.Fatal(err)
			}
			for i, a := range added {
				if !a {
					t.Errorf("report %d not added", i)
				}
			}
			// Duplicates change nothing, also inside one batch.
			again, err := s.Add(ctx, []*Report{rs[0], report("new", "v1.1.0"), report("new", "v1.1.0")}, now)
			if err != nil || again[0] || !again[1] || again[2] {
				t.Errorf("duplicates: %v, %v", again, err)
			}
			if n, _ := s.Count(ctx); n != 14 {
				t.Errorf("count = %d, want 14", n)
			}
			if ok, _ := s.Has(ctx, rs[3].ID); !ok {
				t.Error("Has: a stored report is missing")
			}
			cells, err := s.Summary(ctx, Query{Program: "textkit", MinInstalls: 10})
			if err != nil {
				t.Fatal(err)
			}
			var v11, v10 *Cell
			for i := range cells {
				switch cells[i].Version {
				case "v1.1.0":
					v11 = &cells[i]
				case "v1.0.0":
					v10 = &cells[i]
				}
			}
			if v11 == nil || v11.Reports != 14 || v11.Installs != 13 || v11.Counters["upgrade.success"] != 12 || v11.Counters["upgrade.hops"] != 24 || v11.Counters["upgrade.rolled_back.health"] != 1 {
				t.Errorf("v1.1.0 cell: %+v", v11)
			}
			if v10 == nil || !v10.Suppressed || v10.Installs != 0 || v10.Counters != nil {
				t.Errorf("v1.0.0 cell (one report) is not suppressed: %+v", v10)
			}
			f := FiguresFor(cells, "v1.1.0")
			if f.Installs != 13 || f.Upgrades != 13 || f.RolledBack != 1 {
				t.Errorf("figures %+v", f)
			}
			if cells, _ := s.Summary(ctx, Query{Program: "other"}); len(cells) != 0 {
				t.Errorf("another program: %v", cells)
			}
		})
	}
}

func post(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url+"/v1/reports", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	var e struct{ Error string }
	if json.Unmarshal(msg, &e) == nil && e.Error != "" {
		return resp.StatusCode, e.Error
	}
	return resp.StatusCode, string(msg)
}

func newTestServer(t *testing.T, s *Store, o ServerOptions) (*Server, string) {
	o.Now = func() time.Time { return now }
	srv := NewServer(s, o)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return srv, hs.URL
}

// TestCollectorBadInput: each bad report is a 4xx with a clear message,
// nothing is stored, and the collector keeps serving.
func TestCollectorBadInput(t *testing.T) {
	s := stores(t)["sqlite"]
	_, url := newTestServer(t, s, ServerOptions{})
	good, _ := json.Marshal(report("good", "v1.0.0", Counter{Name: "upgrade.success", Version: "v1.0.0", Value: 1}))
	if code, msg := post(t, url, good); code != http.StatusAccepted {
		t.Fatalf("a good report: %d %s", code, msg)
	}
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	cases := []struct {
		name string
		body []byte
		code int
		msg  string
	}{
		{"malformed JSON", []byte(`{"format": 1, "id": `), 400, "malformed report"},
		{"oversized", bytes.Repeat([]byte(" "), MaxReportBytes+1), 413, "at most 65536 bytes"},
		{"unknown counter", mutate(func(m map[string]any) {
			m["id"] = fmt.Sprintf("%032x", "u")
			m["counters"] = []any{map[string]any{"name": "cpu.model", "version": "v1.0.0", "value": 1}}
		}), 400, `unknown counter "cpu.model"`},
		{"wrong type", mutate(func(m map[string]any) { m["id"] = fmt.Sprintf("%032x", "w"); m["format"] = "one" }), 400, "cannot unmarshal string"},
		{"unknown field", mutate(func(m map[string]any) { m["id"] = fmt.Sprintf("%032x", "f"); m["hostname"] = "db1" }), 400, `unknown field "hostname"`},
		{"replayed id", good, 409, "was already received"},
		{"future week", mutate(func(m map[string]any) { m["id"] = fmt.Sprintf("%032x", "x"); m["week"] = "2026-W49" }), 400, "is in the future"},
		{"negative value", mutate(func(m map[string]any) {
			m["id"] = fmt.Sprintf("%032x", "n")
			m["counters"] = []any{map[string]any{"name": "upgrade.success", "version": "v1.0.0", "value": -5}}
		}), 400, "is not between 1 and 100"},
		{"too large a value", mutate(func(m map[string]any) {
			m["id"] = fmt.Sprintf("%032x", "v")
			m["counters"] = []any{map[string]any{"name": "upgrade.success", "version": "v1.0.0", "value": 100000}}
		}), 400, "is not between 1 and 100"},
		{"trailing data", append(append([]byte{}, good[:len(good)-1]...), []byte(`}]]]`)...), 400, "data after the JSON object"},
	}
	for _, c := range cases {
		code, msg := post(t, url, c.body)
		if code != c.code || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %d %s, want %d %q", c.name, code, msg, c.code, c.msg)
		}
	}
	if n, _ := s.Count(context.Background()); n != 1 {
		t.Errorf("%d reports stored, want only the good one", n)
	}
	other, _ := json.Marshal(report("other", "v1.0.0"))
	if code, msg := post(t, url, other); code != http.StatusAccepted {
		t.Errorf("after the bad input: %d %s", code, msg)
	}
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`relcheck_collector_reports_total{result="stored"} 2`, `relcheck_collector_reports_total{result="invalid"} 8`, `relcheck_collector_reports_total{result="too_large"} 1`, `relcheck_collector_reports_total{result="duplicate"} 1`, "relcheck_collector_stored_reports 2"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
}

func TestCollectorRateLimit(t *testing.T) {
	s := stores(t)["sqlite"]
	_, url := newTestServer(t, s, ServerOptions{RateLimit: 3})
	codes := []int{}
	for i := 0; i < 5; i++ {
		b, _ := json.Marshal(report(fmt.Sprint("r", i), "v1.0.0"))
		code, _ := post(t, url, b)
		codes = append(codes, code)
	}
	if fmt.Sprint(codes) != "[202 202 202 429 429]" {
		t.Errorf("codes %v", codes)
	}
}

func TestSummaryAndDashboard(t *testing.T) {
	s := stores(t)["sqlite"]
	ctx := context.Background()
	var rs []*Report
	for i := 0; i < 30; i++ {
		r := report(fmt.Sprint("d", i), "v1.1.0", Counter{Name: "upgrade.success", Version: "v1.1.0", Value: 1})
		if i%10 == 0 {
			r.Running = "v1.0.0"
			r.Counters = []Counter{{Name: "upgrade.rolled_back.health", Version: "v1.1.0", Value: 1}}
		}
		rs = append(rs, r)
	}
	s.Add(ctx, rs, now)
	_, url := newTestServer(t, s, ServerOptions{MinInstalls: 5, Epsilon: -1}) // exact figures
	sum, err := FetchSummary(ctx, nil, url, "textkit", "")
	if err != nil {
		t.Fatal(err)
	}
	if sum.MinInstalls != 5 || len(sum.Cells) != 1 || sum.Withheld != 1 {
		t.Fatalf("summary %+v", sum)
	}
	f := FiguresFor(sum.Cells, "v1.1.0")
	if f.Installs != 27 || f.Upgrades != 30 || f.RolledBack != 3 {
		t.Errorf("figures %+v", f)
	}
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`<svg class="chart" id="installs-textkit-stable"`, `<polyline class="series"`, `<rect class="bar rollback"`, "v1.1.0: 10.0% of 30 upgrades (95% CI",
		// Values on the chart, withheld cells named, the page's width.
		`<text class="value"`, ">10.0%</text>", ">90.0%</text>", ">27</text>",
		"Withheld for too few reports (1): textkit on stable, v1.0.0 in ", "width: 100%"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if strings.Contains(string(page), "<script") || strings.Contains(string(page), "http://") || strings.Contains(string(page), "https://") {
		t.Error("the dashboard loads scripts or remote resources")
	}
}

func TestRequire(t *testing.T) {
	reqs, err := ParseRequire("installs>=20, rollback_rate<1%,soak>=72h")
	if err != nil || len(reqs) != 3 || reqs[1].Value != 0.01 || reqs[2].Soak != 72*time.Hour {
		t.Fatalf("%+v %v", reqs, err)
	}
	for _, bad := range []string{"installs<20", "rollback_rate<1", "soak>=soon", "speed>1", "installs"} {
		if _, err := ParseRequire(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	cases := []struct {
		f    Figures
		soak time.Duration
		want Result
	}{
		{Figures{Installs: 500, Upgrades: 1000, RolledBack: 2}, 80 * time.Hour, "pass"},
		{Figures{Installs: 500, Upgrades: 1000, RolledBack: 2}, 10 * time.Hour, "fail"},
		{Figures{Installs: 500, Upgrades: 1000, RolledBack: 40}, 80 * time.Hour, "fail"},
		{Figures{Installs: 25, Upgrades: 25, RolledBack: 0}, 80 * time.Hour, "inconclusive"}, // 0 of 25: upper bound 13%
		{Figures{Installs: 5, Upgrades: 0}, 80 * time.Hour, "inconclusive"},
		{Figures{Withheld: 2, MinInstalls: 10}, 80 * time.Hour, "inconclusive"},
	}
	for _, c := range cases {
		v := Evaluate(reqs, c.f, c.soak)
		if v.Result != c.want {
			t.Errorf("%+v soak %s: %s, want %s\n%s", c.f, c.soak, v.Result, c.want, strings.Join(v.Lines, "\n"))
		}
	}
	// Successful upgrades: what an operator's canaries have shown.
	ups, _ := ParseRequire("upgrades>=2")
	if v := Evaluate(ups, Figures{Upgrades: 3, RolledBack: 1}, 0); v.Result != Pass {
		t.Errorf("2 successful upgrades of 3: %v %q", v.Result, v.Lines)
	}
	if v := Evaluate(ups, Figures{Upgrades: 2, RolledBack: 1}, 0); v.Result != Inconclusive || !strings.Contains(v.Lines[0], "1 successful upgrades so far") {
		t.Errorf("1 successful upgrade: %v %q", v.Result, v.Lines)
	}
	if _, err := ParseRequire("upgrades<2"); err == nil {
		t.Error("upgrades<2 accepted")
	}
	// Only the upgrades that passed a metric analysis count for analyzed.
	an, _ := ParseRequire("analyzed>=1")
	if v := Evaluate(an, Figures{Upgrades: 3}, 0); v.Result != Inconclusive || !strings.Contains(v.Lines[0], "0 upgrades that passed a metric analysis so far") {
		t.Errorf("successful upgrades without analysis: %v %q", v.Result, v.Lines)
	}
	if v := Evaluate(an, Figures{Upgrades: 3, Analyzed: 1}, 0); v.Result != Pass {
		t.Errorf("one analyzed upgrade: %v %q", v.Result, v.Lines)
	}
	// A count below k is withheld, not zero: the verdict says so.
	v := Evaluate(reqs[:1], Figures{Withheld: 2, MinInstalls: 10}, 0)
	if len(v.Lines) != 1 || !strings.Contains(v.Lines[0], "fewer than 10 installs in each of 2 week(s) so far: the collector withholds counts below 10") {
		t.Errorf("withheld installs: %q", v.Lines)
	}
	lo, hi := Wilson(0, 25)
	if lo != 0 || hi < 0.13 || hi > 0.14 {
		t.Errorf("Wilson(0, 25) = %v, %v", lo, hi)
	}
}

// TestClientModes: nothing is recorded in mode off, nothing is ever sent in
// off or local (the collector fails the test on any request), and mode on
// sends exactly what view shows.
func TestClientModes(t *testing.T) {
	var mu sync.Mutex
	var got []Report
	allow := false
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !allow {
			t.Errorf("a request in a mode that sends nothing: %s %s", r.Method, r.URL)
		}
		var rep Report
		json.NewDecoder(r.Body).Decode(&rep)
		got = append(got, rep)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer hs.Close()
	dir := t.TempDir()
	c := &Client{ConfigDir: filepath.Join(dir, "config"), StateDir: filepath.Join(dir, "state"), Getenv: func(string) string { return "" }, Now: func() time.Time { return now }}
	ev := Event{Program: "textkit", Channel: "stable", Running: "v1.1.0", Action: "upgrade", From: "v1.0.0", To: "v1.1.0", Result: "success", Duration: 3 * time.Second, Hops: 1}
	ctx := context.Background()

	// Off (the default): nothing recorded, nothing sent.
	if err := c.Record(ev); err != nil {
		t.Fatal(err)
	}
	if rs, _, _ := c.Pending(); len(rs) != 0 {
		t.Errorf("mode off recorded %v", rs)
	}
	if _, err := c.Upload(ctx, hs.URL, true); err == nil {
		t.Error("upload in mode off")
	}
	// Local: recorded, never sent.
	c.SetMode(Local, hs.URL)
	c.Record(ev)
	c.Record(Event{Program: "textkit", Channel: "stable", Running: "v1.1.0", Action: "upgrade", From: "v1.1.0", To: "v1.2.0", Result: "rolled_back", ReasonClass: "health", Duration: 2 * time.Minute, Hops: 1})
	if _, err := c.Upload(ctx, hs.URL, true); err == nil || !strings.Contains(err.Error(), "mode local") {
		t.Errorf("upload in mode local: %v", err)
	}
	rs, _, _ := c.Pending()
	if len(rs) != 1 || len(rs[0].Counters) != 6 || rs[0].Validate(now) != nil {
		t.Fatalf("local records: %+v", rs)
	}
	// DO_NOT_TRACK wins over on.
	c.SetMode(On, "")
	c.Getenv = func(k string) string {
		if k == "DO_NOT_TRACK" {
			return "1"
		}
		return ""
	}
	if m, why, _ := c.Effective(); m != Off || why == "" {
		t.Errorf("DO_NOT_TRACK: %s %s", m, why)
	}
	if _, err := c.Upload(ctx, hs.URL, true); err == nil {
		t.Error("upload with DO_NOT_TRACK")
	}
	c.Getenv = func(string) string { return "" }
	// A consent to an older format stays local.
	raw, _ := os.ReadFile(c.consentPath())
	os.WriteFile(c.consentPath(), bytes.Replace(raw, []byte(`"format": 1`), []byte(`"format": 0`), 1), 0o644)
	if m, why, _ := c.Effective(); m != Local || !strings.Contains(why, "asks again") {
		t.Errorf("older consent: %s %s", m, why)
	}
	// On: the past week is due; an explicit upload sends this week's too.
	c.SetMode(On, "")
	if c.Due() {
		t.Error("this week's report is due already")
	}
	mu.Lock()
	allow = true
	mu.Unlock()
	n, err := c.Upload(ctx, hs.URL, true)
	if err != nil || n != 1 {
		t.Fatalf("upload: %d %v", n, err)
	}
	if len(got) != 1 || got[0].ID != rs[0].ID || len(got[0].Counters) != 6 {
		t.Errorf("sent %+v, view showed %+v", got, rs)
	}
	if sent, _, _ := c.Sent(); len(sent) != 1 {
		t.Errorf("history %v", sent)
	}
	// Later events of the week go into a new report with a new id.
	c.Record(ev)
	if rs2, _, _ := c.Pending(); len(rs2) != 1 || rs2[0].ID == rs[0].ID {
		t.Errorf("after sending: %+v", rs2)
	}
}

// TestUploadRetries: a collector that fails twice gets the report on the
// third attempt; one that refuses it (4xx) is not retried.
func TestUploadRetries(t *testing.T) {
	var calls int
	fail := 2
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls <= fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer hs.Close()
	dir := t.TempDir()
	c := &Client{ConfigDir: dir, StateDir: dir, Getenv: func(string) string { return "" }, Now: func() time.Time { return now }, Backoff: time.Millisecond}
	c.SetMode(On, hs.URL)
	c.Record(Event{Program: "p", Channel: "edge", Running: "v1.0.0", Action: "install", To: "v1.0.0", Result: "success"})
	if n, err := c.Upload(context.Background(), hs.URL, true); err != nil || n != 1 || calls != 3 {
		t.Errorf("sent %d after %d calls: %v", n, calls, err)
	}
}

func TestWeeks(t *testing.T) {
	for _, c := range []struct{ week, start string }{{"2026-W47", "2026-11-16"}, {"2026-W01", "2025-12-29"}, {"2020-W53", "2020-12-28"}} {
		s, err := WeekStart(c.week)
		if err != nil || s.Format(time.DateOnly) != c.start || Week(s) != c.week {
			t.Errorf("%s: %s %v", c.week, s, err)
		}
	}
	if _, err := WeekStart("2025-W53"); err == nil {
		t.Error("2025 has no week 53")
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := json.Marshal(report("fuzz", "v1.0.0", Counter{Name: "upgrade.success", Version: "v1.0.0", Value: 1}))
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":1,"counters":[{"name":"upgrade.hops","version":"v1.0.0-rc.1","value":3}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := Decode(raw, now)
		if err != nil {
			return
		}
		// What the collector accepts, it accepts again after a round trip.
		out, _ := json.Marshal(r)
		if _, err := Decode(out, now); err != nil {
			t.Fatalf("round trip: %v\n%s", err, out)
		}
	})
}

// TestClientEdges: an unknown mode records nothing; a week continued
// after its report was sent does not count the install again; a report
// the collector refuses for good is set aside and does not block the
// others.
func TestClientEdges(t *testing.T) {
	dir := t.TempDir()
	c := &Client{ConfigDir: filepath.Join(dir, "config"), StateDir: filepath.Join(dir, "state"), Getenv: func(string) string { return "" }, Now: func() time.Time { return now }, Backoff: time.Millisecond}
	os.MkdirAll(c.ConfigDir, 0o755)
	os.WriteFile(c.consentPath(), []byte(`{"mode":"OFF"}`), 0o644)
	c.Running("p", "stable", "v1.0.0")
	if rs, _, _ := c.Pending(); len(rs) != 0 {
		t.Errorf("mode \"OFF\" recorded %v", rs)
	}
	os.WriteFile(c.consentPath(), []byte(`{not json`), 0o644)
	if _, err := c.SetMode(Off, ""); err != nil {
		t.Errorf("off over an unreadable consent: %v", err)
	}

	var bodies []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		if strings.Contains(string(b), `"2026-W46"`) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer hs.Close()
	c.SetMode(On, hs.URL)
	// Last week's report, which this collector refuses.
	c.Now = func() time.Time { return now.Add(-7 * 24 * time.Hour) }
	c.Running("p", "stable", "v1.0.0")
	c.Now = func() time.Time { return now }
	c.Running("p", "stable", "v1.0.0")
	n, err := c.Upload(context.Background(), hs.URL, true)
	if err != nil || n != 1 {
		t.Fatalf("upload: %d, %v", n, err)
	}
	if refused, _, _ := c.list(c.refusedDir()); len(refused) != 1 || refused[0].Week != "2026-W46" {
		t.Errorf("refused: %+v", refused)
	}
	// Continued this week: counters yes, the install no.
	c.Running("p", "stable", "v1.0.0")
	c.Record(Event{Program: "p", Channel: "stable", Running: "v1.1.0", Action: "upgrade", From: "v1.0.0", To: "v1.1.0", Result: "success", Hops: 1})
	rs, _, _ := c.Pending()
	if len(rs) != 1 || rs[0].Running != "" || len(rs[0].Counters) == 0 {
		t.Errorf("continued week: %+v", rs)
	}
}

// TestForgedReportsCannotPassAGate: 420 fake upgrade.success reports sent
// from one network (as from 7 loopback addresses) once made promote's
// gate pass for a release that never ran. Each network has its reports
// counted up to a daily quota, so the fakes stop counting, and the gate's
// message says how many networks its figures rest on.
func TestForgedReportsCannotPassAGate(t *testing.T) {
	s := stores(t)["sqlite"]
	_, url := newTestServer(t, s, ServerOptions{MinInstalls: 10})
	accepted, refused := 0, 0
	for i := range 420 {
		r := report(fmt.Sprintf("fake%d", i), "v1.1.0", Counter{Name: "upgrade.success", Version: "v1.1.0", Value: 1})
		body, _ := json.Marshal(r)
		switch code, msg := post(t, url, body); code {
		case http.StatusAccepted:
			accepted++
		case http.StatusTooManyRequests:
			refused++
			if !strings.Contains(msg, "this network's reports for today are counted") {
				t.Fatalf("refusal: %s", msg)
			}
		default:
			t.Fatalf("report %d: %d %s", i, code, msg)
		}
	}
	if accepted != DefaultPerNetworkDay || refused != 420-DefaultPerNetworkDay {
		t.Fatalf("accepted %d, refused %d: want the network's quota of %d counted", accepted, refused, DefaultPerNetworkDay)
	}
	gate, err := NewGate("installs>=20,rollback_rate<1%", url)
	if err != nil {
		t.Fatal(err)
	}
	v, err := gate.Judge(context.Background(), "textkit", "v1.1.0", 0)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result == Pass {
		t.Fatalf("forged reports passed the gate: %+v", v)
	}
	if last := v.Lines[len(v.Lines)-1]; !regexp.MustCompile(`rest on reports from about \d+ source network\(s\)`).MatchString(last) {
		t.Errorf("the verdict does not say what it rests on: %q", v.Lines)
	}
}

// TestCollectorStrictness: a key given twice, a body that is not sent as
// JSON (a cross-site form post) are refused; reports past the retention
// are deleted while their figures stay; a program whose cells are all
// withheld is not named on the dashboard.
func TestCollectorStrictness(t *testing.T) {
	s := stores(t)["sqlite"]
	_, url := newTestServer(t, s, ServerOptions{MinInstalls: 2})
	good, _ := json.Marshal(report("strict", "v1.0.0", Counter{Name: "upgrade.success", Version: "v1.0.0", Value: 1}))
	dup := bytes.Replace(good, []byte(`"os":"linux"`), []byte(`"os":"linux","os":"plan9"`), 1)
	if code, msg := post(t, url, dup); code != http.StatusBadRequest || !strings.Contains(msg, `key "os" given twice`) {
		t.Errorf("a key given twice: %d %s", code, msg)
	}
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
		resp, err := http.Post(url+"/v1/reports", ct, bytes.NewReader(good))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %q: %d, want 415", ct, resp.StatusCode)
		}
	}
	if code, msg := post(t, url, good); code != http.StatusAccepted {
		t.Fatalf("the good report: %d %s", code, msg)
	}

	// One report of another program: its only cell is withheld (k = 2),
	// and the dashboard does not name it.
	lone := report("lone", "v1.0.0")
	lone.Program = "secretapp"
	body, _ := json.Marshal(lone)
	if code, msg := post(t, url, body); code != http.StatusAccepted {
		t.Fatalf("%d %s", code, msg)
	}
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(page), "secretapp") {
		t.Error("the dashboard names a program whose every cell is withheld")
	}

	// Past the retention the rows go, the aggregates stay.
	before, _ := s.Summary(context.Background(), Query{Program: "textkit"})
	if n, err := s.Prune(context.Background(), now.Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("pruned %d, %v; want the 2 reports", n, err)
	}
	after, _ := s.Summary(context.Background(), Query{Program: "textkit"})
	if fmt.Sprint(before) != fmt.Sprint(after) || len(after) == 0 {
		t.Errorf("the aggregates changed with the pruning: %v, then %v", before, after)
	}
	if n, _ := s.Count(context.Background()); n != 0 {
		t.Errorf("%d reports left", n)
	}
}

// TestNoise: published figures carry Laplace noise of the stated scale
// (statistics on synthetic figures), the same answer for the same value
// (asking again averages nothing away), and an attacker who pushes a cell
// past k with reports of their own reads one noisy draw of a real
// install's counter, however often they add and read.
func TestNoise(t *testing.T) {
	n := newNoiser(1)
	if n.figure("cell\x00installs", 40, 1) != n.figure("cell\x00installs", 40, 1) {
		t.Fatal("the same state gave two answers")
	}
	// Synthetic: 4000 figures of true value 100 (scale 1).
	var sum, dev float64
	const k = 4000
	for i := range k {
		x := float64(n.figure(fmt.Sprintf("c%d", i), 100, 1))
		sum += x
		dev += math.Abs(x - 100)
	}
	if mean := sum / k; math.Abs(mean-100) > 0.15 {
		t.Errorf("mean %.3f, want about 100 (unbiased)", mean)
	}
	if mad := dev / k; mad < 0.8 || mad > 1.3 {
		t.Errorf("mean absolute deviation %.3f, want about 1 (Laplace scale 1, rounded)", mad)
	}
	if newNoiser(-1) != nil || newNoiser(-1).cells([]Cell{{Installs: 3}})[0].Installs != 3 {
		t.Error("a negative epsilon must leave the figures exact")
	}

	// The unmasking attack: one real install reported a rollback; nine
	// reports of the attacker's (no counters) push the cell past k = 10.
	s := stores(t)["sqlite"]
	_, url := newTestServer(t, s, ServerOptions{MinInstalls: 10})
	real := report("real", "v2.0.0", Counter{Name: "upgrade.rolled_back.health", Version: "v2.0.0", Value: 1})
	body, _ := json.Marshal(real)
	post(t, url, body)
	seen := map[int64]bool{}
	for i := range 9 {
		body, _ := json.Marshal(report(fmt.Sprintf("probe%d", i), "v2.0.0"))
		post(t, url, body)
	}
	for i := range 20 { // the attacker keeps adding reports and reading
		if i > 0 {
			body, _ := json.Marshal(report(fmt.Sprintf("more%d", i), "v2.0.0"))
			post(t, url, body)
		}
		sum, err := FetchSummary(context.Background(), nil, url, "textkit", "v2.0.0")
		if err != nil {
			t.Fatal(err)
		}
		if sum.Noise == nil || sum.Noise.Epsilon != DefaultEpsilon || len(sum.Cells) != 1 {
			t.Fatalf("summary %+v", sum)
		}
		seen[sum.Cells[0].Counters["upgrade.rolled_back.health"]] = true
	}
	// The true count never changes (1), so the attacker's reports never
	// buy a second draw of its noise: every reading is the same noisy
	// value, which cannot be averaged towards the truth.
	if len(seen) != 1 {
		t.Errorf("the rollback count read %v over 20 readings: its noise was drawn again", seen)
	}
}
