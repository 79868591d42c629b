// Package telemetry is relcheck's opt-in shared telemetry: the client's
// modes and local records, the weekly report and its upload, the
// collector that validates, stores and aggregates reports (SQLite or
// PostgreSQL), and the gates that read the aggregates to promote a release
// or to let an install take it.
//
// Nothing is recorded unless the operator chose local or on; nothing is
// sent unless on; DO_NOT_TRACK=1 forces off. A report carries counters
// from the fixed list below and no identifier that outlives it.
//
// Where things are:
//
//	report.go     the weekly report and its counters
//	client.go     modes, local records, preview and upload
//	server.go     the collector's HTTP API; store.go its database
//	dashboard.go  the collector's page
//	gate.go       Gate: requirements judged on a collector's figures
package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Format is the report format this relcheck writes and asks consent for.
// A new format asks again: until the operator says yes, the client stays
// local.
const Format = 1

// Counters lists every counter a report of Format may carry, with what it
// counts. The collector rejects any other name.
var Counters = map[string]string{
	"upgrade.success":                 "upgrades to the version that passed their health check",
	"upgrade.rolled_back.download":    "upgrades to the version switched back: the download failed",
	"upgrade.rolled_back.verify":      "upgrades to the version refused: a signature or digest did not verify",
	"upgrade.rolled_back.pre":         "upgrades to the version stopped by the pre hook",
	"upgrade.rolled_back.post":        "upgrades to the version switched back: the post hook failed",
	"upgrade.rolled_back.health":      "upgrades to the version switched back: the health check failed",
	"upgrade.rolled_back.analysis":    "upgrades to the version switched back: the operator's SLIs failed the metric analysis",
	"upgrade.analysis.passed":         "upgrades to the version that also passed the operator's metric analysis",
	"upgrade.rolled_back.interrupted": "upgrades to the version interrupted (a crash) and undone",
	"upgrade.duration.lt_10s":         "upgrades to the version that took under 10 s",
	"upgrade.duration.10s_1m":         "upgrades to the version that took 10 s to 1 min",
	"upgrade.duration.1m_10m":         "upgrades to the version that took 1 to 10 min",
	"upgrade.duration.ge_10m":         "upgrades to the version that took 10 min or more",
	"upgrade.hops":                    "hops (releases installed on the way) of upgrades to the version",
	"rollback.manual":                 "manual rollbacks away from the version",
}

// maxValue bounds a counter in one install's week: a report claiming more
// is not an install's.
func maxValue(name string) int64 {
	if name == "upgrade.hops" {
		return 1000
	}
	return 100
}

// CounterNames lists Counters' names, sorted.
func CounterNames() []string {
	names := make([]string, 0, len(Counters))
	for n := range Counters {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Limits of a report.
const (
	// maxAge is how old a report's week may be.
	maxAge         = 400 * 24 * time.Hour
	MaxReportBytes = 64 << 10
	maxCounters    = 128
	// maxVersions bounds the versions one report speaks of.
	maxVersions = 8
)

// Report is one install's week: what it ran and what its upgrades did.
type Report struct {
	Format int `json:"format"`
	// ID is random per report: the collector drops duplicates by it; it
	// says nothing about the install.
	ID      string `json:"id"`
	Program string `json:"program"`
	Channel string `json:"channel"`
	// Week is the ISO week, 2026-W47.
	Week string `json:"week"`
	OS   string `json:"os"`
	Arch string `json:"arch"`
	// Running is the version installed when the report was made.
	Running  string    `json:"running,omitempty"`
	Counters []Counter `json:"counters"`

	// newNetwork: the collector received the first report of its source
	// network today with this one.
	newNetwork bool
}

// Counter is a count about one version.
type Counter struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Value   int64  `json:"value"`
}

var (
	idRe      = regexp.MustCompile(`^[0-9a-f]{32}$`)
	wordRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	weekRe    = regexp.MustCompile(`^(\d{4})-W(\d{2})$`)
	programRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$`)
)

// RejectedError is a report the collector refuses (HTTP 400).
type RejectedError struct{ Msg string }

func (e *RejectedError) Error() string { return e.Msg }

func bad(format string, args ...any) error { return &RejectedError{Msg: fmt.Sprintf(format, args...)} }

// Decode parses a report strictly: no unknown fields, no trailing data,
// bounded size, and Validate.
func Decode(raw []byte, now time.Time) (*Report, error) {
	if len(raw) > MaxReportBytes {
		return nil, bad("report of %d bytes is larger than %d", len(raw), MaxReportBytes)
	}
	if err := noDuplicateKeys(raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var r Report
	if err := dec.Decode(&r); err != nil {
		return nil, bad("malformed report: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("malformed report: data after the JSON object")
	}
	if err := r.Validate(now); err != nil {
		return nil, err
	}
	return &r, nil
}

// noDuplicateKeys refuses a JSON document with a key given twice in one
// object: encoding/json keeps the last, and a report must mean one thing.
func noDuplicateKeys(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	type object struct {
		keys  map[string]bool
		inKey bool
	}
	var stack []*object
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return nil // Decode says what is malformed
		}
		var top *object
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		// In an object, tokens alternate key, value; a value that opens an
		// object or array is one value.
		expectKey := top != nil && top.keys != nil && !top.inKey
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				if top != nil && top.keys != nil {
					top.inKey = false
				}
				stack = append(stack, &object{keys: map[string]bool{}})
			case '[':
				if top != nil && top.keys != nil {
					top.inKey = false
				}
				stack = append(stack, &object{})
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
		case string:
			if expectKey {
				if top.keys[t] {
					return bad("malformed report: key %q given twice", t)
				}
				top.keys[t] = true
				top.inKey = true
				continue
			}
			if top != nil && top.keys != nil {
				top.inKey = false
			}
		default:
			if top != nil && top.keys != nil {
				top.inKey = false
			}
		}
	}
}

// Validate checks every field of a report against the format.
func (r *Report) Validate(now time.Time) error {
	switch {
	case r.Format != Format:
		return bad("format %d: this collector takes format %d", r.Format, Format)
	case !idRe.MatchString(r.ID):
		return bad("id: want 32 lower-case hex digits")
	case !programRe.MatchString(r.Program):
		return bad("program: %q is not a program name", r.Program)
	case !slices.Contains([]string{"edge", "beta", "stable"}, r.Channel):
		return bad("channel: %q is not edge, beta or stable", r.Channel)
	case !wordRe.MatchString(r.OS) || !wordRe.MatchString(r.Arch):
		return bad("os and arch: want GOOS and GOARCH names")
	case len(r.Counters) > maxCounters:
		return bad("%d counters, more than %d", len(r.Counters), maxCounters)
	}
	start, err := WeekStart(r.Week)
	if err != nil {
		return bad("week: %v", err)
	}
	if start.After(now) {
		return bad("week %s is in the future", r.Week)
	}
	if now.Sub(start) > maxAge {
		return bad("week %s is more than a year old", r.Week)
	}
	if r.Running != "" && !validVersion(r.Running) {
		return bad("running: %q is not a semantic version", r.Running)
	}
	seen := map[[2]string]bool{}
	versions := map[string]bool{}
	if r.Running != "" {
		versions[r.Running] = true
	}
	for i, c := range r.Counters {
		if _, ok := Counters[c.Name]; !ok {
			return bad("counters[%d]: unknown counter %q (format %d allows: %s)", i, c.Name, Format, strings.Join(CounterNames(), ", "))
		}
		if !validVersion(c.Version) {
			return bad("counters[%d]: version %q is not a semantic version", i, c.Version)
		}
		if c.Value < 1 || c.Value > maxValue(c.Name) {
			return bad("counters[%d]: value %d is not between 1 and %d", i, c.Value, maxValue(c.Name))
		}
		if versions[c.Version] = true; len(versions) > maxVersions {
			return bad("counters[%d]: more than %d versions in one report", i, maxVersions)
		}
		k := [2]string{c.Name, c.Version}
		if seen[k] {
			return bad("counters[%d]: %s for %s is listed twice", i, c.Name, c.Version)
		}
		seen[k] = true
	}
	return nil
}

func validVersion(v string) bool {
	if !strings.HasPrefix(v, "v") || len(v) > 128 {
		return false
	}
	_, err := semver.StrictNewVersion(v[1:])
	return err == nil
}

// Week returns the ISO week of t, 2026-W47.
func Week(t time.Time) string {
	y, w := t.UTC().ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

// WeekStart returns the Monday 00:00 UTC that starts an ISO week.
func WeekStart(week string) (time.Time, error) {
	m := weekRe.FindStringSubmatch(week)
	if m == nil {
		return time.Time{}, fmt.Errorf("%q is not an ISO week like 2026-W47", week)
	}
	var y, w int
	fmt.Sscan(m[1], &y)
	fmt.Sscan(m[2], &w)
	if w < 1 || w > 53 {
		return time.Time{}, fmt.Errorf("%q: week %d does not exist", week, w)
	}
	// Week 1 holds January 4th.
	jan4 := time.Date(y, 1, 4, 0, 0, 0, 0, time.UTC)
	monday := jan4.AddDate(0, 0, -((int(jan4.Weekday()) + 6) % 7))
	start := monday.AddDate(0, 0, 7*(w-1))
	if Week(start) != week {
		return time.Time{}, fmt.Errorf("%q: the year has no week %d", week, w)
	}
	return start, nil
}

// DurationBucket names the duration counter for an upgrade of d.
func DurationBucket(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return "upgrade.duration.lt_10s"
	case d < time.Minute:
		return "upgrade.duration.10s_1m"
	case d < 10*time.Minute:
		return "upgrade.duration.1m_10m"
	}
	return "upgrade.duration.ge_10m"
}
