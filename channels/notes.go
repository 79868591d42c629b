package channels

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/relcheck/relcheck/report"
)

// Upgrade notes: what a release changes for the people who run it, from
// the gates' report of its commit — the API verdict with its reasons and
// findings, the migrations (their locks and blocking time, as the
// migrations gate measured them), the perf verdicts — attached to the
// release as a signed attestation so that operators read them before the
// upgrade (channel show --notes).

// PredicateUpgradeNotes is the upgrade notes' predicate type.
const PredicateUpgradeNotes = "https://github.com/relcheck/relcheck/upgrade-notes/v1"

// UpgradeNotes are a release's notes.
type UpgradeNotes struct {
	Version string `json:"version"`
	Base    string `json:"base,omitempty"`
	// Bump and Reasons are the version the changes asked for, and why.
	Bump    string   `json:"bump,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
	// RequiredStop: every upgrade path passes through this release.
	RequiredStop bool        `json:"requiredStop,omitempty"`
	Gates        []NotesGate `json:"gates"`
}

// NotesGate is one gate's part of the notes.
type NotesGate struct {
	Name    string   `json:"name"`
	Status  string   `json:"status"`
	Summary string   `json:"summary"`
	Items   []string `json:"items,omitempty"`
}

// NotesFromReport writes a release's notes from its commit's report.
func NotesFromReport(rep *report.Report, version string, requiredStop bool) UpgradeNotes {
	n := UpgradeNotes{Version: version, Base: rep.Base, RequiredStop: requiredStop}
	if rep.Version != nil {
		n.Bump, n.Reasons = rep.Version.Bump, rep.Version.Reasons
	}
	for _, c := range rep.Checks {
		g := NotesGate{Name: c.Name, Status: string(c.Status), Summary: c.Summary}
		for _, f := range c.Findings {
			if f.Suppressed != "" {
				continue
			}
			msg, _, _ := strings.Cut(f.Message, "\n")
			if f.Symbol != "" && !strings.Contains(msg, f.Symbol) {
				msg = f.Symbol + ": " + msg
			}
			g.Items = append(g.Items, fmt.Sprintf("%s [%s]", msg, f.Rule))
		}
		g.Items = append(g.Items, c.Notes...)
		n.Gates = append(n.Gates, g)
	}
	slices.SortFunc(n.Gates, func(a, b NotesGate) int { return strings.Compare(a.Name, b.Name) })
	return n
}

// Text is the notes for a person.
func (n UpgradeNotes) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Upgrade notes of %s", n.Version)
	if n.Base != "" {
		fmt.Fprintf(&b, " (since %s)", n.Base)
	}
	b.WriteString("\n")
	if n.Bump != "" {
		fmt.Fprintf(&b, "  version: %s", n.Bump)
		if len(n.Reasons) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(n.Reasons, "; "))
		}
		b.WriteString("\n")
	}
	if n.RequiredStop {
		b.WriteString("  a required stop: every upgrade passes through this release\n")
	}
	for _, g := range n.Gates {
		fmt.Fprintf(&b, "  %s: %s\n", g.Name, orNone(g.Summary))
		for _, it := range g.Items {
			fmt.Fprintf(&b, "    - %s\n", it)
		}
	}
	return b.String()
}

// Notes are the verified upgrade notes of manifest d (nil when it has
// none signed by the key).
func (v *Verifier) Notes(ctx context.Context, st Store, d v1.Hash) (*UpgradeNotes, error) {
	stmts, err := v.Attestations(ctx, st, d)
	if err != nil {
		return nil, err
	}
	for _, s := range stmts {
		if s.PredicateType != PredicateUpgradeNotes {
			continue
		}
		var n UpgradeNotes
		if err := json.Unmarshal(s.Predicate, &n); err != nil {
			return nil, verifyErrorf("the upgrade notes of %s: %v", d, err)
		}
		return &n, nil
	}
	return nil, nil
}
