package config

import (
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
)

func TestUntil(t *testing.T) {
	u, err := ParseUntil("v1.6.0")
	if err != nil {
		t.Fatal(err)
	}
	if u.Expired(semver.MustParse("1.5.9"), time.Now()) || !u.Expired(semver.MustParse("1.6.0"), time.Now()) {
		t.Error("version expiry wrong")
	}
	d, err := ParseUntil("2026-12-31")
	if err != nil {
		t.Fatal(err)
	}
	if d.Expired(nil, time.Date(2026, 12, 30, 23, 0, 0, 0, time.UTC)) || !d.Expired(nil, time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)) {
		t.Error("date expiry wrong")
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 720 * time.Hour, "1d12h": 36 * time.Hour, "90m": 90 * time.Minute} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "1x", "xd"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", in)
		}
	}
}
