package check

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relcheck/relcheck/config"
)

func TestTemplateIsDefault(t *testing.T) {
	got, err := ParseConfig("relcheck.yaml", []byte(ConfigTemplate))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	got.Perf.Scenarios, want.Perf.Scenarios = nil, nil
	got.Migrations.Sizes, want.Migrations.Sizes = nil, nil
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("template parses to\n%+v\nwant defaults\n%+v", got, want)
	}
}

func TestParseValues(t *testing.T) {
	src := `
api:
  packages: [./lib/...]
  report: api/relcheck.txt
  deprecation: {minReleases: 2, minDays: 30}
  ignore:
    - {rule: api/incompatible, symbol: example.com/lib.Old, reason: "moved", until: v1.6.0}
slo:
  window: 28d
perf:
  benchmarks: {threshold: 7.5%}
`
	c, err := ParseConfig("relcheck.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.API.Report != "api/relcheck.txt" || c.API.Deprecation.MinReleases != 2 || c.API.Deprecation.MinDays != 30 {
		t.Errorf("api = %+v", c.API)
	}
	if len(c.API.Ignore) != 1 || c.API.Ignore[0].Line != 7 || c.API.Ignore[0].Until != "v1.6.0" {
		t.Errorf("ignore = %+v", c.API.Ignore)
	}
	if time.Duration(c.SLO.Window) != 28*24*time.Hour {
		t.Errorf("window = %v", c.SLO.Window)
	}
	if c.Perf.Benchmarks.Threshold != 7.5 || c.Perf.Benchmarks.Rounds != 10 || c.Perf.Benchmarks.Mode != "interleaved" {
		t.Errorf("benchmarks = %+v", c.Perf.Benchmarks)
	}
	if !reflect.DeepEqual(c.API.Packages, []string{"./lib/..."}) {
		t.Errorf("packages = %v", c.API.Packages)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		key, msg  string
	}{
		{"unknown top", "apí: {}\n", 1, "apí", `unknown key "apí" (did you mean "api"?)`},
		{"unknown nested", "api:\n  deprecation:\n    minReleses: 2\n", 3, "api.deprecation.minReleses", `did you mean "minReleases"?`},
		{"wrong type", "api:\n  deprecation:\n    minDays: soon\n", 3, "api.deprecation.minDays", `"soon" is not a valid whole number`},
		{"list expected", "api:\n  packages: ./...\n", 2, "api.packages", "expected a list"},
		{"bad duration", "slo:\n  window: 3 weeks\n", 2, "slo.window", "invalid duration"},
		{"bad percent", "perf:\n  benchmarks:\n    threshold: lots\n", 3, "perf.benchmarks.threshold", "invalid percentage"},
		{"bad dialect", "migrations:\n  dialect: mysql\n", 2, "migrations.dialect", "not supported"},
		{"objective range", "slo:\n  objective: 100\n", 2, "slo.objective", "between 0 and 100"},
		{"ignore no reason", "api:\n  ignore:\n    - rule: api/incompatible\n      symbol: x.Y\n", 3, "api.ignore[0]", "reason is required"},
		{"ignore bad until", "api:\n  ignore:\n    - {rule: api/incompatible, reason: r, until: someday}\n", 3, "api.ignore[0]", "neither a version"},
		{"ignore bad rule", "api:\n  ignore:\n    - {rule: Incompatible, reason: r}\n", 3, "api.ignore[0]", "not a rule id"},
		{"duplicate key", "api:\n  report: a\n  report: b\n", 3, "api.report", "key given twice"},
		{"syntax", "api:\n  packages: [\n", 0, "", ""},
		{"top not mapping", "- a\n", 1, "", "expected a mapping"},
		{"negative releases", "api:\n  deprecation:\n    minReleases: -1\n", 3, "api.deprecation.minReleases", "between 0 and 1000"},
		// Huge values are refused at parse time, before anything loops on
		// them (rounds once hung every command that loaded the file).
		{"huge rounds", "perf:\n  benchmarks:\n    rounds: 9000000000000000000\n", 3, "perf.benchmarks.rounds", "between 6 and 1000"},
		{"huge days", "api:\n  deprecation:\n    minDays: 9000000000000000000\n", 3, "api.deprecation.minDays", "between 0 and 36500"},
		{"huge size", "migrations:\n  sizes: {users: 9000000000000000000}\n", 2, "migrations.sizes", "between 0 and"},
		{"huge window", "slo:\n  window: 99999d\n", 2, "slo.window", "at most 3660d"},
		{"huge threshold", "perf:\n  benchmarks:\n    threshold: 1e300%\n", 3, "perf.benchmarks.threshold", "between 0% and 1000%"},
		{"overflowing rounds", "perf:\n  benchmarks:\n    rounds: 99999999999999999999\n", 3, "perf.benchmarks.rounds", "not a valid whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("relcheck.yaml", []byte(tt.src))
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if tt.line != 0 && ce.Line != tt.line {
				t.Errorf("line = %d, want %d (%v)", ce.Line, tt.line, err)
			}
			if tt.key != "" && ce.Key != tt.key {
				t.Errorf("key = %q, want %q (%v)", ce.Key, tt.key, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
		})
	}
}

func TestEmptyFile(t *testing.T) {
	for _, src := range []string{"", "\n# only comments\n", "~\n"} {
		c, err := ParseConfig("relcheck.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if c.API.Deprecation.MinReleases != 1 {
			t.Errorf("%q: defaults not applied", src)
		}
	}
}

// FuzzParseConfig checks that no input crashes the parser and that every rejection
// is an *Error that names the file.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(ConfigTemplate))
	f.Add([]byte("api:\n  ignore:\n    - {rule: api/x, reason: r, until: v1.0.0}\n"))
	f.Add([]byte("slo: {window: 1d2h}\nperf: {benchmarks: {threshold: 5%}}\n"))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Add([]byte("perf: {benchmarks: {rounds: 9000000000000000000}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("relcheck.yaml", data)
		if err != nil {
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is %T, not *config.Error", err, err)
			}
			if !strings.HasPrefix(err.Error(), "relcheck.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if c == nil {
			t.Fatal("nil config without error")
		}
	})
}
