package channels

import (
	"fmt"
	"slices"
	"time"
)

// What an operator decided on this install, and what failed here, kept in
// its state so that a timer run, a head refresh or a restart does not undo
// it: holds (relcheck hold, and the hold a manual rollback leaves on the
// version it left), and bad marks by digest (a release that failed its
// health check, under any version name it is promoted to).

// HoldMark keeps a version, or every upgrade, from being installed here.
type HoldMark struct {
	// Version is the held release; "" holds every upgrade.
	Version string    `json:"version,omitempty"`
	At      time.Time `json:"at"`
	// Until ends the hold; zero: until unheld (or superseded).
	Until  time.Time `json:"until,omitzero"`
	Reason string    `json:"reason"`
	// Superseded ends the hold once a newer release than Version is on
	// the channel: the hold of a manual rollback.
	Superseded bool `json:"superseded,omitempty"`
}

// String says what the hold holds, why and until when.
func (h HoldMark) String() string {
	what := "every upgrade"
	if h.Version != "" {
		what = h.Version
	}
	until := "until unheld"
	switch {
	case !h.Until.IsZero():
		until = "until " + h.Until.Format(time.RFC3339)
	case h.Superseded:
		until = "until a newer release is on the channel, or unheld"
	}
	return fmt.Sprintf("%s held since %s (%s), %s", what, h.At.Format(time.RFC3339), h.Reason, until)
}

// Hold records a hold, replacing one of the same version.
func (st *LocalState) Hold(h HoldMark) {
	st.Holds = slices.DeleteFunc(st.Holds, func(o HoldMark) bool { return o.Version == h.Version })
	st.Holds = append(st.Holds, h)
}

// Unhold removes the hold of version ("": the hold of every upgrade) and,
// for a version, its bad mark: the operator asks for it to be tried
// again. It reports what it removed.
func (st *LocalState) Unhold(version string) (hold, bad bool) {
	n := len(st.Holds)
	st.Holds = slices.DeleteFunc(st.Holds, func(o HoldMark) bool { return o.Version == version })
	hold = len(st.Holds) < n
	if version != "" {
		if m, ok := st.Bad[version]; ok {
			delete(st.Bad, version)
			bad = true
			// The same digest under other version names, too.
			for v, o := range st.Bad {
				if m.Digest != "" && o.Digest == m.Digest {
					delete(st.Bad, v)
				}
			}
		}
	}
	return hold, bad
}

// holdFor is the hold that keeps r from this install at now, if any.
func (st *LocalState) holdFor(r *Release, now time.Time) (HoldMark, bool) {
	for _, h := range st.Holds {
		if h.Version != "" && h.Version != r.Version {
			continue
		}
		if !h.Until.IsZero() && !now.Before(h.Until) {
			continue
		}
		return h, true
	}
	return HoldMark{}, false
}

// badFor is the mark of a release that failed here: by version, or by
// digest under another version name (promoted from beta to stable).
func (st *LocalState) badFor(r *Release) (string, BadMark, bool) {
	if m, ok := st.Bad[r.Version]; ok {
		return r.Version, m, true
	}
	for v, m := range st.Bad {
		if m.Digest != "" && m.Digest == r.Digest {
			return v, m, true
		}
	}
	return "", BadMark{}, false
}

// expireHolds drops holds whose date passed and rollback holds whose
// version a newer release on the head supersedes.
func (st *LocalState) expireHolds(h *Head, now time.Time) {
	st.Holds = slices.DeleteFunc(st.Holds, func(o HoldMark) bool {
		if !o.Until.IsZero() && !now.Before(o.Until) {
			return true
		}
		if !o.Superseded {
			return false
		}
		for _, r := range h.Releases {
			if !r.Halted && compareVersions(r.Version, o.Version) > 0 {
				return true
			}
		}
		return false
	})
}

// Edit changes the install's state under its lock: what hold and unhold
// do. f's error leaves the state as it was.
func (in *Installer) Edit(f func(*LocalState) error) error {
	unlock, err := in.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := in.LoadState()
	if err != nil {
		return err
	}
	if err := f(st); err != nil {
		return err
	}
	return in.SaveState(st)
}

// Interrupted is an install step that did not finish: 'relcheck recover'
// (or the next run) finishes or undoes it.
type Interrupted struct {
	Action  Action    `json:"action"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to"`
	Step    string    `json:"step"`
	Started time.Time `json:"started"`
}

// Interrupted is the install's interrupted step, nil when there is none.
func (in *Installer) Interrupted() (*Interrupted, error) {
	j, err := in.loadJournal()
	if err != nil || j == nil {
		return nil, err
	}
	return &Interrupted{Action: j.Action, From: j.From, To: j.To, Step: j.Step, Started: j.Started}, nil
}
