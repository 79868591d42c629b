package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// sampleReport is a run with everything a renderer has to show: a failing api
// check with an error (location, fix, symbol), a warning (file, no line), a
// note without a location, a suppressed finding, notes and metrics; a skipped
// check; an errored check; and a version decision.
func sampleReport() *Report {
	api := &Check{
		Name:       "api",
		Summary:    "1 incompatible change",
		DurationMs: 812,
		Findings: []Finding{
			{
				Rule:       "api/incompatible",
				Severity:   SeverityError,
				Message:    "func Old: signature changed from func(string) to func(string, ...Option)",
				Symbol:     "example.com/lib.Old",
				Location:   &Location{File: "old.go", Line: 40},
				Fix:        "keep Old and add OldWithOptions",
				Suppressed: "kept for v1 users until v1.6.0",
			},
			{
				Rule:     "api/report-mismatch",
				Severity: SeverityWarning,
				Message:  "new exported func Format is not declared in the API report file",
				Symbol:   "example.com/lib.Format",
				Location: &Location{File: "api/relcheck.txt"},
				Fix:      "run `relcheck api update` and commit api/relcheck.txt",
			},
			{
				Rule:     "api/incompatible",
				Severity: SeverityNote,
				Message:  "experimental package changed incompatibly: field Options.Mode is now *Mode, was int",
				Symbol:   "example.com/lib/x.Options",
			},
			{
				Rule:     "api/removed-without-deprecation",
				Severity: SeverityError,
				Message:  "func Parse removed; it was never marked Deprecated",
				Symbol:   "example.com/lib.Parse",
				Location: &Location{File: "parse.go", Line: 12},
				Fix:      "restore Parse and mark it // Deprecated: first",
			},
		},
		Notes: []string{
			"compared example.com/lib at v1.4.0 with 3f2c1e9",
			"API report file api/relcheck.txt: 214 features | 1 undeclared",
		},
		Metrics: map[string]any{"exportedIdentifiers": 214, "packages": 3},
	}
	api.Settle()
	migrations := &Check{
		Name:    "migrations",
		Status:  StatusSkip,
		Summary: "no migrations directory (migrations/)",
	}
	perf := &Check{
		Name:       "perf",
		Status:     StatusError,
		Summary:    "benchmarks did not build at base: exit status 1",
		DurationMs: 15342,
		Notes:      []string{"go test -run=^$ -bench=. ./...: undefined: lib.Parse"},
	}
	r := &Report{
		Repo: ".",
		Base: "v1.4.0",
		Head: "3f2c1e9",
		Version: &Version{
			Base:    "v1.4.0",
			Bump:    "minor",
			Next:    "v1.5.0",
			Reasons: []string{"new exported func example.com/lib.Format"},
		},
		Checks: []*Check{api, migrations, perf},
	}
	r.Settle()
	return r
}

// cleanReport is a run where the only check passed with no findings (nil,
// as a gate that found nothing leaves it).
func cleanReport() *Report {
	r := &Report{
		Repo: "./svc", Module: "example.com/svc",
		Base: "v0.9.2",
		Head: "a1b2c3d",
		Version: &Version{
			Base: "v0.9.2",
			Bump: "patch",
			Next: "v0.9.3",
		},
		Checks: []*Check{{Name: "api", Summary: "no API changes", DurationMs: 1210}},
	}
	r.Checks[0].Settle()
	r.Settle()
	return r
}

func TestRenderGolden(t *testing.T) {
	reports := map[string]func() *Report{"sample": sampleReport, "clean": cleanReport}
	outputs := []struct {
		suffix string
		format Format
		opts   Options
	}{
		{".txt", FormatText, Options{}},
		{".color.txt", FormatText, Options{Color: true}},
		{".json", FormatJSON, Options{}},
		{".github", FormatGitHub, Options{}},
		{".md", FormatMarkdown, Options{}},
		{".sarif", FormatSARIF, Options{ToolVersion: "v0.3.0"}},
	}
	for name, report := range reports {
		for _, o := range outputs {
			file := name + o.suffix
			t.Run(file, func(t *testing.T) {
				var buf bytes.Buffer
				if err := Render(&buf, report(), o.format, o.opts); err != nil {
					t.Fatalf("Render(%s): %v", o.format, err)
				}
				checkGolden(t, filepath.Join("testdata", "golden", file), buf.Bytes())
			})
		}
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d (run go test -update if intended):\ngot:  %q\nwant: %q", path, i+1, g, w)
			}
		}
	}
}

func TestRenderDoesNotModifyReport(t *testing.T) {
	for _, f := range Formats() {
		r := cleanReport()
		r.SchemaVersion = 0
		want := cleanReport()
		want.SchemaVersion = 0
		if err := Render(&bytes.Buffer{}, r, f, Options{Color: true}); err != nil {
			t.Fatalf("Render(%s): %v", f, err)
		}
		if !reflect.DeepEqual(r, want) {
			t.Errorf("Render(%s) modified the report", f)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	var first bytes.Buffer
	if err := Render(&first, sampleReport(), FormatJSON, Options{}); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(first.Bytes(), &back); err != nil {
		t.Fatalf("JSON report does not parse into Report: %v", err)
	}
	if back.SchemaVersion != SchemaVersion || back.Status != StatusError || len(back.Checks) != 3 {
		t.Errorf("round trip lost data: schemaVersion %d, status %q, %d checks", back.SchemaVersion, back.Status, len(back.Checks))
	}
	if got := back.Checks[0].Findings[1]; got.Location == nil || got.Location.Line != 12 || got.Fix == "" || got.Symbol == "" {
		t.Errorf("first finding after round trip = %+v", got)
	}
	var second bytes.Buffer
	if err := Render(&second, &back, FormatJSON, Options{}); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Errorf("JSON → Report → JSON is not stable:\n%s\n----\n%s", first.String(), second.String())
	}
}

func TestJSONEmptyFindingsAreArrays(t *testing.T) {
	var buf bytes.Buffer
	if err := Render(&buf, cleanReport(), FormatJSON, Options{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"findings": []`) || strings.Contains(buf.String(), "null") {
		t.Errorf("want findings as [] and no null:\n%s", buf.String())
	}
	if !strings.HasSuffix(buf.String(), "}\n") {
		t.Errorf("want a trailing newline")
	}
}

func TestSARIFRequiredFields(t *testing.T) {
	var buf bytes.Buffer
	if err := Render(&buf, sampleReport(), FormatSARIF, Options{ToolVersion: "v0.3.0"}); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Schema  string `json:"$schema"`
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name    string `json:"name"`
					Version string `json:"version"`
					Rules   []struct {
						ID                   string `json:"id"`
						DefaultConfiguration struct {
							Level string `json:"level"`
						} `json:"defaultConfiguration"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    *string `json:"ruleId"`
				RuleIndex *int    `json:"ruleIndex"`
				Level     string  `json:"level"`
				Message   struct {
					Text string `json:"text"`
				} `json:"message"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI       string `json:"uri"`
							URIBaseID string `json:"uriBaseId"`
						} `json:"artifactLocation"`
						Region struct {
							StartLine int `json:"startLine"`
						} `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
				PartialFingerprints map[string]string `json:"partialFingerprints"`
				Suppressions        []struct {
					Kind          string `json:"kind"`
					Justification string `json:"justification"`
				} `json:"suppressions"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatalf("SARIF output is not JSON: %v", err)
	}
	if log.Version != "2.1.0" || log.Schema != "https://json.schemastore.org/sarif-2.1.0.json" {
		t.Errorf("version %q, $schema %q", log.Version, log.Schema)
	}
	if len(log.Runs) != 1 {
		t.Fatalf("want 1 run, got %d", len(log.Runs))
	}
	run := log.Runs[0]
	if run.Tool.Driver.Name != "relcheck" || run.Tool.Driver.Version != "v0.3.0" {
		t.Errorf("driver name %q, version %q", run.Tool.Driver.Name, run.Tool.Driver.Version)
	}
	seen := map[string]bool{}
	for _, rule := range run.Tool.Driver.Rules {
		if seen[rule.ID] {
			t.Errorf("rule %s listed twice", rule.ID)
		}
		seen[rule.ID] = true
	}
	if len(run.Results) != 4 {
		t.Fatalf("want 4 results (one per finding, suppressed included), got %d", len(run.Results))
	}
	levels := map[string]bool{"error": true, "warning": true, "note": true}
	suppressed := 0
	for i, res := range run.Results {
		if res.RuleID == nil || *res.RuleID == "" {
			t.Errorf("result %d has no ruleId", i)
			continue
		}
		if res.RuleIndex == nil || *res.RuleIndex < 0 || *res.RuleIndex >= len(run.Tool.Driver.Rules) ||
			run.Tool.Driver.Rules[*res.RuleIndex].ID != *res.RuleID {
			t.Errorf("result %d (%s): ruleIndex %v does not point at its rule", i, *res.RuleID, res.RuleIndex)
		}
		if !levels[res.Level] {
			t.Errorf("result %d: level %q", i, res.Level)
		}
		if res.Message.Text == "" {
			t.Errorf("result %d: empty message.text", i)
		}
		// GitHub code scanning rejects the whole upload for one result
		// without a physical location, and needs startLine >= 1.
		if len(res.Locations) != 1 {
			t.Errorf("result %d: %d locations, want 1", i, len(res.Locations))
		} else if loc := res.Locations[0].PhysicalLocation; loc.ArtifactLocation.URI == "" || loc.Region.StartLine < 1 || loc.ArtifactLocation.URIBaseID != "%SRCROOT%" {
			t.Errorf("result %d: location %+v", i, loc)
		}
		if res.PartialFingerprints["relcheck/v1"] == "" {
			t.Errorf("result %d: no partial fingerprint", i)
		}
		for _, s := range res.Suppressions {
			suppressed++
			if s.Kind != "external" || s.Justification == "" {
				t.Errorf("result %d: suppression %+v", i, s)
			}
		}
	}
	if suppressed != 1 {
		t.Errorf("want 1 suppressed result, got %d", suppressed)
	}
}

func TestSARIFFingerprintIgnoresLineAndMessage(t *testing.T) {
	render := func(line int, msg string) string {
		r := &Report{Checks: []*Check{{Name: "api", Findings: []Finding{{
			Rule: "api/incompatible", Severity: SeverityError, Message: msg,
			Symbol: "example.com/lib.T", Location: &Location{File: "t.go", Line: line},
		}}}}}
		var buf bytes.Buffer
		if err := Render(&buf, r, FormatSARIF, Options{}); err != nil {
			t.Fatal(err)
		}
		var log struct {
			Runs []struct {
				Results []struct {
					PartialFingerprints map[string]string `json:"partialFingerprints"`
				} `json:"results"`
			} `json:"runs"`
		}
		if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
			t.Fatal(err)
		}
		return log.Runs[0].Results[0].PartialFingerprints["relcheck/v1"]
	}
	a, b := render(10, "type T changed"), render(25, "type T changed: field X removed")
	if a == "" || a != b {
		t.Errorf("fingerprint changed with line or message: %q vs %q", a, b)
	}
}

func TestGitHubEscaping(t *testing.T) {
	for _, tc := range []struct{ in, data, property string }{
		{"plain", "plain", "plain"},
		{"100%", "100%25", "100%25"},
		{"a\nb\r\nc", "a%0Ab%0D%0Ac", "a%0Ab%0D%0Ac"},
		{"a:b,c", "a:b,c", "a%3Ab%2Cc"},
		{"%0A", "%250A", "%250A"},
	} {
		if got := escapeData(tc.in); got != tc.data {
			t.Errorf("escapeData(%q) = %q, want %q", tc.in, got, tc.data)
		}
		if got := escapeProperty(tc.in); got != tc.property {
			t.Errorf("escapeProperty(%q) = %q, want %q", tc.in, got, tc.property)
		}
	}

	r := &Report{Status: StatusFail, Checks: []*Check{{
		Name: "migrations", Status: StatusFail, Summary: "1 locking\nstatement",
		Findings: []Finding{
			{
				Rule: "migrations/locking", Severity: SeverityError,
				Message:  "ALTER TABLE users: 100% of reads blocked\nfor 4s",
				Location: &Location{File: "db/0004_a:b,c.up.sql", Line: 3},
				Fix:      "CREATE INDEX CONCURRENTLY, then attach",
			},
			{Rule: "perf/slo", Severity: SeverityNote, Message: "p99 50ms, SLO < 50ms"},
			{Rule: "migrations/order", Severity: SeverityWarning, Message: "hidden", Suppressed: "known"},
		},
	}}}
	var buf bytes.Buffer
	if err := Render(&buf, r, FormatGitHub, Options{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	want := []string{
		"::error file=db/0004_a%3Ab%2Cc.up.sql,line=3,title=migrations/locking::ALTER TABLE users: 100%25 of reads blocked%0Afor 4s%0Afix: CREATE INDEX CONCURRENTLY, then attach",
		"::notice title=perf/slo::p99 50ms, SLO < 50ms",
		"relcheck migrations: FAIL: 1 locking statement (1 error, 1 note, 1 suppressed)",
		"relcheck: FAIL (no base → HEAD)",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("github output:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestTextColor(t *testing.T) {
	var plain, color bytes.Buffer
	if err := Render(&plain, sampleReport(), FormatText, Options{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b") {
		t.Errorf("text without Color contains an escape sequence:\n%q", plain.String())
	}
	if err := Render(&color, sampleReport(), FormatText, Options{Color: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(color.String(), "\x1b[") {
		t.Errorf("text with Color has no ANSI colour")
	}
}

func TestMarkdownEscapesTableCells(t *testing.T) {
	r := &Report{Status: StatusWarn, Checks: []*Check{{
		Name: "api", Status: StatusWarn, Summary: "a | b",
		Findings: []Finding{{
			Rule: "api/report-mismatch", Severity: SeverityWarning,
			Message:  "method (*T).Close | (*U).Close\nchanged",
			Location: &Location{File: "a|b.go", Line: 1},
			Fix:      "run `go doc a|b` <here>",
		}},
	}}}
	var buf bytes.Buffer
	if err := Markdown(&buf, r); err != nil {
		t.Fatal(err)
	}
	columns := 0 // unescaped pipes in the current table's header row
	for _, line := range strings.Split(buf.String(), "\n") {
		if !strings.HasPrefix(line, "|") {
			columns = 0
			continue
		}
		n := strings.Count(line, "|") - strings.Count(line, `\|`)
		if columns == 0 {
			columns = n
		} else if n != columns {
			t.Errorf("table row has %d cell separators, header has %d: %s", n, columns, line)
		}
	}
	for _, want := range []string{
		`| a \| b |`,
		`| method (\*T).Close \| (\*U).Close<br>changed |`,
		"| `a\\|b.go:1` |",
		"| run `go doc a\\|b` \\<here\\> |",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("markdown lacks %s:\n%s", want, buf.String())
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats() {
		got, err := ParseFormat(string(f))
		if err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
	}
	if got, err := ParseFormat("SARIF"); err != nil || got != FormatSARIF {
		t.Errorf("ParseFormat(SARIF) = %q, %v", got, err)
	}
	_, err := ParseFormat("xml")
	if err == nil || !strings.Contains(err.Error(), "text, json, github, markdown, sarif") {
		t.Errorf("ParseFormat(xml) error = %v, want the valid formats listed", err)
	}
	if err := Render(&bytes.Buffer{}, cleanReport(), Format("xml"), Options{}); err == nil {
		t.Errorf("Render with an unknown format succeeded")
	}
}
