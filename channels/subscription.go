package channels

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // windows name IANA zones; not every host has a zoneinfo database

	"gopkg.in/yaml.v3"

	"github.com/relcheck/relcheck/analysis"
	"github.com/relcheck/relcheck/config"
	"github.com/relcheck/relcheck/internal/atomicfile"
	"github.com/relcheck/relcheck/internal/yamlfile"
	"github.com/relcheck/relcheck/report"
	"github.com/relcheck/relcheck/telemetry"
)

// Subscription is an operator's choice of what to install from which
// channel, and when: written by relcheck subscribe, read by upgrade.
type Subscription struct {
	Repo    string `yaml:"repo"`
	Channel string `yaml:"channel"`
	// Project is the project whose heads this install accepts: a head of
	// another project, even signed by the same key, is refused. Empty in
	// subscriptions written before it existed: the first head seen binds.
	Project  string `yaml:"project,omitempty"`
	Insecure bool   `yaml:"insecure,omitempty"`
	// Key is the maintainers' public key (cosign.pub), as a path.
	Key        string `yaml:"key"`
	InstallDir string `yaml:"installDir"`
	// InstallID is random, made once: it places this install in phased
	// rollouts and staging schedules, and identifies nothing else.
	InstallID string `yaml:"installID"`

	PreCmd      string `yaml:"preCmd,omitempty"`
	PostCmd     string `yaml:"postCmd,omitempty"`
	HealthCmd   string `yaml:"healthCmd,omitempty"`
	RollbackCmd string `yaml:"rollbackCmd,omitempty"`
	// HealthTimeout bounds all attempts of the health check together.
	HealthTimeout config.Duration `yaml:"healthTimeout,omitempty"`
	HealthRetries int             `yaml:"healthRetries,omitempty"`

	// Pin keeps upgrades on a major ("1") or minor ("1.4") line.
	Pin string `yaml:"pin,omitempty"`
	// Hold stops upgrades until a date, or forever.
	Hold *Hold `yaml:"hold,omitempty"`
	// Window is when upgrades may happen.
	Window *Window `yaml:"window,omitempty"`
	// MinAge is how long a release must have been on the channel.
	MinAge config.Duration `yaml:"minAge,omitempty"`
	// Staging is this install's own phasing, counted from when it first
	// saw a release: [{days: 2, percent: 25}, {days: 7, percent: 100}].
	Staging []Stage `yaml:"staging,omitempty"`
	// Keep is how many versions stay on disk (at least 2).
	Keep int `yaml:"keep,omitempty"`
	// MetricsFile is a Prometheus textfile-collector file to keep current.
	MetricsFile string `yaml:"metricsFile,omitempty"`
	// Require makes upgrades wait until the shared telemetry says a
	// release is healthy.
	Require *Require `yaml:"require,omitempty"`
	// Network bounds the registry operations; unset keys keep
	// DefaultNetwork's.
	Network *NetworkConfig `yaml:"network,omitempty"`
	// Cohort orders this install within a rollout: canary, early,
	// default (unset) or late (CohortBucket).
	Cohort string `yaml:"cohort,omitempty"`
	// Analysis judges each hop by the operator's SLIs in Prometheus,
	// after the health check: a failing one rolls the hop back.
	Analysis *analysis.Config `yaml:"analysis,omitempty"`
	// Policy is what the release's signed attestations must say before
	// it is installed: provenance from a source (and builder), an SBOM.
	Policy *Policy `yaml:"policy,omitempty"`

	file string
}

// NetworkConfig is the network section of a subscription.
type NetworkConfig struct {
	ConnectTimeout  config.Duration `yaml:"connectTimeout,omitempty"`
	ResponseTimeout config.Duration `yaml:"responseTimeout,omitempty"`
	// StallTimeout is the window in which a transfer must move at least
	// 1 KiB.
	StallTimeout config.Duration `yaml:"stallTimeout,omitempty"`
}

// network is the subscription's bounds on registry operations.
func (s *Subscription) network() Network {
	n := DefaultNetwork
	if c := s.Network; c != nil {
		for _, set := range []struct {
			dst *time.Duration
			v   config.Duration
		}{{&n.Connect, c.ConnectTimeout}, {&n.Response, c.ResponseTimeout}, {&n.Stall, c.StallTimeout}} {
			if set.v > 0 {
				*set.dst = time.Duration(set.v)
			}
		}
	}
	return n
}

// Hold stops upgrades: until a date, or forever.
type Hold struct {
	// Until is a date (2026-12-24), a time (RFC 3339) or "forever".
	Until string `yaml:"until"`
	// Security lets releases flagged as security fixes through.
	Security bool `yaml:"security,omitempty"`
}

// Window is when upgrades may run: some days, between two times of day,
// in a time zone.
type Window struct {
	Days     []string `yaml:"days,omitempty"`
	Hours    string   `yaml:"hours"`
	TimeZone string   `yaml:"timezone,omitempty"`
}

// Stage is a step of a staging schedule: from this many days after the
// release was first seen, this share of installs takes it.
type Stage struct {
	Days    float64 `yaml:"days"`
	Percent float64 `yaml:"percent"`
}

// Require is what the shared data must say about a release first.
type Require struct {
	// Installs is the least number of installs running it (in a week).
	Installs int `yaml:"installs,omitempty"`
	// Upgrades is the least number of successful upgrades to it (health
	// check and analysis passed): an operator's canaries, reporting to
	// the operator's own collector, gate the other hosts.
	Upgrades int `yaml:"upgrades,omitempty"`
	// Analyzed is the least number of those upgrades that also passed a
	// metric analysis (canaries with an analysis: section).
	Analyzed int `yaml:"analyzed,omitempty"`
	// RollbackRate bounds the share of upgrades rolled back: "<2%" (the
	// upper end of its 95% interval must be below).
	RollbackRate string `yaml:"rollbackRate,omitempty"`
	// Collector overrides the collector the channel head announces.
	Collector string `yaml:"collector,omitempty"`
}

// Expr writes the requirement as telemetry.ParseRequire reads it.
func (r *Require) Expr() string {
	var parts []string
	if r.Installs > 0 {
		parts = append(parts, fmt.Sprintf("installs>=%d", r.Installs))
	}
	if r.Upgrades > 0 {
		parts = append(parts, fmt.Sprintf("upgrades>=%d", r.Upgrades))
	}
	if r.Analyzed > 0 {
		parts = append(parts, fmt.Sprintf("analyzed>=%d", r.Analyzed))
	}
	if r.RollbackRate != "" {
		rate := strings.TrimSpace(r.RollbackRate)
		if !strings.HasPrefix(rate, "<") {
			rate = "<" + rate
		}
		parts = append(parts, "rollback_rate"+rate)
	}
	return strings.Join(parts, ",")
}

// Defaults of a subscription.
const (
	DefaultKeep          = 3
	DefaultHealthRetries = 5
	DefaultHealthTimeout = 60 * time.Second
)

// NewInstallID returns a random install id.
func NewInstallID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// LoadSubscription reads and checks a subscription file.
func LoadSubscription(path string) (*Subscription, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &report.InputError{Err: fmt.Errorf("no subscription at %s: run 'relcheck subscribe REPO --channel C --key cosign.pub --install-dir DIR' first", path)}
	}
	if err != nil {
		return nil, err
	}
	return ParseSubscription(raw, path)
}

// ParseSubscription parses a subscription file's content strictly, as
// relcheck.yaml is: an unknown key (with the closest known one suggested)
// or a bad value is an error naming the file, line and key.
func ParseSubscription(raw []byte, path string) (*Subscription, error) {
	var s Subscription
	root, err := yamlfile.Decode(path, raw, &s)
	if err != nil {
		return nil, err
	}
	s.file = path
	if err := s.Validate(); err != nil {
		var ce *config.Error
		if errors.As(err, &ce) && ce.Line == 0 && ce.Key != "" && root != nil {
			ce.Line = yamlfile.LineOf(root, ce.Key)
		}
		return nil, err
	}
	return &s, nil
}

// Validate checks a subscription's values.
func (s *Subscription) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &config.Error{File: s.file, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case s.Repo == "":
		return bad("repo", "missing: the release repository (REGISTRY/NAME or oci:DIR)")
	case !ValidChannel(s.Channel):
		return bad("channel", "must be edge, beta or stable, not %q", s.Channel)
	case s.Key == "":
		return bad("key", "missing: the maintainers' public key (cosign.pub)")
	case s.InstallDir == "":
		return bad("installDir", "missing")
	case len(s.InstallID) < 16:
		return bad("installID", "must be a random id of at least 16 characters")
	case s.HealthRetries < 0 || s.HealthRetries > 100:
		return bad("healthRetries", "must be between 0 and 100")
	case s.HealthTimeout < 0 || time.Duration(s.HealthTimeout) > 24*time.Hour:
		return bad("healthTimeout", "must be between 0 and 24h")
	case s.MinAge < 0 || time.Duration(s.MinAge) > 3660*24*time.Hour:
		return bad("minAge", "must be between 0 and 3660d")
	case s.Keep != 0 && (s.Keep < 2 || s.Keep > 1000):
		return bad("keep", "must be between 2 and 1000: the running and the previous version stay")
	}
	if _, err := Open(s.Repo, s.Insecure); err != nil {
		return bad("repo", "%v", err)
	}
	if c := s.Network; c != nil {
		for key, d := range map[string]config.Duration{"connectTimeout": c.ConnectTimeout, "responseTimeout": c.ResponseTimeout, "stallTimeout": c.StallTimeout} {
			if d != 0 && (d < config.Duration(100*time.Millisecond) || d > config.Duration(time.Hour)) {
				return bad("network."+key, "must be between 100ms and 1h")
			}
		}
	}
	if s.Pin != "" {
		if _, err := parsePin(s.Pin); err != nil {
			return bad("pin", "%v", err)
		}
	}
	if s.Hold != nil {
		if _, err := s.Hold.until(); err != nil {
			return bad("hold.until", "%v", err)
		}
	}
	if s.Window != nil {
		if _, err := s.Window.parse(); err != nil {
			return bad("window", "%v", err)
		}
	}
	if s.Require != nil {
		if _, err := telemetry.ParseRequire(s.Require.Expr()); err != nil {
			return bad("require", "%v", err)
		}
	}
	if s.Cohort != "" && !slices.Contains(Cohorts, s.Cohort) {
		return bad("cohort", "must be canary, early, default or late, not %q", s.Cohort)
	}
	if s.Policy != nil {
		if key, err := s.Policy.validate(); err != nil {
			return bad("policy."+key, "%v", err)
		}
	}
	if s.Analysis != nil {
		if err := s.Analysis.Validate(); err != nil {
			var ce *config.Error
			if errors.As(err, &ce) {
				return bad("analysis."+ce.Key, "%s", ce.Msg)
			}
			return bad("analysis", "%v", err)
		}
	}
	last := -1.0
	for i, st := range s.Staging {
		if st.Days < 0 || st.Days > 3660 || st.Percent < 0 || st.Percent > 100 || st.Days <= last {
			return bad(fmt.Sprintf("staging[%d]", i), "days must grow (up to 3660) and percent be between 0 and 100")
		}
		last = st.Days
	}
	return nil
}

// Save writes the subscription to path, creating its directory.
func (s *Subscription) Save(path string) error {
	raw, err := yaml.Marshal(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeAtomic(path, append([]byte("# relcheck subscription: see 'relcheck subscribe --help'\n"), raw...), 0o644)
}

func (s *Subscription) keep() int {
	if s.Keep == 0 {
		return DefaultKeep
	}
	return s.Keep
}

// pin is a version line: a major, or a major and minor.
type pin struct {
	major, minor uint64
	hasMinor     bool
}

func parsePin(v string) (pin, error) {
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	var p pin
	var err error
	if len(parts) > 2 {
		return p, fmt.Errorf("%q: pin a major (1) or a minor line (1.4)", v)
	}
	if p.major, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return p, fmt.Errorf("%q: pin a major (1) or a minor line (1.4)", v)
	}
	if len(parts) == 2 {
		p.hasMinor = true
		if p.minor, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
			return p, fmt.Errorf("%q: pin a major (1) or a minor line (1.4)", v)
		}
	}
	return p, nil
}

func (p pin) allows(version string) bool {
	_, v, err := ParseVersion(version)
	if err != nil {
		return false
	}
	return v.Major() == p.major && (!p.hasMinor || v.Minor() == p.minor)
}

// until returns the end of the hold; the zero time means forever.
func (h *Hold) until() (time.Time, error) {
	switch {
	case h.Until == "forever":
		return time.Time{}, nil
	case h.Until == "":
		return time.Time{}, fmt.Errorf("give a date (2026-12-24), a time (RFC 3339) or forever")
	}
	if t, err := time.Parse(time.DateOnly, h.Until); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, h.Until)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: give a date (2026-12-24), a time (RFC 3339) or forever", h.Until)
	}
	return t, nil
}

// window is a parsed Window.
type window struct {
	days       map[time.Weekday]bool
	start, end int // minutes after midnight; end may be below start (past midnight)
	loc        *time.Location
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

func (w *Window) parse() (*window, error) {
	out := &window{days: map[time.Weekday]bool{}, loc: time.Local}
	for _, d := range w.Days {
		wd, ok := weekdays[strings.ToLower(d)[:min(3, len(d))]]
		if !ok {
			return nil, fmt.Errorf("days: %q is not a weekday (mon … sun)", d)
		}
		out.days[wd] = true
	}
	from, to, ok := strings.Cut(w.Hours, "-")
	if !ok {
		return nil, fmt.Errorf("hours: %q is not a range like 02:00-05:00", w.Hours)
	}
	var err error
	if out.start, err = clock(from); err != nil {
		return nil, fmt.Errorf("hours: %v", err)
	}
	if out.end, err = clock(to); err != nil {
		return nil, fmt.Errorf("hours: %v", err)
	}
	if out.start == out.end {
		return nil, fmt.Errorf("hours: %q is empty", w.Hours)
	}
	if w.TimeZone != "" {
		if out.loc, err = time.LoadLocation(w.TimeZone); err != nil {
			return nil, fmt.Errorf("timezone: %v", err)
		}
	}
	return out, nil
}

func clock(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a time of day like 02:00", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// open reports whether t is inside the window; a window that started the
// day before (past midnight) counts for that day.
func (w *window) open(t time.Time) bool {
	t = t.In(w.loc)
	m := t.Hour()*60 + t.Minute()
	day := t.Weekday()
	if w.start < w.end {
		return m >= w.start && m < w.end && w.dayOK(day)
	}
	// Past midnight: the evening part belongs to today, the morning part
	// to yesterday's window.
	if m >= w.start {
		return w.dayOK(day)
	}
	return m < w.end && w.dayOK((day+6)%7)
}

func (w *window) dayOK(d time.Weekday) bool { return len(w.days) == 0 || w.days[d] }

// next returns when the window opens next after t (t itself when open),
// minute by minute in local time so that DST shifts are honoured.
func (w *window) next(t time.Time) time.Time {
	t = t.In(w.loc).Truncate(time.Minute)
	for i := 0; i < 8*24*60; i++ {
		if w.open(t) {
			return t
		}
		t = t.Add(time.Minute)
	}
	return time.Time{}
}

// writeAtomic writes data to path through a temporary file and a rename.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	return atomicfile.Write(path, data, mode)
}

// sortedWeekdays lists a window's days for messages.
func (w *window) String() string {
	var ds []string
	for _, n := range []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"} {
		if w.days[weekdays[n]] {
			ds = append(ds, n)
		}
	}
	if len(ds) == 0 || len(ds) == 7 {
		ds = []string{"daily"}
	}
	return fmt.Sprintf("%s %02d:%02d-%02d:%02d %s", strings.Join(slices.Clip(ds), ","), w.start/60, w.start%60, w.end/60, w.end%60, w.loc)
}
