package channels

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The maintainer's record of signed heads. Every head a Publisher signs
// is also tagged channel.C.seq-N in the repository: an append-only trail
// of signed statements. Before it signs a new head, a Publisher finds the
// highest record whose head verifies (signed by its key, of that channel,
// with that seq) and refuses to build on a current head older than it: a
// head tag moved back by someone who can write tags (to undo a halt) is
// never signed again with a higher seq — in stateless CI too, since the
// record lives beside the heads. Records cannot be forged (each is a
// signed head); an attacker who can also delete tags can remove the
// newer records, which only the Publisher's local Trust (kept on the
// machine that signed) still catches. Clients are not affected by
// records: they refuse older heads on their own (Trust).

// RecordTag is the tag of the record of a channel's head with seq.
func RecordTag(channel string, seq uint64) string {
	return fmt.Sprintf("%s.seq-%d", HeadTag(channel), seq)
}

// RollbackError is a current head older than one signed before: the head
// tag was moved back.
type RollbackError struct {
	Channel        string
	Current, Newer uint64
	// Where says where the newer head was seen.
	Where string
}

func (e *RollbackError) Error() string {
	cur := fmt.Sprintf("seq %d", e.Current)
	if e.Current == 0 {
		cur = "no head"
	}
	return fmt.Sprintf("the %s head has %s, but seq %d was signed before (%s): the head tag was moved back; not signing on top of it. "+
		"Check who can write the repository's tags, then restore the newer head with 'relcheck channel refresh --restore'", e.Channel, cur, e.Newer, e.Where)
}

// ExitCode is 1: a refusal, as for a failed verification.
func (e *RollbackError) ExitCode() int { return 1 }

// newestRecord returns the newest record of channel whose head verifies
// with v, with its digest; nil when there is none. Tags that do not name
// a valid signed head of that seq are ignored.
func newestRecord(ctx context.Context, st Store, channel string, v *Verifier) (*Head, v1.Hash, error) {
	tags, err := st.Tags(ctx)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	prefix := HeadTag(channel) + ".seq-"
	var seqs []uint64
	for _, t := range tags {
		if n, err := strconv.ParseUint(strings.TrimPrefix(t, prefix), 10, 64); err == nil && strings.HasPrefix(t, prefix) {
			seqs = append(seqs, n)
		}
	}
	slices.Sort(seqs)
	for i := len(seqs) - 1; i >= 0; i-- {
		d, err := st.Resolve(ctx, RecordTag(channel, seqs[i]))
		if err != nil {
			continue
		}
		if err := v.Verify(ctx, st, d); err != nil {
			var ve *VerifyError
			if errors.As(err, &ve) {
				continue
			}
			return nil, v1.Hash{}, err
		}
		h, err := readHeadAt(ctx, st, d)
		if err != nil || h.Channel != channel || h.Seq != seqs[i] {
			continue
		}
		return h, d, nil
	}
	return nil, v1.Hash{}, nil
}

// older reports whether head a (nil: none) is older than head b.
func older(a, b *Head) bool {
	if a == nil {
		return true
	}
	return a.Epoch < b.Epoch || a.Epoch == b.Epoch && a.Seq < b.Seq
}

// precheck refuses early what Update would refuse: a head tag moved
// back, before anything is pushed.
func (p *Publisher) precheck(ctx context.Context, channel string) error {
	v, err := p.Signer.Verifier()
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		cur, curD, err := ReadHead(ctx, p.Store, channel, v)
		switch {
		case errors.Is(err, ErrNotFound):
			cur, err = nil, nil
		case err != nil && !p.moved(ctx, channel, curD, attempt):
			return err
		case err != nil:
			continue // replaced (and its signature dropped) meanwhile
		}
		err = p.checkRecords(ctx, channel, cur, curD, v)
		var re *RollbackError
		if errors.As(err, &re) && p.moved(ctx, channel, curD, attempt) {
			continue // another writer moved the head on since: a race
		}
		return err
	}
}

// moved reports whether channel's head tag no longer points at d, so a
// refusal based on d may be a concurrent writer's doing: read again (a
// bounded number of attempts).
func (p *Publisher) moved(ctx context.Context, channel string, d v1.Hash, attempt int) bool {
	if attempt >= 20 || d == (v1.Hash{}) {
		return false
	}
	now, err := p.Store.Resolve(ctx, HeadTag(channel))
	return err == nil && now != d
}

// checkRecords refuses to build on cur (nil: the channel has no head)
// when a newer head of channel was signed before: in the repository's
// record, or in the Publisher's local Trust.
func (p *Publisher) checkRecords(ctx context.Context, channel string, cur *Head, curD v1.Hash, v *Verifier) error {
	rec, _, err := newestRecord(ctx, p.Store, channel, v)
	if err != nil {
		return err
	}
	if rec != nil && older(cur, rec) {
		return &RollbackError{Channel: channel, Current: seqOf(cur), Newer: rec.Seq, Where: "tag " + RecordTag(channel, rec.Seq)}
	}
	if p.Trust != nil {
		if last, ok, err := p.Trust.Last(p.Store.String(), channel); err != nil {
			return err
		} else if ok && older(cur, &Head{Epoch: last.Epoch, Seq: last.Seq}) {
			return &RollbackError{Channel: channel, Current: seqOf(cur), Newer: last.Seq, Where: "signed on this machine on " + last.Seen.Format("2006-01-02 15:04 MST")}
		}
	}
	return nil
}

func seqOf(h *Head) uint64 {
	if h == nil {
		return 0
	}
	return h.Seq
}

// Restore moves a channel's head tag forward to the newest signed head of
// the repository's record, when the tag was moved back to an older head
// (or deleted): the repair after a RollbackError, once the maintainer
// has checked who could write the tags. It returns the restored head, or
// nil when the tag was not behind.
func (p *Publisher) Restore(ctx context.Context, channel string) (*Head, error) {
	v, err := p.Signer.Verifier()
	if err != nil {
		return nil, err
	}
	rec, recD, err := newestRecord(ctx, p.Store, channel, v)
	if err != nil {
		return nil, err
	}
	// The head this machine signed last, when the repository's record of
	// it was deleted too.
	if p.Trust != nil {
		if last, ok, err := p.Trust.Last(p.Store.String(), channel); err == nil && ok && (rec == nil || older(rec, &Head{Epoch: last.Epoch, Seq: last.Seq})) {
			if d, err := v1.NewHash(last.Digest); err == nil && v.Verify(ctx, p.Store, d) == nil {
				if h, err := readHeadAt(ctx, p.Store, d); err == nil && h.Channel == channel && h.Seq == last.Seq {
					rec, recD = h, d
				}
			}
		}
	}
	if rec == nil {
		return nil, nil
	}
	cur, curD, err := ReadHead(ctx, p.Store, channel, v)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err != nil {
		cur, curD = nil, v1.Hash{}
	}
	if !older(cur, rec) {
		return nil, nil
	}
	if err := p.swap(ctx, HeadTag(channel), curD, recD, rec.Seq); err != nil {
		return nil, err
	}
	// The record is whole again too.
	if err := p.Store.Tag(ctx, RecordTag(channel, rec.Seq), recD); err != nil {
		return nil, err
	}
	return rec, nil
}

// Resign signs a channel's current head again after its signature was
// deleted (which blocks every later write): only a head the maintainer
// recognises, by the digest given or as the head this machine signed
// last. It returns the head, or nil when it is signed already.
func (p *Publisher) Resign(ctx context.Context, channel, digest string) (*Head, error) {
	v, err := p.Signer.Verifier()
	if err != nil {
		return nil, err
	}
	d, err := p.Store.Resolve(ctx, HeadTag(channel))
	if err != nil {
		return nil, err
	}
	if err := v.Verify(ctx, p.Store, d); err == nil {
		return nil, nil
	}
	h, err := readHeadAt(ctx, p.Store, d)
	if err != nil {
		return nil, err
	}
	if h.Channel != channel {
		return nil, verifyErrorf("the head at %s is the head of channel %s, not %s", HeadTag(channel), h.Channel, channel)
	}
	switch {
	case digest != "":
		if digest != d.String() {
			return nil, verifyErrorf("the %s head is %s, not the %s you recognised: not signing it", channel, d, digest)
		}
	case p.Trust != nil:
		last, ok, err := p.Trust.Last(p.Store.String(), channel)
		if err != nil {
			return nil, err
		}
		if !ok || last.Digest != d.String() {
			return nil, verifyErrorf("the %s head %s (seq %d) is unsigned and is not the head this machine signed last: compare it with what you published, then name it: --head-digest %s", channel, d, h.Seq, d)
		}
	default:
		return nil, verifyErrorf("the %s head %s is unsigned: name the digest you recognise", channel, d)
	}
	if err := p.Signer.Sign(ctx, p.Store, d); err != nil {
		return nil, err
	}
	return h, p.Store.Tag(ctx, RecordTag(channel, h.Seq), d)
}
