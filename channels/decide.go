package channels

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"
)

// Bucket places an install in a release's phased rollout:
// sha256(installID ‖ version) mod 10000. A release at rollout P percent
// is offered to the installs whose bucket is strictly below 100·P, and a
// new version reshuffles who is early.
func Bucket(installID, version string) int {
	sum := sha256.Sum256([]byte(installID + version))
	return int(binary.BigEndian.Uint64(sum[:8]) % 10000)
}

// Cohorts order the installs of a rollout, like Zincati's rollout
// wariness: canaries take part from the first percent, early installs by
// 25%, late installs only from 90%.
var Cohorts = []string{"canary", "early", "default", "late"}

// CohortBucket moves a phasing bucket (0–9999) into its cohort's band:
// canary 0–99, early 0–2499, default the bucket itself, late 9000–9999.
// Within a band the order stays the install's own.
func CohortBucket(cohort string, b int) int {
	switch cohort {
	case "canary":
		return b % 100
	case "early":
		return b / 4
	case "late":
		return 9000 + b/10
	}
	return b
}

// basisPoints is a rollout percentage in hundredths of a percent.
func basisPoints(percent float64) int { return int(math.Round(percent * 100)) }

// Covers reports whether a release at rollout percent is offered to the
// install in bucket.
func Covers(percent float64, bucket int) bool { return bucket < basisPoints(percent) }

// Decision is what an upgrade would do, and why.
type Decision struct {
	// Action is install (nothing installed yet), upgrade, rollback (the
	// installed release was halted with a way back), wait (a newer release
	// exists but is not for this install yet) or none.
	Action  Action   `json:"action"`
	From    string   `json:"from,omitempty"`
	Target  string   `json:"target,omitempty"`
	Path    []Hop    `json:"path"`
	Reasons []string `json:"reasons"`
	// NextWindow is when the maintenance window opens, when it is closed.
	NextWindow *time.Time `json:"nextWindow,omitempty"`
}

// Hop is one step of an upgrade path.
type Hop struct {
	Version      string `json:"version"`
	Digest       string `json:"digest"`
	RequiredStop bool   `json:"requiredStop,omitempty"`
	StopReason   string `json:"stopReason,omitempty"`
}

// DecideOptions are the operator's flags.
type DecideOptions struct {
	Phased bool
	// To asks for this version, ignoring phasing, staging, holds, the
	// minimum age, the window and shared data (not halts, pins or
	// signatures).
	To string
	// Shared, when set, says whether the shared telemetry allows a
	// version, and with which figures.
	Shared func(version string) (ok bool, why string)
}

// Decide picks what this install should run from a verified head: the
// newest release that is not halted, not marked bad here, inside the pin,
// old enough, past the hold, covered by the phased rollout (when phased)
// and by the local staging schedule, inside the window — and the path to
// it through required stops. It changes nothing.
func Decide(sub *Subscription, st *LocalState, h *Head, now time.Time, o DecideOptions) (*Decision, error) {
	d := &Decision{From: st.Installed, Path: []Hop{}, Reasons: []string{}}
	say := func(format string, args ...any) { d.Reasons = append(d.Reasons, fmt.Sprintf(format, args...)) }
	var p *pin
	if sub.Pin != "" {
		pp, err := parsePin(sub.Pin)
		if err != nil {
			return nil, err
		}
		p = &pp
	}
	if st.Installed != "" {
		if r := h.Find(st.Installed); r != nil && r.Halted && o.To == "" {
			if r.RollbackTo != "" {
				back := h.Find(r.RollbackTo)
				d.Action, d.Target = ActionRollback, r.RollbackTo
				d.Path = []Hop{hopOf(back)}
				say("%s is halted on %s; the maintainers say to go back to %s", r.Version, h.Channel, r.RollbackTo)
				return d, nil
			}
			say("%s is halted on %s, with no release to go back to yet", r.Version, h.Channel)
		}
	}
	var target *Release
	if o.To != "" {
		r := h.Find(o.To)
		switch {
		case r == nil:
			return nil, inputErrorf("%s is not on %s", o.To, h.Channel)
		case r.Halted:
			return nil, &RefusedError{Msg: fmt.Sprintf("%s is halted on %s", o.To, h.Channel)}
		case p != nil && !p.allows(r.Version):
			return nil, &RefusedError{Msg: fmt.Sprintf("%s is outside the pin %s", o.To, sub.Pin)}
		case st.Installed != "" && compareVersions(o.To, st.Installed) <= 0:
			return nil, inputErrorf("%s is not newer than the installed %s: use 'relcheck rollback' to go back", o.To, st.Installed)
		}
		target = r
		say("--to %s: phasing, staging, holds, the minimum age and the window do not apply", o.To)
	} else {
		rs := slices.Clone(h.Releases)
		slices.SortStableFunc(rs, func(a, b Release) int { return -compareVersions(a.Version, b.Version) })
		newer := 0
		for i := range rs {
			r := &rs[i]
			if st.Installed != "" && compareVersions(r.Version, st.Installed) <= 0 {
				break
			}
			newer++
			if why := skip(sub, st, r, p, now, o.Phased); why != "" {
				say("%s: %s", r.Version, why)
				continue
			}
			if o.Shared != nil {
				ok, why := o.Shared(r.Version)
				if !ok {
					say("%s: waiting for the shared data: %s", r.Version, why)
					continue
				}
				say("%s: the shared data allows it: %s", r.Version, why)
			}
			if !o.Phased && r.Rollout < 100 {
				say("%s is rolled out to %v%% of installs: without --phased this install takes it anyway (the timer's 'upgrade --phased' respects the rollout)", r.Version, r.Rollout)
			}
			target = r
			break
		}
		if target == nil {
			d.Action = ActionNone
			if newer > 0 {
				d.Action = ActionWait
			} else if st.Installed != "" {
				say("%s is the newest release on %s", st.Installed, h.Channel)
			} else {
				say("%s has no releases", h.Channel)
			}
			return d, nil
		}
		if sub.Window != nil {
			w, err := sub.Window.parse()
			if err != nil {
				return nil, err
			}
			if !w.open(now) {
				next := w.next(now)
				d.Action, d.Target, d.NextWindow = ActionWait, target.Version, &next
				say("%s: outside the window (%s): next %s", target.Version, w, next.Format("Mon 2006-01-02 15:04 MST"))
				return d, nil
			}
		}
	}
	d.Target = target.Version
	if st.Installed == "" {
		d.Action = ActionInstall
		d.Path = []Hop{hopOf(target)}
		say("%s is the newest release on %s for this install", target.Version, h.Channel)
		return d, nil
	}
	d.Action = ActionUpgrade
	path, err := Path(h, st.Installed, target.Version)
	if err != nil {
		return nil, err
	}
	for i := range path {
		d.Path = append(d.Path, hopOf(&path[i]))
		if i < len(path)-1 {
			say("%s is a required stop: %s", path[i].Version, path[i].StopReason)
		}
	}
	say("%s is the newest release on %s for this install", target.Version, h.Channel)
	return d, nil
}

func hopOf(r *Release) Hop {
	return Hop{Version: r.Version, Digest: r.Digest, RequiredStop: r.RequiredStop, StopReason: r.StopReason}
}

// skip says why release r is not for this install now ("" if it is).
func skip(sub *Subscription, st *LocalState, r *Release, p *pin, now time.Time, phased bool) string {
	if r.Halted {
		return "halted"
	}
	if v, bad, ok := st.badFor(r); ok {
		as := ""
		if v != r.Version {
			as = " as " + v
		}
		return fmt.Sprintf("failed here%s at %s (%s); marked bad: not tried again until 'relcheck unhold %s'", as, bad.At.Format(time.RFC3339), bad.Reason, v)
	}
	if h, ok := st.holdFor(r, now); ok {
		return "held: " + h.String()
	}
	if p != nil && !p.allows(r.Version) {
		return fmt.Sprintf("outside the pin %s", sub.Pin)
	}
	held := false
	if sub.Hold != nil {
		until, _ := sub.Hold.until()
		if until.IsZero() || now.Before(until) {
			held = !(sub.Hold.Security && r.Security)
		}
	}
	if held {
		if sub.Hold.Until == "forever" {
			return "held (hold: forever)"
		}
		return fmt.Sprintf("held until %s", sub.Hold.Until)
	}
	if age := now.Sub(r.Published); age < time.Duration(sub.MinAge) {
		return fmt.Sprintf("too new: on the channel for %s, minAge %s", roundAge(age), sub.MinAge)
	}
	b := CohortBucket(sub.Cohort, Bucket(sub.InstallID, r.Version))
	if phased && !Covers(r.Rollout, b) {
		cohort := ""
		if sub.Cohort != "" && sub.Cohort != "default" {
			cohort = " (cohort " + sub.Cohort + ")"
		}
		return fmt.Sprintf("deferred by phasing: bucket %d%s ≥ %d", b, cohort, basisPoints(r.Rollout))
	}
	if len(sub.Staging) > 0 {
		seen, ok := st.FirstSeen[r.Version]
		if !ok {
			seen = now
		}
		days := now.Sub(seen).Hours() / 24
		pct := 0.0
		for _, s := range sub.Staging {
			if days >= s.Days {
				pct = s.Percent
			}
		}
		if !Covers(pct, b) {
			return fmt.Sprintf("deferred by staging: day %.1f of the schedule allows %v%%, bucket %d ≥ %d", days, pct, b, basisPoints(pct))
		}
	}
	return ""
}

func roundAge(d time.Duration) time.Duration {
	if d > time.Hour {
		return d.Round(time.Hour)
	}
	return d.Round(time.Minute)
}
