package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Format names an output format of Render.
type Format string

const (
	// FormatText is a human-readable report, like a linter's.
	FormatText Format = "text"
	// FormatJSON is the Report itself, the stable machine-readable form.
	FormatJSON Format = "json"
	// FormatGitHub is GitHub Actions workflow commands (annotations).
	FormatGitHub Format = "github"
	// FormatMarkdown is a summary for pull requests and $GITHUB_STEP_SUMMARY.
	FormatMarkdown Format = "markdown"
	// FormatSARIF is SARIF 2.1.0 for GitHub code scanning.
	FormatSARIF Format = "sarif"
)

var formats = []Format{FormatText, FormatJSON, FormatGitHub, FormatMarkdown, FormatSARIF}

// Formats returns every format Render accepts, in the order help text lists them.
func Formats() []Format {
	return append([]Format(nil), formats...)
}

// ParseFormat returns the format named s (case-insensitive), or an error that
// lists the valid ones.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	for _, v := range formats {
		if f == v {
			return f, nil
		}
	}
	names := make([]string, len(formats))
	for i, v := range formats {
		names[i] = string(v)
	}
	return "", fmt.Errorf("unknown format %q: valid formats are %s", s, strings.Join(names, ", "))
}

// Options control rendering. The zero value is plain output.
type Options struct {
	// Color enables ANSI colour in text output. The caller decides (typically:
	// the output is a terminal and NO_COLOR is unset); renderers never look.
	Color bool
	// ToolVersion is relcheck's own version, reported as
	// tool.driver.version in SARIF. Empty omits it.
	ToolVersion string
}

// Render writes r to w in format f. It does not modify r and does not read
// the environment; the output depends only on its arguments.
func Render(w io.Writer, r *Report, f Format, opts Options) error {
	if r == nil {
		return errors.New("render: nil report")
	}
	f, err := ParseFormat(string(f))
	if err != nil {
		return err
	}
	switch f {
	case FormatText:
		return renderText(w, r, opts)
	case FormatJSON:
		return renderJSON(w, r)
	case FormatGitHub:
		return renderGitHub(w, r)
	case FormatMarkdown:
		return Markdown(w, r)
	case FormatSARIF:
		return renderSARIF(w, r, opts)
	}
	panic("unreachable: format " + f)
}

// renderJSON writes the report as indented JSON. It marshals a shallow copy
// in which schemaVersion is SchemaVersion, nil checks are dropped, and every
// check's findings are [] rather than null, so consumers can iterate without
// a null check; the caller's report is left as it was.
func renderJSON(w io.Writer, r *Report) error {
	out := *r
	out.SchemaVersion = SchemaVersion
	out.Checks = make([]*Check, 0, len(r.Checks))
	for _, c := range checks(r) {
		if c.Findings == nil {
			cc := *c
			cc.Findings = []Finding{}
			c = &cc
		}
		out.Checks = append(out.Checks, c)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Messages quote Go and SQL ("p99 < 50ms", "a && b"); keep them readable.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&out); err != nil {
		return fmt.Errorf("encoding JSON report: %w", err)
	}
	return nil
}

// checks returns the report's checks without nil entries.
func checks(r *Report) []*Check {
	cs := make([]*Check, 0, len(r.Checks))
	for _, c := range r.Checks {
		if c != nil {
			cs = append(cs, c)
		}
	}
	return cs
}

// formatDuration renders a check's duration compactly: "812ms", "4.2s", "2m5s".
func formatDuration(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return d.String()
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// tally counts the unsuppressed findings of every check, and the suppressed ones.
type tally struct{ errors, warnings, notes, suppressed int }

func (t *tally) add(c *Check) {
	e, w, n := c.Counts()
	t.errors += e
	t.warnings += w
	t.notes += n
	for _, f := range c.Findings {
		if f.Suppressed != "" {
			t.suppressed++
		}
	}
}

// String is "1 error, 2 warnings, 1 suppressed", or "no findings".
func (t tally) String() string {
	var parts []string
	add := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	add(t.errors, "error", "errors")
	add(t.warnings, "warning", "warnings")
	add(t.notes, "note", "notes")
	add(t.suppressed, "suppressed", "suppressed")
	if len(parts) == 0 {
		return "no findings"
	}
	return strings.Join(parts, ", ")
}

// position is "file:line", "file", the symbol when there is no location, or "".
func position(f Finding) string {
	if f.Location != nil && f.Location.File != "" {
		if f.Location.Line > 0 {
			return fmt.Sprintf("%s:%d", f.Location.File, f.Location.Line)
		}
		return f.Location.File
	}
	return f.Symbol
}

// versionLine is "v1.5.0 (minor: reason; reason)".
func versionLine(v *Version) string {
	s := v.Next
	if s == "" {
		s = "none"
	}
	detail := v.Bump
	if len(v.Reasons) > 0 {
		if detail != "" {
			detail += ": "
		}
		detail += strings.Join(v.Reasons, "; ")
	}
	if detail != "" {
		s += " (" + detail + ")"
	}
	return s
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}
