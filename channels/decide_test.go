package channels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/relcheck/relcheck/config"
)

// TestPhasingShares: over 10,000 install ids, the share offered a release
// at rollout P is within ±1.5 points of P, none at 0% and all at 100%; and
// another version reshuffles who is early.
func TestPhasingShares(t *testing.T) {
	const n = 10000
	// Random-looking ids from a fixed seed: the test is reproducible.
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())
	}
	for _, p := range []float64{0, 1, 10, 25, 50, 99, 100} {
		got := 0
		for _, id := range ids {
			if Covers(p, Bucket(id, "v1.4.0")) {
				got++
			}
		}
		share := 100 * float64(got) / n
		switch {
		case p == 0 && got != 0, p == 100 && got != n:
			t.Errorf("rollout %v%%: %d of %d installs", p, got, n)
		case math.Abs(share-p) > 1.5:
			t.Errorf("rollout %v%%: %.2f%% of installs", p, share)
		}
		t.Logf("rollout %5.1f%%: %6.2f%% of %d installs", p, share, n)
	}
	early, both := 0, 0
	for _, id := range ids {
		a, b := Covers(25, Bucket(id, "v1.4.0")), Covers(25, Bucket(id, "v1.5.0"))
		if a {
			early++
			if b {
				both++
			}
		}
	}
	// Independent versions: about a quarter of the early ones are early again.
	if frac := float64(both) / float64(early); frac < 0.2 || frac > 0.3 {
		t.Errorf("%d of %d installs early for v1.4.0 are early for v1.5.0 too (%.2f): versions do not reshuffle", both, early, frac)
	}
}

func day(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func testHead(rs ...Release) *Head {
	return &Head{Project: "p", Channel: "stable", Seq: 3, Epoch: 1, Issued: day("2026-11-01T00:00:00Z"), Expires: day("2026-11-08T00:00:00Z"), Releases: rs}
}

func rel(v string, rollout float64, published string) Release {
	return Release{Version: v, Digest: "sha256:" + strings.Repeat(fmt.Sprint(len(v)%10), 64), Published: day(published), Rollout: rollout}
}

// idIn finds an install id whose bucket for version is inside [lo, hi).
func idIn(version string, lo, hi int) string {
	for i := 0; ; i++ {
		id := fmt.Sprintf("install-%016d", i)
		if b := Bucket(id, version); b >= lo && b < hi {
			return id
		}
	}
}

func TestDecide(t *testing.T) {
	now := day("2026-11-05T12:00:00Z") // a Thursday
	h := testHead(rel("v1.0.0", 100, "2026-10-01T00:00:00Z"), rel("v1.1.0", 100, "2026-10-20T00:00:00Z"), rel("v1.2.0", 25, "2026-11-04T00:00:00Z"))
	early, late := idIn("v1.2.0", 0, 2500), idIn("v1.2.0", 2500, 10000)
	sub := func(id string) *Subscription {
		return &Subscription{Repo: "oci:x", Channel: "stable", Key: "k", InstallDir: "/d", InstallID: id}
	}
	cases := []struct {
		name   string
		sub    *Subscription
		st     LocalState
		o      DecideOptions
		action Action
		target string
		reason string
	}{
		{"fresh install takes the newest", sub(late), LocalState{}, DecideOptions{}, "install", "v1.2.0", ""},
		{"fresh phased install takes the newest covering release", sub(late), LocalState{}, DecideOptions{Phased: true}, "install", "v1.1.0", "deferred by phasing: bucket"},
		{"early install takes the phased release", sub(early), LocalState{Installed: "v1.0.0"}, DecideOptions{Phased: true}, "upgrade", "v1.2.0", ""},
		{"late install waits for the phased release", sub(late), LocalState{Installed: "v1.1.0"}, DecideOptions{Phased: true}, "wait", "", "v1.2.0: deferred by phasing: bucket"},
		{"nothing newer", sub(late), LocalState{Installed: "v1.2.0"}, DecideOptions{Phased: true}, "none", "", "v1.2.0 is the newest release on stable"},
		{"--to ignores phasing", sub(late), LocalState{Installed: "v1.1.0"}, DecideOptions{Phased: true, To: "v1.2.0"}, "upgrade", "v1.2.0", "--to v1.2.0"},
		{"minimum age", func() *Subscription { s := sub(early); s.MinAge = config.Duration(72 * time.Hour); return s }(), LocalState{Installed: "v1.0.0"}, DecideOptions{}, "upgrade", "v1.1.0", "v1.2.0: too new: on the channel for 36h0m0s, minAge 3d"},
		{"pin to a minor line", func() *Subscription { s := sub(early); s.Pin = "1.1"; return s }(), LocalState{Installed: "v1.0.0"}, DecideOptions{}, "upgrade", "v1.1.0", "v1.2.0: outside the pin 1.1"},
		{"hold until a date", func() *Subscription { s := sub(early); s.Hold = &Hold{Until: "2026-12-01"}; return s }(), LocalState{Installed: "v1.0.0"}, DecideOptions{}, "wait", "", "held until 2026-12-01"},
		{"expired hold", func() *Subscription { s := sub(early); s.Hold = &Hold{Until: "2026-11-01"}; return s }(), LocalState{Installed: "v1.0.0"}, DecideOptions{}, "upgrade", "v1.2.0", ""},
		{"bad here", sub(early), LocalState{Installed: "v1.1.0", Bad: map[string]BadMark{"v1.2.0": {At: now, Reason: "health: exit 1"}}}, DecideOptions{}, "wait", "", "v1.2.0: failed here"},
		{"window closed", func() *Subscription {
			s := sub(early)
			s.Window = &Window{Days: []string{"sat", "sun"}, Hours: "02:00-05:00", TimeZone: "Europe/Berlin"}
			return s
		}(), LocalState{Installed: "v1.1.0"}, DecideOptions{}, "wait", "v1.2.0", "outside the window (sat,sun 02:00-05:00 Europe/Berlin): next Sat 2026-11-07 02:00 CET"},
		{"window open", func() *Subscription {
			s := sub(early)
			s.Window = &Window{Hours: "12:00-14:00"}
			return s
		}(), LocalState{Installed: "v1.1.0"}, DecideOptions{}, "upgrade", "v1.2.0", ""},
		{"staging day 0", func() *Subscription {
			s := sub(early)
			s.Staging = []Stage{{Days: 2, Percent: 25}, {Days: 7, Percent: 100}}
			return s
		}(), LocalState{Installed: "v1.1.0", FirstSeen: map[string]time.Time{"v1.2.0": now.Add(-time.Hour)}}, DecideOptions{}, "wait", "", "deferred by staging: day 0.0 of the schedule allows 0%"},
		{"staging day 3, early bucket", func() *Subscription {
			s := sub(early)
			s.Staging = []Stage{{Days: 2, Percent: 25}, {Days: 7, Percent: 100}}
			return s
		}(), LocalState{Installed: "v1.1.0", FirstSeen: map[string]time.Time{"v1.2.0": now.Add(-72 * time.Hour)}}, DecideOptions{}, "upgrade", "v1.2.0", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := Decide(c.sub, &c.st, h, now, c.o)
			if err != nil {
				t.Fatal(err)
			}
			if d.Action != c.action || d.Target != c.target {
				t.Errorf("action %s target %s, want %s %s; reasons %q", d.Action, d.Target, c.action, c.target, d.Reasons)
			}
			if c.reason != "" && !strings.Contains(strings.Join(d.Reasons, "\n"), c.reason) {
				t.Errorf("reasons %q lack %q", d.Reasons, c.reason)
			}
		})
	}

	// Refusals of --to.
	for _, c := range []struct{ to, installed, pin, want string }{
		{"v9.0.0", "v1.0.0", "", "is not on stable"},
		{"v1.0.0", "v1.1.0", "", "is not newer than the installed v1.1.0"},
		{"v1.2.0", "v1.0.0", "1.1", "outside the pin 1.1"},
	} {
		s := sub(early)
		s.Pin = c.pin
		if _, err := Decide(s, &LocalState{Installed: c.installed}, h, now, DecideOptions{To: c.to}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--to %s: %v, want %q", c.to, err, c.want)
		}
	}

	// A halted release: skipped, and installs of it go back.
	hh := testHead(rel("v1.0.0", 100, "2026-10-01T00:00:00Z"), rel("v1.1.0", 100, "2026-10-20T00:00:00Z"))
	hh.Releases[1].Halted, hh.Releases[1].RollbackTo = true, "v1.0.0"
	d, _ := Decide(sub(early), &LocalState{Installed: "v1.0.0"}, hh, now, DecideOptions{})
	if d.Action != "wait" || !strings.Contains(d.Reasons[0], "v1.1.0: halted") {
		t.Errorf("halted release: %+v", d)
	}
	d, _ = Decide(sub(early), &LocalState{Installed: "v1.1.0"}, hh, now, DecideOptions{})
	if d.Action != "rollback" || d.Target != "v1.0.0" || len(d.Path) != 1 {
		t.Errorf("installed halted release: %+v", d)
	}
	if _, err := Decide(sub(early), &LocalState{Installed: "v1.0.0"}, hh, now, DecideOptions{To: "v1.1.0"}); err == nil {
		t.Error("--to a halted release was accepted")
	}
}

// TestWindowDST: the window follows the zone's wall clock across the
// change to winter time.
func TestWindowDST(t *testing.T) {
	w, err := (&Window{Days: []string{"sun"}, Hours: "02:00-04:00", TimeZone: "Europe/Berlin"}).parse()
	if err != nil {
		t.Fatal(err)
	}
	// 2026-10-25 is the Sunday clocks go back in Berlin (03:00 CEST → 02:00 CET).
	from := day("2026-10-24T12:00:00Z")
	next := w.next(from)
	if got := next.Format("2006-01-02 15:04 MST"); got != "2026-10-25 02:00 CEST" {
		t.Errorf("next window after %s: %s", from, got)
	}
	// 02:30 CET (after the change) is 01:30 UTC; still inside.
	if !w.open(day("2026-10-25T01:30:00Z")) {
		t.Error("02:30 CET on the changeover Sunday is outside the window")
	}
	if w.open(day("2026-10-25T03:00:00Z")) { // 04:00 CET
		t.Error("04:00 CET is inside the window")
	}
	// A window past midnight belongs to the day it starts.
	w2, _ := (&Window{Days: []string{"fri"}, Hours: "23:00-01:00", TimeZone: "UTC"}).parse()
	if !w2.open(day("2026-11-07T00:30:00Z")) { // Saturday 00:30
		t.Error("Saturday 00:30 is outside Friday's 23:00-01:00")
	}
	if w2.open(day("2026-11-08T00:30:00Z")) { // Sunday 00:30
		t.Error("Sunday 00:30 is inside Friday's window")
	}
}

func TestSubscriptionParse(t *testing.T) {
	good := `repo: oci:/srv/releases
channel: stable
key: /etc/relcheck/cosign.pub
installDir: /opt/app
installID: 0123456789abcdef0123
pin: "1.4"
hold: {until: 2026-12-24, security: true}
window: {days: [sat, sun], hours: "02:00-05:00", timezone: Europe/Berlin}
minAge: 3d
staging: [{days: 2, percent: 25}, {days: 7, percent: 100}]
`
	s, err := ParseSubscription([]byte(good), "sub.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(s.MinAge) != 72*time.Hour || s.Window.TimeZone != "Europe/Berlin" || len(s.Staging) != 2 {
		t.Errorf("parsed %+v", s)
	}
	for bad, want := range map[string]string{
		good + "colour: blue\n":                                   "sub.yaml:11: colour: unknown key \"colour\"",
		strings.Replace(good, "window:", "windw:", 1):             "sub.yaml:8: windw: unknown key \"windw\" (did you mean \"window\"?)",
		strings.Replace(good, "stable", "nightly", 1):             "channel: must be edge, beta or stable",
		strings.Replace(good, `"1.4"`, `"1.x"`, 1):                "pin: \"1.x\"",
		strings.Replace(good, "2026-12-24", "christmas", 1):       "hold.until",
		strings.Replace(good, "02:00-05:00", "2am", 1):            "window: hours",
		strings.Replace(good, "Europe/Berlin", "Mars/Olympus", 1): "window: timezone",
		strings.Replace(good, "percent: 100", "percent: 120", 1):  "staging[1]",
		strings.Replace(good, "0123456789abcdef0123", "x", 1):     "installID",
		// Numbers have ranges, checked when the file is read.
		good + "keep: 9000000000000000000\n":                     "keep: must be between 2 and 1000",
		good + "healthRetries: 9000000000000000000\n":            "healthRetries: must be between 0 and 100",
		good + "healthTimeout: 100000d\n":                        "healthTimeout: must be between 0 and 24h",
		strings.Replace(good, "minAge: 3d", "minAge: 99999d", 1): "minAge: must be between 0 and 3660d",
		strings.Replace(good, "days: 7", "days: 1e300", 1):       "staging[1]",
	} {
		if _, err := ParseSubscription([]byte(bad), "sub.yaml"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want %q", err, want)
		}
	}
}

// TestCohorts: canaries are offered a release from the first percent, late
// installs only from 90%, whatever their own bucket.
func TestCohorts(t *testing.T) {
	for b := 0; b < 10000; b += 37 {
		if c := CohortBucket("canary", b); !Covers(1, c) {
			t.Fatalf("canary bucket %d → %d: not covered at 1%%", b, c)
		}
		if c := CohortBucket("early", b); !Covers(25, c) {
			t.Fatalf("early bucket %d → %d: not covered at 25%%", b, c)
		}
		if c := CohortBucket("late", b); Covers(90, c) || !Covers(100, c) {
			t.Fatalf("late bucket %d → %d: covered at 90%% or not at 100%%", b, c)
		}
		if CohortBucket("default", b) != b || CohortBucket("", b) != b {
			t.Fatalf("default bucket %d moved", b)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	for in, want := range map[string]Schedule{"10%/6h": {10, 6 * time.Hour}, " 2.5% / 30m ": {2.5, 30 * time.Minute}, "100%/1d": {100, 24 * time.Hour}} {
		got, err := ParseSchedule(in)
		if err != nil || got != want {
			t.Errorf("ParseSchedule(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "10%", "10/6h", "0%/6h", "150%/6h", "10%/soon", "10%/10ms", "NaN%/6h"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) accepted", bad)
		}
	}
	if s := (Schedule{10, 6 * time.Hour}).String(); s != "10%/6h" {
		t.Errorf("String = %s", s)
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"10%/6h", "1%/1s", "50%/90m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseSchedule(s)
		if err != nil {
			return
		}
		if !(sc.Step > 0 && sc.Step <= 100) || sc.Period < time.Second {
			t.Errorf("%q parsed to %v", s, sc)
		}
		if again, err := ParseSchedule(sc.String()); err != nil || again != sc {
			t.Errorf("%q → %v → %v, %v", s, sc, again, err)
		}
	})
}
