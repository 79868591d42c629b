package report

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// renderGitHub writes one GitHub Actions workflow command per unsuppressed
// finding, which the runner turns into an annotation on the file and line:
//
//	::error file=parse.go,line=12,title=api/removed-without-deprecation::func Parse removed%0Afix: restore Parse
//
// then one plain summary line per check and the version decision. Suppressed
// findings only show up in the counts.
func renderGitHub(w io.Writer, r *Report) error {
	b := bufio.NewWriter(w)
	cs := checks(r)
	for _, c := range cs {
		if c.Status == StatusError {
			// A gate that could not decide must show up in the pull
			// request too, not only in the log.
			fmt.Fprintf(b, "::error title=%s::%s\n", escapeProperty("relcheck "+c.Name+" could not decide"), escapeData(c.Summary))
		}
		for _, f := range c.Findings {
			if f.Suppressed != "" {
				continue
			}
			writeAnnotation(b, f)
		}
	}
	for _, c := range cs {
		line := fmt.Sprintf("relcheck %s: %s", c.Name, strings.ToUpper(string(c.Status)))
		if c.Summary != "" {
			line += ": " + c.Summary
		}
		var detail []string
		if len(c.Findings) > 0 {
			var t tally
			t.add(c)
			detail = append(detail, t.String())
		}
		if c.DurationMs > 0 {
			detail = append(detail, formatDuration(c.DurationMs))
		}
		if len(detail) > 0 {
			line += " (" + strings.Join(detail, ", ") + ")"
		}
		b.WriteString(plainLine(line) + "\n")
	}
	status := fmt.Sprintf("relcheck: %s (%s → %s)", strings.ToUpper(orNone(string(r.Status), "?")),
		orNone(r.Base, "no base"), orNone(r.Head, "HEAD"))
	b.WriteString(plainLine(status) + "\n")
	if r.Version != nil {
		b.WriteString(plainLine("relcheck: next version: "+versionLine(r.Version)) + "\n")
	}
	return b.Flush()
}

func writeAnnotation(b *bufio.Writer, f Finding) {
	cmd := "notice"
	switch f.Severity {
	case SeverityError:
		cmd = "error"
	case SeverityWarning:
		cmd = "warning"
	}
	var props []string
	if f.Location != nil && f.Location.File != "" {
		props = append(props, "file="+escapeProperty(f.Location.File))
		if f.Location.Line > 0 {
			props = append(props, "line="+strconv.Itoa(f.Location.Line))
		}
	}
	if f.Rule != "" {
		props = append(props, "title="+escapeProperty(f.Rule))
	}
	msg := f.Message
	if f.Fix != "" {
		msg += "\nfix: " + f.Fix
	}
	b.WriteString("::" + cmd)
	if len(props) > 0 {
		b.WriteString(" " + strings.Join(props, ","))
	}
	b.WriteString("::" + escapeData(msg) + "\n")
}

// escapeData escapes the message of a workflow command the way the Actions
// runner unescapes it.
func escapeData(s string) string {
	return dataEscaper.Replace(s)
}

// escapeProperty escapes a property value of a workflow command; on top of
// escapeData's rules, ':' and ',' would end the value.
func escapeProperty(s string) string {
	return propertyEscaper.Replace(s)
}

var (
	dataEscaper     = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	propertyEscaper = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
)

// plainLine keeps a log line on one line, so text taken from the report can
// never start a line of its own that the runner would read as a command.
func plainLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
