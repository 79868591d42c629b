package channels

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/relcheck/relcheck/config"
)

// A scheduled rollout advances itself (Ubuntu's phased updates: +10%
// every 6 h), as long as the shared telemetry says the release holds up,
// and halts it when it does not: a release that fails in the field stops
// spreading without a person.

// Schedule is the pace of a rollout: Step percent every Period.
type Schedule struct {
	Step   float64
	Period time.Duration
}

// ParseSchedule parses "10%/6h".
func ParseSchedule(s string) (Schedule, error) {
	step, period, ok := strings.Cut(strings.TrimSpace(s), "/")
	pct, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(step), "%"), 64)
	if !ok || err != nil || !strings.HasSuffix(strings.TrimSpace(step), "%") || !(pct > 0 && pct <= 100) {
		return Schedule{}, fmt.Errorf("%q is not a schedule like 10%%/6h (a step above 0%% and at most 100%%, then a period)", s)
	}
	d, err := config.ParseDuration(strings.TrimSpace(period))
	if err != nil || d < time.Second {
		return Schedule{}, fmt.Errorf("%q is not a schedule like 10%%/6h: the period must be a duration of at least 1s", s)
	}
	return Schedule{Step: pct, Period: d}, nil
}

func (s Schedule) String() string {
	d := s.Period.String()
	switch {
	case s.Period%time.Hour == 0:
		d = fmt.Sprintf("%dh", s.Period/time.Hour)
	case s.Period%time.Minute == 0:
		d = fmt.Sprintf("%dm", s.Period/time.Minute)
	}
	return strconv.FormatFloat(s.Step, 'g', -1, 64) + "%/" + d
}

// Judgement is what the shared data says about a release in flight.
type Judgement int

const (
	// JudgeHold: not enough data to tell; the rollout stays.
	JudgeHold Judgement = iota
	// JudgePass: the release holds up; the rollout takes its next step.
	JudgePass
	// JudgeFail: the release does not hold up; it is halted.
	JudgeFail
)

// AdvanceResult is what Advance did.
type AdvanceResult struct {
	// Action is none (no release in flight), waiting (the period has not
	// passed), held, advanced or halted.
	Action  string  `json:"action"`
	Version string  `json:"version,omitempty"`
	From    float64 `json:"from"`
	To      float64 `json:"to"`
	// RollbackTo is where installs of a halted release go back to.
	RollbackTo string    `json:"rollbackTo,omitempty"`
	Why        string    `json:"why"`
	Next       time.Time `json:"next,omitzero"`
	Head       *Head     `json:"-"`
}

// Advance takes one step of channel's rollout on schedule: the newest
// release in flight (not halted, below 100%) is halted at once (installs
// of it go back to the release before) when judge fails it, kept when
// judge holds, and widened by a step when judge passes it and the period
// since its last change has passed. For the maintainers' scheduled CI job.
func (p *Publisher) Advance(ctx context.Context, channel string, s Schedule, judge func(*Release, *Head) (Judgement, string, error)) (*AdvanceResult, error) {
	v, err := p.Signer.Verifier()
	if err != nil {
		return nil, err
	}
	h, _, err := ReadHead(ctx, p.Store, channel, v)
	if err != nil {
		return nil, err
	}
	var r, before *Release
	for i := len(h.Releases) - 1; i >= 0; i-- {
		c := &h.Releases[i]
		if c.Halted {
			continue
		}
		if r == nil && c.Rollout < 100 {
			r = c
			continue
		}
		if r != nil && compareVersions(c.Version, r.Version) < 0 {
			before = c
			break
		}
	}
	if r == nil {
		return &AdvanceResult{Action: "none", Why: fmt.Sprintf("no release on %s is rolling out (all at 100%% or halted)", channel), Head: h}, nil
	}
	res := &AdvanceResult{Version: r.Version, From: r.Rollout, To: r.Rollout, Head: h}
	// The data first: a release that fails is halted at once, whatever
	// the schedule; one that passes waits for its period.
	j, why, err := judge(r, h)
	if err != nil {
		return nil, err
	}
	res.Why = why
	switch j {
	case JudgeHold:
		res.Action = "held"
		return res, nil
	case JudgeFail:
		rollbackTo := ""
		if before != nil {
			rollbackTo = before.Version
		}
		if res.Head, err = p.Halt(ctx, r.Version, channel, rollbackTo); err != nil {
			return nil, err
		}
		res.Action, res.RollbackTo = "halted", rollbackTo
		return res, &RefusedError{Msg: fmt.Sprintf("%s halted on %s at %v%%: the shared data says it does not hold up (%s)%s", r.Version, channel, r.Rollout, why, orRollback(rollbackTo))}
	}
	changed := r.RolloutChanged
	if changed.IsZero() {
		changed = r.Published
	}
	if next := changed.Add(s.Period); p.now().Before(next) {
		res.Action, res.Next = "waiting", next
		res.Why = fmt.Sprintf("%s has been at %v%% since %s and holds up; the schedule %s takes the next step at %s", r.Version, r.Rollout, changed.Format(time.RFC3339), s, next.Format(time.RFC3339))
		return res, nil
	}
	to := min(100, r.Rollout+s.Step)
	if res.Head, err = p.Rollout(ctx, r.Version, channel, to, nil); err != nil {
		return nil, err
	}
	res.Action, res.To = "advanced", to
	return res, nil
}

func orRollback(v string) string {
	if v == "" {
		return ""
	}
	return "; installs of it go back to " + v
}
