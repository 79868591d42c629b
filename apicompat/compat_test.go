package apicompat

import (
	"strings"
	"testing"
)

// goTestJSON is go test -json's output (go 1.24 and later) for a module
// with a package whose tests pass and fail, one whose tests do not build,
// and a panic that stops a package's run.
const goTestJSON = `{"Action":"start","Package":"example.com/kit"}
{"Action":"run","Package":"example.com/kit","Test":"TestSlug"}
{"Action":"output","Package":"example.com/kit","Test":"TestSlug","Output":"=== RUN   TestSlug\n"}
{"Action":"run","Package":"example.com/kit","Test":"TestSlug/a"}
{"Action":"output","Package":"example.com/kit","Test":"TestSlug/a","Output":"    slug_test.go:17: got x\n"}
{"Action":"fail","Package":"example.com/kit","Test":"TestSlug/a"}
{"Action":"fail","Package":"example.com/kit","Test":"TestSlug"}
{"Action":"pass","Package":"example.com/kit","Test":"TestSum"}
{"Action":"skip","Package":"example.com/kit","Test":"TestNet"}
{"Action":"output","Package":"example.com/kit","Output":"FAIL\n"}
{"Action":"fail","Package":"example.com/kit"}
{"ImportPath":"example.com/kit/units [example.com/kit/units.test]","Action":"build-output","Output":"# example.com/kit/units_test [example.com/kit/units.test]\n"}
{"ImportPath":"example.com/kit/units_test [example.com/kit/units.test]","Action":"build-output","Output":"units/units_test.go:10:12: undefined: units.Trim\n"}
{"ImportPath":"example.com/kit/units [example.com/kit/units.test]","Action":"build-fail"}
{"Action":"start","Package":"example.com/kit/units"}
{"Action":"output","Package":"example.com/kit/units","Output":"FAIL\texample.com/kit/units [build failed]\n"}
{"Action":"fail","Package":"example.com/kit/units","FailedBuild":"example.com/kit/units [example.com/kit/units.test]"}
not json
{"Action":"run","Package":"example.com/kit/p","Test":"TestPanics"}
{"Action":"output","Package":"example.com/kit/p","Test":"TestPanics","Output":"panic: boom\n"}
{"Action":"fail","Package":"example.com/kit/p","Test":"TestPanics"}
{"Action":"fail","Package":"example.com/kit/p"}
`

func TestParseTestJSON(t *testing.T) {
	run := parseTestJSON(strings.NewReader(goTestJSON), "example.com/kit")
	kit := run.Tests[""]
	if o := kit["TestSlug"]; o == nil || o.Pass || !strings.Contains(o.Output, "slug_test.go:17: got x") {
		t.Errorf("TestSlug: %+v", o)
	}
	if o := kit["TestSum"]; o == nil || !o.Pass {
		t.Errorf("TestSum: %+v", o)
	}
	if o := kit["TestNet"]; o == nil || !o.Skip || o.Pass {
		t.Errorf("TestNet: %+v", o)
	}
	if _, ok := kit["TestSlug/a"]; ok {
		t.Error("a subtest counted as a test")
	}
	if why := run.BuildFailed["units"]; !strings.Contains(why, "undefined: units.Trim") {
		t.Errorf("build failure: %q", why)
	}
	if _, ok := run.BuildFailed[""]; ok {
		t.Error("a package whose tests ran counted as a build failure")
	}
	if o := run.Tests["p"]["TestPanics"]; o == nil || o.Pass || !strings.Contains(o.Output, "panic: boom") {
		t.Errorf("TestPanics: %+v", o)
	}
}

func FuzzParseTestJSON(f *testing.F) {
	f.Add(goTestJSON)
	f.Add(`{"Action":"fail","Package":""}`)
	f.Fuzz(func(t *testing.T, s string) {
		run := parseTestJSON(strings.NewReader(s), "example.com/kit")
		for _, tests := range run.Tests {
			for name, o := range tests {
				if strings.Contains(name, "/") || (o.Pass && o.Output != "") {
					t.Errorf("%q: %+v", name, o)
				}
			}
		}
	})
}

func TestTrimOutput(t *testing.T) {
	var b strings.Builder
	for i := range 30 {
		b.WriteString("=== RUN   TestX\n")
		b.WriteString("line " + strings.Repeat("x", i%3) + "\n")
	}
	got := trimOutput(b.String())
	lines := strings.Split(got, "\n")
	if len(lines) != 21 || !strings.Contains(lines[0], "(10 lines before)") || strings.Contains(got, "=== RUN") {
		t.Errorf("%d lines:\n%s", len(lines), got)
	}
}
