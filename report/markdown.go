package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Markdown writes the report as GitHub-flavoured markdown: a heading with the
// overall status, a table of checks, a section per check that has findings,
// notes or metrics, and the version decision. The CLI appends it to
// $GITHUB_STEP_SUMMARY; it is also the "markdown" format of Render.
func Markdown(w io.Writer, r *Report) error {
	if r == nil {
		return fmt.Errorf("render markdown: nil report")
	}
	b := bufio.NewWriter(w)
	cs := checks(r)

	fmt.Fprintf(b, "## %s relcheck: %s\n\n", statusEmoji(r.Status), orNone(string(r.Status), "unknown"))
	fmt.Fprintf(b, "Project %s, base %s → head %s\n\n",
		code(r.Name()), code(orNone(r.Base, "(none)")), code(orNone(r.Head, "HEAD")))

	if len(cs) == 0 {
		b.WriteString("No checks ran.\n")
	} else {
		b.WriteString("| Status | Check | Summary | Findings | Duration |\n")
		b.WriteString("|---|---|---|---|---|\n")
		for _, c := range cs {
			count := "none"
			if len(c.Findings) > 0 {
				var t tally
				t.add(c)
				count = t.String()
			} else if c.Status == StatusSkip || c.Status == StatusError {
				count = ""
			}
			dur := ""
			if c.DurationMs > 0 {
				dur = formatDuration(c.DurationMs)
			}
			fmt.Fprintf(b, "| %s %s | %s | %s | %s | %s |\n",
				statusEmoji(c.Status), cell(string(c.Status)), cell(c.Name), cell(c.Summary), count, dur)
		}
	}

	for _, c := range cs {
		if len(c.Findings) == 0 && len(c.Notes) == 0 && len(c.Metrics) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n### %s %s\n", statusEmoji(c.Status), inline(c.Name))
		writeMarkdownFindings(b, c.Findings)
		if len(c.Notes) > 0 {
			b.WriteString("\n")
			for _, n := range c.Notes {
				b.WriteString("- " + inline(n) + "\n")
			}
		}
		if len(c.Metrics) > 0 {
			b.WriteString("\n<details><summary>Metrics</summary>\n\n")
			b.WriteString("| Metric | Value |\n|---|---|\n")
			keys := make([]string, 0, len(c.Metrics))
			for k := range c.Metrics {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(b, "| %s | %s |\n", codeCell(k), cell(metricValue(c.Metrics[k])))
			}
			b.WriteString("\n</details>\n")
		}
	}

	if v := r.Version; v != nil {
		fmt.Fprintf(b, "\n**Next version:** %s", code(orNone(v.Next, "(none)")))
		if v.Bump != "" {
			fmt.Fprintf(b, " (%s", inline(v.Bump))
			if v.Base != "" {
				fmt.Fprintf(b, " from %s", code(v.Base))
			}
			b.WriteString(")")
		}
		b.WriteString("\n")
		if len(v.Reasons) > 0 {
			b.WriteString("\n")
			for _, reason := range v.Reasons {
				b.WriteString("- " + inline(reason) + "\n")
			}
		}
	}
	return b.Flush()
}

// writeMarkdownFindings writes a table of the unsuppressed findings and a
// collapsed table of the suppressed ones.
func writeMarkdownFindings(b *bufio.Writer, fs []Finding) {
	var active, suppressed []Finding
	for _, f := range fs {
		if f.Suppressed != "" {
			suppressed = append(suppressed, f)
		} else {
			active = append(active, f)
		}
	}
	if len(active) > 0 {
		b.WriteString("\n| Severity | Rule | Location | Message | Fix |\n")
		b.WriteString("|---|---|---|---|---|\n")
		for _, f := range active {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n",
				cell(string(f.Severity)), codeCell(f.Rule), codeCell(position(f)), cell(f.Message), cell(f.Fix))
		}
	}
	if len(suppressed) > 0 {
		noun := "findings"
		if len(suppressed) == 1 {
			noun = "finding"
		}
		fmt.Fprintf(b, "\n<details><summary>%d suppressed %s</summary>\n\n", len(suppressed), noun)
		b.WriteString("| Severity | Rule | Location | Message | Reason |\n")
		b.WriteString("|---|---|---|---|---|\n")
		for _, f := range suppressed {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n",
				cell(string(f.Severity)), codeCell(f.Rule), codeCell(position(f)), cell(f.Message), cell(f.Suppressed))
		}
		b.WriteString("\n</details>\n")
	}
}

func statusEmoji(s Status) string {
	switch s {
	case StatusPass:
		return "✅"
	case StatusWarn:
		return "⚠️"
	case StatusFail:
		return "❌"
	case StatusSkip:
		return "⏭️"
	case StatusError:
		return "💥"
	}
	return "❔"
}

// markdownEscaper backslash-escapes the characters that would otherwise turn
// free text (Go signatures like "*T", SQL, "a < b") into emphasis, links or
// HTML.
var markdownEscaper = strings.NewReplacer(
	`\`, `\\`, `*`, `\*`, `_`, `\_`, `[`, `\[`, `]`, `\]`,
	`<`, `\<`, `>`, `\>`, `&`, `\&`, `~`, `\~`, `|`, `\|`,
)

// inline escapes free text for a line of markdown outside tables; newlines
// become <br>. Text between a pair of backticks is kept as a code span, as
// its author meant ("run `relcheck api update`").
func inline(s string) string { return escapeMarkdown(s, false) }

// cell is inline for a table cell, where '|' must be escaped even inside
// code spans.
func cell(s string) string { return escapeMarkdown(s, true) }

func escapeMarkdown(s string, table bool) string {
	s = strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	var b strings.Builder
	for s != "" {
		open := strings.IndexByte(s, '`')
		if open < 0 {
			break
		}
		end := strings.IndexByte(s[open+1:], '`')
		if end < 0 {
			break
		}
		end += open + 1
		b.WriteString(markdownEscaper.Replace(s[:open]))
		span := strings.ReplaceAll(s[open:end+1], "\n", " ")
		if table {
			span = strings.ReplaceAll(span, "|", `\|`)
		}
		b.WriteString(span)
		s = s[end+1:]
	}
	// An unpaired backtick would open a code span; escape it.
	b.WriteString(strings.ReplaceAll(markdownEscaper.Replace(s), "`", "\\`"))
	return strings.ReplaceAll(b.String(), "\n", "<br>")
}

// code renders s as a code span, with a fence longer than any run of
// backticks inside it.
func code(s string) string {
	if s == "" {
		return ""
	}
	s = strings.ReplaceAll(s, "\n", " ")
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if longest > 0 {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

// codeCell is a code span inside a table cell, where GFM needs '|' escaped
// even within code.
func codeCell(s string) string {
	return strings.ReplaceAll(code(s), "|", `\|`)
}

// metricValue formats a metric as its JSON value, strings unquoted.
func metricValue(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}
