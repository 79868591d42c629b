package channels

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relcheck/relcheck/report"
)

// VerifyHead reads a channel's head and checks it as a client must before
// believing it: signed by v, not expired, and not older than the newest
// head trust has accepted for the repository (repo names it there) — nor
// the same seq with other content. It does not record the head: Record it
// once what depends on it is done.
func VerifyHead(ctx context.Context, st Store, repo, channel string, v *Verifier, trust *Trust, now time.Time) (*Head, v1.Hash, error) {
	h, d, err := ReadHead(ctx, st, channel, v)
	if err != nil {
		return nil, d, movedBack(ctx, st, repo, channel, d, trust, err)
	}
	if err := CheckFresh(h, now); err != nil {
		return nil, d, err
	}
	if err := trust.Check(repo, h, d.String()); err != nil {
		return nil, d, err
	}
	return h, d, nil
}

// movedBack says why an unsigned head was refused when it is an older head
// than one seen here: superseded heads lose their signatures, so a head
// tag moved back usually points at an unsigned head. Otherwise err.
func movedBack(ctx context.Context, st Store, repo, channel string, d v1.Hash, trust *Trust, err error) error {
	var ve *VerifyError
	if !errors.As(err, &ve) || d == (v1.Hash{}) || trust == nil {
		return err
	}
	if _, serr := st.Resolve(ctx, SignatureTag(d)); serr == nil {
		return err // signed, but not validly: that is the finding
	}
	old, rerr := readHeadAt(ctx, st, d)
	if rerr != nil || old.Channel != channel {
		return err
	}
	last, ok, lerr := trust.Last(repo, channel)
	if lerr != nil || !ok || !older(old, &Head{Epoch: last.Epoch, Seq: last.Seq}) {
		return err
	}
	return verifyErrorf("the %s head of %s is an unsigned head of seq %d, older than seq %d seen on %s: refusing a rollback of the channel (superseded heads lose their signatures)",
		channel, repo, old.Seq, last.Seq, last.Seen.UTC().Format(time.RFC3339))
}

// CheckProject refuses a head of another project than the one an install
// subscribed to (none: any). A key several projects share signs heads of
// each; without this, one project's repository could serve another's.
func CheckProject(h *Head, project string) error {
	if project != "" && h.Project != project {
		return verifyErrorf("the %s head is of project %q, but this install follows %q: refusing it", h.Channel, h.Project, project)
	}
	return nil
}

// HeadProject reads a channel's head, checks its signature and expiry, and
// returns the project it is of: what a new subscription binds to.
func HeadProject(ctx context.Context, st Store, channel string, v *Verifier, now time.Time) (string, error) {
	h, _, err := ReadHead(ctx, st, channel, v)
	if err != nil {
		return "", err
	}
	if err := CheckFresh(h, now); err != nil {
		return "", err
	}
	return h.Project, nil
}

// VerifiedHead is a channel's head that passed verification.
type VerifiedHead struct {
	*Head
	Digest   string `json:"digest"`
	Verified bool   `json:"verified"`
}

// VerifyHeads verifies the heads of the named channels (every channel the
// repository has, when names is empty) as VerifyHead does, and every
// release each lists (signed, and what the head says it is), and records
// them as accepted in trust.
func VerifyHeads(ctx context.Context, st Store, names []string, v *Verifier, trust *Trust, now time.Time) ([]VerifiedHead, error) {
	all := len(names) == 0
	if all {
		names = Names
	}
	var out []VerifiedHead
	for _, c := range names {
		h, d, err := VerifyHead(ctx, st, st.String(), c, v, trust, now)
		if errors.Is(err, ErrNotFound) {
			if !all {
				return nil, inputErrorf("%s has no %s channel", st, c)
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := VerifyReleases(ctx, st, h, v); err != nil {
			return nil, err
		}
		if err := trust.Record(st.String(), h, d.String(), now); err != nil {
			return nil, err
		}
		out = append(out, VerifiedHead{Head: h, Digest: d.String(), Verified: true})
	}
	if len(out) == 0 {
		return nil, &report.InputError{Err: fmt.Errorf("%s has no channels yet (publish a release with 'relcheck publish')", st)}
	}
	return out, nil
}
