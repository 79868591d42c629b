package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// ANSI SGR parameters used by the text renderer.
const (
	sgrBold    = "1"
	sgrDim     = "2"
	sgrRed     = "31"
	sgrGreen   = "32"
	sgrYellow  = "33"
	sgrMagenta = "35"
	sgrCyan    = "36"
)

// painter wraps text in ANSI colour when enabled and returns it unchanged
// otherwise, so the plain output carries no escape sequences at all.
type painter bool

func (p painter) paint(s string, sgr ...string) string {
	if !p || s == "" {
		return s
	}
	return "\x1b[" + strings.Join(sgr, ";") + "m" + s + "\x1b[0m"
}

func statusStyle(s Status) []string {
	switch s {
	case StatusPass:
		return []string{sgrBold, sgrGreen}
	case StatusWarn:
		return []string{sgrBold, sgrYellow}
	case StatusFail:
		return []string{sgrBold, sgrRed}
	case StatusError:
		return []string{sgrBold, sgrMagenta}
	}
	return []string{sgrDim}
}

func severityStyle(s Severity) []string {
	switch s {
	case SeverityError:
		return []string{sgrBold, sgrRed}
	case SeverityWarning:
		return []string{sgrYellow}
	}
	return []string{sgrCyan}
}

// badge is the upper-case status padded to a fixed width, e.g. "PASS ".
func badge(s Status) string {
	return fmt.Sprintf("%-5s", strings.ToUpper(orNone(string(s), "?")))
}

// renderText writes the report for people:
//
//	relcheck: example.com/lib (v1.4.0 → 3f2c1e9): FAIL
//
//	FAIL  api   1 incompatible change (812ms)
//	  parse.go:12: error: func Parse removed [api/removed-without-deprecation]
//	      fix: restore Parse and mark it // Deprecated: first
//	  - a note of the check
//
//	1 error, 1 warning, 1 suppressed
//	next version: v1.5.0 (minor: new exported func Format)
func renderText(w io.Writer, r *Report, opts Options) error {
	p := painter(opts.Color)
	b := bufio.NewWriter(w)
	cs := checks(r)

	fmt.Fprintf(b, "relcheck: %s (%s → %s): %s\n",
		r.Name(), orNone(r.Base, "no base"), orNone(r.Head, "HEAD"),
		p.paint(strings.ToUpper(orNone(string(r.Status), "?")), statusStyle(r.Status)...))

	width := 0
	for _, c := range cs {
		width = max(width, len(c.Name))
	}
	var total tally
	for i, c := range cs {
		if i == 0 {
			b.WriteString("\n")
		}
		total.add(c)
		line := p.paint(badge(c.Status), statusStyle(c.Status)...) + " " + p.paint(fmt.Sprintf("%-*s", width, c.Name), sgrBold)
		if c.Summary != "" {
			line += "  " + indentLines(c.Summary, strings.Repeat(" ", width+8))
		}
		if c.DurationMs > 0 {
			line += " " + p.paint("("+formatDuration(c.DurationMs)+")", sgrDim)
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
		// Suppressed findings come last, after everything that counts.
		for _, f := range c.Findings {
			if f.Suppressed == "" {
				writeTextFinding(b, p, f)
			}
		}
		for _, f := range c.Findings {
			if f.Suppressed != "" {
				writeTextFinding(b, p, f)
			}
		}
		for _, n := range c.Notes {
			b.WriteString("  - " + indentLines(n, "    ") + "\n")
		}
	}

	b.WriteString("\n" + total.String() + "\n")
	if r.Version != nil {
		fmt.Fprintf(b, "next version: %s\n", p.paint(versionLine(r.Version), sgrBold))
	}
	return b.Flush()
}

// writeTextFinding writes "  file:line: severity: message [rule]" and an
// indented fix line. A suppressed finding is dimmed as a whole and ends with
// the reason.
func writeTextFinding(b *bufio.Writer, p painter, f Finding) {
	suppressed := f.Suppressed != ""
	inner := p
	if suppressed {
		inner = false // one dim span for the whole line, not nested colours
	}
	var line strings.Builder
	if pos := position(f); pos != "" {
		line.WriteString(inner.paint(pos+":", sgrBold) + " ")
	}
	line.WriteString(inner.paint(string(f.Severity)+":", severityStyle(f.Severity)...) + " ")
	line.WriteString(indentLines(f.Message, "      "))
	if f.Rule != "" {
		line.WriteString(" " + inner.paint("["+f.Rule+"]", sgrDim))
	}
	if suppressed {
		line.WriteString(" (suppressed: " + f.Suppressed + ")")
	}
	text := line.String()
	if suppressed {
		text = p.paint(text, sgrDim)
	}
	b.WriteString("  " + text + "\n")
	if f.Fix != "" {
		fix := inner.paint("fix:", sgrGreen) + " " + indentLines(f.Fix, "           ")
		if suppressed {
			fix = p.paint(fix, sgrDim)
		}
		b.WriteString("      " + fix + "\n")
	}
}

// indentLines indents every line of s after the first, so a multi-line
// message stays under its finding.
func indentLines(s, indent string) string {
	s = strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	return strings.ReplaceAll(s, "\n", "\n"+indent)
}
