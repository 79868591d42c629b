package report_test

import (
	"os"

	"github.com/relcheck/relcheck/report"
)

func ExampleRender() {
	api := &report.Check{
		Name:       "api",
		Summary:    "1 incompatible change",
		DurationMs: 812,
		Findings: []report.Finding{{
			Rule:     "api/removed-without-deprecation",
			Severity: report.SeverityError,
			Message:  "func Parse removed; it was never marked Deprecated",
			Symbol:   "example.com/lib.Parse",
			Location: &report.Location{File: "parse.go", Line: 12},
			Fix:      "restore Parse and mark it // Deprecated: first",
		}},
	}
	api.Settle()
	r := &report.Report{
		Repo: ".", Module: "example.com/lib", Base: "v1.4.0", Head: "3f2c1e9",
		Version: &report.Version{Base: "v1.4.0", Bump: "minor", Next: "v1.5.0"},
		Checks:  []*report.Check{api},
	}
	r.Settle()

	if err := report.Render(os.Stdout, r, report.FormatText, report.Options{}); err != nil {
		panic(err)
	}
	if err := report.Render(os.Stdout, r, report.FormatGitHub, report.Options{}); err != nil {
		panic(err)
	}
	// Output:
	// relcheck: example.com/lib (v1.4.0 → 3f2c1e9): FAIL
	//
	// FAIL  api  1 incompatible change (812ms)
	//   parse.go:12: error: func Parse removed; it was never marked Deprecated [api/removed-without-deprecation]
	//       fix: restore Parse and mark it // Deprecated: first
	//
	// 1 error
	// next version: v1.5.0 (minor)
	// ::error file=parse.go,line=12,title=api/removed-without-deprecation::func Parse removed; it was never marked Deprecated%0Afix: restore Parse and mark it // Deprecated: first
	// relcheck api: FAIL: 1 incompatible change (1 error, 812ms)
	// relcheck: FAIL (v1.4.0 → 3f2c1e9)
	// relcheck: next version: v1.5.0 (minor)
}
