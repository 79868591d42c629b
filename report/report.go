// Package report is the result model every relcheck gate fills in, and the
// renderers that turn it into text, JSON, GitHub workflow commands, markdown
// and SARIF. The JSON form is a stable interface: scripts and the GitHub Action
// read it, so fields are only ever added.
//
//	report.go    Report, Check, Finding, Version
//	errors.go    exit codes and the errors that decide them (InputError)
//	render.go    the formats: text.go, github.go, markdown.go, sarif.go
package report

import (
	"sort"
)

// SchemaVersion is the version of the JSON report format.
const SchemaVersion = 1

// Status is the outcome of one check or of the whole run.
type Status string

const (
	StatusPass  Status = "pass"
	StatusWarn  Status = "warn"
	StatusFail  Status = "fail"
	StatusSkip  Status = "skip"
	StatusError Status = "error"
)

// rank orders statuses by how bad they are, for combining checks.
func (s Status) rank() int {
	switch s {
	case StatusSkip:
		return 0
	case StatusPass:
		return 1
	case StatusWarn:
		return 2
	case StatusFail:
		return 3
	case StatusError:
		return 4
	}
	return 0
}

// Severity is how much a finding matters.
type Severity string

const (
	// SeverityError fails the check.
	SeverityError Severity = "error"
	// SeverityWarning is shown and makes the check "warn", but does not fail it.
	SeverityWarning Severity = "warning"
	// SeverityNote is information only.
	SeverityNote Severity = "note"
)

// Report is the result of one `relcheck check` run.
type Report struct {
	SchemaVersion int    `json:"schemaVersion"`
	Repo          string `json:"repo"`
	// Module is the Go module path of the project (go.mod), when it has one.
	Module  string   `json:"module,omitempty"`
	Base    string   `json:"base"`
	Head    string   `json:"head"`
	Status  Status   `json:"status"`
	Version *Version `json:"version,omitempty"`
	Checks  []*Check `json:"checks"`
}

// Name names the project: its module path, with the directory when it
// is not the current one; the directory alone without a go.mod.
func (r *Report) Name() string {
	dir := r.Repo
	if dir == "" {
		dir = "."
	}
	switch {
	case r.Module == "":
		return dir
	case dir == "." || dir == "./":
		return r.Module
	}
	return r.Module + " in " + dir
}

// Version is the version decision derived from the gates.
type Version struct {
	Base    string   `json:"base"`
	Bump    string   `json:"bump"` // "major", "minor", "patch" or "initial"
	Next    string   `json:"next"`
	Reasons []string `json:"reasons,omitempty"`
}

// Check is the result of one gate.
type Check struct {
	Name       string         `json:"name"`
	Status     Status         `json:"status"`
	Summary    string         `json:"summary"`
	DurationMs int64          `json:"durationMs"`
	Findings   []Finding      `json:"findings"`
	Notes      []string       `json:"notes,omitempty"`
	Metrics    map[string]any `json:"metrics,omitempty"`
}

// Finding is one thing a gate has to say about the change, identified by a
// stable rule id of the form "gate/kebab-name".
type Finding struct {
	Rule     string    `json:"rule"`
	Severity Severity  `json:"severity"`
	Message  string    `json:"message"`
	Symbol   string    `json:"symbol,omitempty"`
	Location *Location `json:"location,omitempty"`
	Fix      string    `json:"fix,omitempty"`
	// Suppressed holds the reason of the api.ignore entry (or similar) that
	// silenced this finding; suppressed findings never count.
	Suppressed string `json:"suppressed,omitempty"`
}

// Location points at a line of a file, relative to the repository root.
type Location struct {
	File string `json:"file"`
	Line int    `json:"line,omitempty"`
}

// Counts returns how many unsuppressed findings of each severity the check has.
func (c *Check) Counts() (errors, warnings, notes int) {
	for _, f := range c.Findings {
		if f.Suppressed != "" {
			continue
		}
		switch f.Severity {
		case SeverityError:
			errors++
		case SeverityWarning:
			warnings++
		default:
			notes++
		}
	}
	return
}

// Settle sets the status of a check that ran to completion from its findings:
// fail with any error, warn with any warning, pass otherwise. It also sorts the
// findings into a stable order (severity, file, line, rule, message).
func (c *Check) Settle() {
	SortFindings(c.Findings)
	if c.Status == StatusSkip || c.Status == StatusError {
		return
	}
	e, w, _ := c.Counts()
	switch {
	case e > 0:
		c.Status = StatusFail
	case w > 0:
		c.Status = StatusWarn
	default:
		c.Status = StatusPass
	}
}

func severityRank(s Severity) int {
	switch s {
	case SeverityError:
		return 0
	case SeverityWarning:
		return 1
	}
	return 2
}

// SortFindings orders findings by severity, then location, then rule.
func SortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if ra, rb := severityRank(a.Severity), severityRank(b.Severity); ra != rb {
			return ra < rb
		}
		af, bf := "", ""
		al, bl := 0, 0
		if a.Location != nil {
			af, al = a.Location.File, a.Location.Line
		}
		if b.Location != nil {
			bf, bl = b.Location.File, b.Location.Line
		}
		if af != bf {
			return af < bf
		}
		if al != bl {
			return al < bl
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Message < b.Message
	})
}

// Settle computes the overall status from the checks: the worst of them, and
// pass when every check was skipped.
func (r *Report) Settle() {
	r.SchemaVersion = SchemaVersion
	st := StatusPass
	for _, c := range r.Checks {
		if c.Status.rank() > st.rank() {
			st = c.Status
		}
	}
	r.Status = st
}

// Outcome turns a settled report into the error the CLI maps to an exit code:
// nil when every gate passed (warnings allowed).
func (r *Report) Outcome() error {
	var errored []string
	n := 0
	for _, c := range r.Checks {
		if c.Status == StatusError {
			errored = append(errored, c.Name)
		}
		e, _, _ := c.Counts()
		n += e
	}
	if len(errored) > 0 {
		return &UndecidedError{Checks: errored}
	}
	if n > 0 || r.Status == StatusFail {
		return &FindingsError{Errors: n}
	}
	return nil
}
