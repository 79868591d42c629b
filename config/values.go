// Package config is the vocabulary of relcheck's settings files
// (relcheck.yaml, a subscription, a perf scenario): durations with days,
// percentages, suppression expiry, and the error that names the file, line
// and key of a bad value. Each gate owns the type of its own section; the
// file itself is read by package check.
package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written in Go syntax, plus "d" for days ("30d",
// "1d12h").
type Duration time.Duration

// ParseDuration parses Go duration syntax extended with a day unit.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var days int64
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("invalid duration %q: days must be a whole number before \"d\"", s)
		}
		days = n
		s = s[i+1:]
		if s == "" {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use Go syntax plus d for days, like 30d or 1h30m", s)
	}
	return time.Duration(days)*24*time.Hour + d, nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as ParseDuration reads it.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

func (d Duration) String() string {
	t := time.Duration(d)
	if t > 0 && t%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", t/(24*time.Hour))
	}
	return t.String()
}

// Percent is a percentage written as "5%" or a plain number 5.
type Percent float64

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(n.Value), "%"))
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("invalid percentage %q: write it like 5%%", n.Value)
	}
	*p = Percent(v)
	return nil
}

// Until is the parsed expiry of a suppression: a version or a date.
type Until struct {
	Version *semver.Version
	Date    time.Time
}

// ParseUntil parses an api.ignore until value.
func ParseUntil(s string) (Until, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return Until{Date: t}, nil
	}
	if strings.HasPrefix(s, "v") {
		if v, err := semver.StrictNewVersion(strings.TrimPrefix(s, "v")); err == nil {
			return Until{Version: v}, nil
		}
	}
	return Until{}, fmt.Errorf("until %q is neither a version like v1.6.0 nor a date like 2026-12-31", s)
}

// Expired reports whether the suppression no longer applies, given the next
// version and today's date.
func (u Until) Expired(next *semver.Version, now time.Time) bool {
	if u.Version != nil {
		return next != nil && !next.LessThan(u.Version)
	}
	return !u.Date.IsZero() && !now.Before(u.Date)
}
