package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relcheck/relcheck/report"
)

// RefusedError is an operation a policy refused: a halted release, one
// that has not soaked long enough (exit 1).
type RefusedError struct {
	Msg string
	// Option, when set, is the option Msg names (report.OptionNamer).
	Option string
}

// RenameOption implements report.OptionNamer.
func (e *RefusedError) RenameOption(name func(string) string) {
	if e.Option != "" {
		e.Msg = strings.Replace(e.Msg, e.Option, name(e.Option), 1)
		e.Option = ""
	}
}

// ExitCode is report.ExitFindings.
func (e *RefusedError) ExitCode() int { return report.ExitFindings }

func (e *RefusedError) Error() string { return e.Msg }

func inputErrorf(format string, args ...any) error {
	return &report.InputError{Err: fmt.Errorf(format, args...)}
}

// Publisher writes releases and channel heads to a store and signs both.
type Publisher struct {
	Store   Store
	Signer  *Signer
	Project string
	// TTL is how long a head stays valid (DefaultTTL when zero).
	TTL time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Settle is how long a registry writer waits after moving a head tag
	// before checking that no concurrent writer replaced its head without
	// building on it. A registry has no compare-and-swap on tags; a local
	// layout has (a file lock), and does not wait.
	Settle time.Duration
	// Attempts bounds the retries of a head write that lost a race.
	Attempts int
	// Trust, when set, is the maintainer's local record of the heads
	// signed (and seen) on this machine: a head older than one of them is
	// not built on, even when the repository's record was deleted.
	Trust *Trust

	metas map[v1.Hash]*Metadata
}

func (p *Publisher) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}

// PublishOptions describe a release's place on its first channel.
type PublishOptions struct {
	Version  string
	Channel  string
	Rollout  float64
	Security bool
	// Provenance, when set, is attached to the release as a signed SLSA
	// v1 provenance attestation (attest.go); SBOM, a CycloneDX document
	// (sbom.go), as a signed CycloneDX attestation.
	Provenance *ProvenanceSource
	SBOM       json.RawMessage
	// Notes, when set, are attached as signed upgrade notes (notes.go).
	Notes *UpgradeNotes
}

// PublishVersion is version in its canonical form (vX.Y.Z[-PRE]), refused
// when it is not a version, or when it is a prerelease and the channel is
// stable. Publish asks it first; a CLI may ask before it builds anything.
func PublishVersion(version, channel string) (string, error) {
	v, sv, err := ParseVersion(version)
	if err != nil {
		return "", report.OptionErrorf("Version", "%v", err)
	}
	if channel == "stable" && sv.Prerelease() != "" {
		return "", report.OptionErrorf("Version", "%s is a prerelease: stable takes releases (vX.Y.Z); publish it to edge or beta, then promote it", v)
	}
	return v, nil
}

// Publish pushes a release (artifact or image), signs it, tags it with
// its version and adds it to the channel's head. An existing version is
// refused: versions are immutable.
func (p *Publisher) Publish(ctx context.Context, img v1.Image, o PublishOptions) (v1.Hash, *Head, error) {
	if !ValidChannel(o.Channel) {
		return v1.Hash{}, nil, inputErrorf("unknown channel %q: use edge, beta or stable", o.Channel)
	}
	version, err := PublishVersion(o.Version, o.Channel)
	if err != nil {
		return v1.Hash{}, nil, err
	}
	want, err := img.Digest()
	if err != nil {
		return v1.Hash{}, nil, err
	}
	if d, err := p.Store.Resolve(ctx, version); err == nil {
		if d != want {
			// A publish that stopped half-way pushed this version already,
			// with another creation time: the same files and facts go on
			// from there.
			same, err := p.sameRelease(ctx, d, img)
			if err != nil {
				return v1.Hash{}, nil, err
			}
			if !same {
				return v1.Hash{}, nil, inputErrorf("%s is already published in %s (as %s): versions are immutable, publish a new one", version, p.Store, d)
			}
			want = d
		}
		// The same artifact: a publish that stopped half-way goes on.
		if h, _, err := ReadHead(ctx, p.Store, o.Channel, nil); err == nil {
			if r := h.Find(version); r != nil && r.Digest == d.String() {
				return v1.Hash{}, nil, inputErrorf("%s is already published to %s in %s", version, o.Channel, p.Store)
			}
		}
	} else if !errors.Is(err, ErrNotFound) {
		return v1.Hash{}, nil, err
	}
	if err := p.precheck(ctx, o.Channel); err != nil {
		return v1.Hash{}, nil, err
	}
	d := want
	if existing, err := p.Store.Resolve(ctx, version); err != nil || existing != want {
		if d, err = p.Store.Put(ctx, img, version); err != nil {
			return v1.Hash{}, nil, err
		}
	}
	if err := p.Signer.Sign(ctx, p.Store, d); err != nil {
		return d, nil, err
	}
	if o.Provenance != nil {
		if err := p.Signer.Attest(ctx, p.Store, d, PredicateSLSAProvenance1, ProvenanceSLSA1(*o.Provenance)); err != nil {
			return d, nil, err
		}
	}
	if o.SBOM != nil {
		if err := p.Signer.Attest(ctx, p.Store, d, PredicateCycloneDX, o.SBOM); err != nil {
			return d, nil, err
		}
	}
	if o.Notes != nil {
		if err := p.Signer.Attest(ctx, p.Store, d, PredicateUpgradeNotes, o.Notes); err != nil {
			return d, nil, err
		}
	}
	h, err := p.Update(ctx, o.Channel, func(h *Head) error {
		if h.Find(version) != nil {
			return inputErrorf("%s is already on %s", version, o.Channel)
		}
		h.Releases = append(h.Releases, Release{Version: version, Digest: d.String(), Published: p.now(), Rollout: o.Rollout, Security: o.Security, RolloutChanged: p.now()})
		return nil
	})
	return d, h, err
}

// sameRelease reports whether the release at d has the files and the
// metadata of img, but for when it was created.
func (p *Publisher) sameRelease(ctx context.Context, d v1.Hash, img v1.Image) (bool, error) {
	old, err := p.Store.Get(ctx, d)
	if err != nil {
		return false, err
	}
	facts := func(img v1.Image) (string, error) {
		meta, err := ReadMetadata(img)
		if err != nil {
			return "", err
		}
		meta.Created = time.Time{}
		m, err := img.Manifest()
		if err != nil {
			return "", err
		}
		raw, err := json.Marshal(struct {
			Meta   *Metadata
			Layers []v1.Descriptor
		}{meta, m.Layers})
		return string(raw), err
	}
	a, err := facts(old)
	if err != nil {
		return false, nil // not a relcheck release: not the same
	}
	b, err := facts(img)
	return a == b, err
}

// lower lists the channels a release is promoted from to reach to, the
// nearest first.
func lower(to string) []string {
	i := slices.Index(Names, to)
	out := slices.Clone(Names[:max(i, 0)])
	slices.Reverse(out)
	return out
}

// PromoteOptions describe a promotion.
type PromoteOptions struct {
	To      string
	Rollout float64
	// MinSoak is how long the release must have been on the lower channel.
	MinSoak time.Duration
	// Gate, when set, decides from the release on the lower channel and
	// that channel's head (e.g. from shared telemetry); an error refuses.
	Gate func(from *Release, fromHead *Head) error
}

// Promote adds the release version (found on a lower channel) to a safer
// channel under that channel's version (vX.Y.Z-beta.N, or vX.Y.Z on
// stable) — the same digest, never rebuilt. It returns the new version.
func (p *Publisher) Promote(ctx context.Context, version string, o PromoteOptions) (string, *Head, error) {
	if o.To != "beta" && o.To != "stable" {
		return "", nil, report.OptionErrorf("To", "must be beta or stable, not %q", o.To)
	}
	// A head tag moved back is refused before the version is tagged.
	if err := p.precheck(ctx, o.To); err != nil {
		return "", nil, err
	}
	v, err := p.Signer.Verifier()
	if err != nil {
		return "", nil, err
	}
	var from *Release
	var fromCh string
	var fromHead *Head
	for _, c := range lower(o.To) {
		h, _, err := ReadHead(ctx, p.Store, c, v)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		if r := h.Find(version); r != nil {
			from, fromCh, fromHead = r, c, h
			if p.Project == "" {
				p.Project = h.Project
			}
			break
		}
	}
	if from == nil {
		return "", nil, inputErrorf("%s is not on %s in %s", version, strings.Join(lower(o.To), " or "), p.Store)
	}
	// The same digest on the destination already: nothing to do (and no
	// new beta number for it).
	if h, _, err := ReadHead(ctx, p.Store, o.To, v); err == nil {
		for _, r := range h.Releases {
			if r.Digest == from.Digest && !r.Halted {
				return r.Version, h, &AlreadyPromotedError{Version: version, Channel: o.To, As: r.Version}
			}
		}
	} else if !errors.Is(err, ErrNotFound) {
		return "", nil, err
	}
	if from.Halted {
		return "", nil, &RefusedError{Msg: fmt.Sprintf("%s is halted on %s: it cannot be promoted", version, fromCh)}
	}
	if soak := p.now().Sub(from.Published); soak < o.MinSoak {
		return "", nil, &RefusedError{Msg: fmt.Sprintf("%s has been on %s for %s, less than MinSoak %s", version, fromCh, soak.Round(time.Second), o.MinSoak), Option: "MinSoak"}
	}
	if o.Gate != nil {
		if err := o.Gate(from, fromHead); err != nil {
			return "", nil, err
		}
	}
	d, err := v1.NewHash(from.Digest)
	if err != nil {
		return "", nil, err
	}
	if err := v.Verify(ctx, p.Store, d); err != nil {
		return "", nil, err
	}
	if err := p.stopsPresent(ctx, version, d, fromCh, o.To, v); err != nil {
		return "", nil, err
	}
	target := Core(version)
	if o.To == "beta" {
		tags, err := p.Store.Tags(ctx)
		if err != nil {
			return "", nil, err
		}
		target = NextBeta(target, tags)
	}
	if old, err := p.Store.Resolve(ctx, target); err == nil {
		if old != d {
			return "", nil, inputErrorf("%s already exists as another release (%s): a version names one digest forever", target, old)
		}
		if h, _, err := ReadHead(ctx, p.Store, o.To, nil); err == nil && h.Find(target) != nil {
			return "", nil, inputErrorf("%s is already promoted to %s as %s", version, o.To, target)
		}
		// Tagged, but the head was not written: go on.
	} else if !errors.Is(err, ErrNotFound) {
		return "", nil, err
	} else if err := p.Store.Tag(ctx, target, d); err != nil {
		return "", nil, err
	}
	h, err := p.Update(ctx, o.To, func(h *Head) error {
		if h.Find(target) != nil {
			return inputErrorf("%s is already on %s", target, o.To)
		}
		h.Releases = append(h.Releases, Release{Version: target, Digest: d.String(), Published: p.now(), Rollout: o.Rollout, Security: from.Security, RolloutChanged: p.now()})
		return nil
	})
	return target, h, err
}

// AlreadyPromotedError says that a promotion had nothing to do: the
// release's digest is on the channel already. Promote returns it with the
// version it has there and the head; a CLI reports it as success.
type AlreadyPromotedError struct{ Version, Channel, As string }

func (e *AlreadyPromotedError) Error() string {
	if e.As == e.Version {
		return fmt.Sprintf("%s is already on %s: nothing to do", e.Version, e.Channel)
	}
	return fmt.Sprintf("%s is already on %s as %s (the same digest): nothing to do", e.Version, e.Channel, e.As)
}

// stopsPresent refuses to promote a release that drops a schema object to
// a channel whose installs still use it and that offers no release
// deprecating it: their upgrade would have no stop to pass through.
func (p *Publisher) stopsPresent(ctx context.Context, version string, d v1.Hash, fromCh, to string, v *Verifier) error {
	meta, err := p.metadata(ctx, d)
	if err != nil || meta == nil || meta.Migrations == nil || len(meta.Migrations.Dropped) == 0 {
		return err
	}
	target, _, err := ReadHead(ctx, p.Store, to, v)
	if errors.Is(err, ErrNotFound) {
		return nil // no installs on that channel yet
	}
	if err != nil {
		return err
	}
	if len(target.Releases) == 0 {
		return nil
	}
	for _, obj := range meta.Migrations.Dropped {
		covered := false
		for _, r := range target.Releases {
			if r.Halted {
				continue // a halted release is no stop
			}
			rd, err := v1.NewHash(r.Digest)
			if err != nil {
				return err
			}
			m, err := p.metadata(ctx, rd)
			if err != nil {
				return err
			}
			if m != nil && m.Migrations != nil && deprecates(m.Migrations.Deprecated, obj) {
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		first := "the release that deprecates it"
		if src, _, err := ReadHead(ctx, p.Store, fromCh, v); err == nil {
			src.sortReleases()
			for _, r := range src.Releases {
				rd, _ := v1.NewHash(r.Digest)
				if m, err := p.metadata(ctx, rd); err == nil && m != nil && m.Migrations != nil && deprecates(m.Migrations.Deprecated, obj) {
					first = r.Version
					break
				}
			}
		}
		return &RefusedError{Msg: fmt.Sprintf("%s drops %s, and no release on %s deprecates it yet: promote %s to %s first, so that upgrades can stop there", version, obj, to, first, to)}
	}
	return nil
}

// NextBeta returns core-beta.N with N one more than any such tag.
func NextBeta(core string, tags []string) string {
	n := 0
	for _, t := range tags {
		if k, err := strconv.Atoi(strings.TrimPrefix(t, core+"-beta.")); err == nil && strings.HasPrefix(t, core+"-beta.") && k > n {
			n = k
		}
	}
	return fmt.Sprintf("%s-beta.%d", core, n+1)
}

// Rollout widens the share of installs offered a release on channel.
// gate, when set, decides first from the release and the channel's head
// (e.g. from shared telemetry, as PromoteOptions.Gate); an error refuses.
func (p *Publisher) Rollout(ctx context.Context, version, channel string, percent float64, gate func(*Release, *Head) error) (*Head, error) {
	if !(percent >= 0 && percent <= 100) { // also NaN
		return nil, report.OptionErrorf("percent", "%v is not between 0 and 100", percent)
	}
	if gate != nil {
		v, err := p.Signer.Verifier()
		if err != nil {
			return nil, err
		}
		cur, _, err := ReadHead(ctx, p.Store, channel, v)
		if err != nil {
			return nil, err
		}
		r := cur.Find(version)
		if r == nil {
			return nil, inputErrorf("%s is not on %s", version, channel)
		}
		if err := gate(r, cur); err != nil {
			return nil, err
		}
	}
	return p.Update(ctx, channel, func(h *Head) error {
		r := h.Find(version)
		if r == nil {
			return inputErrorf("%s is not on %s", version, channel)
		}
		if r.Halted {
			return &RefusedError{Msg: fmt.Sprintf("%s is halted on %s: publish a fix instead of widening it", version, channel)}
		}
		if percent < r.Rollout {
			return inputErrorf("%s is already at %v%% on %s: a rollout only widens (to stop it, use 'relcheck halt')", version, r.Rollout, channel)
		}
		r.Rollout, r.RolloutChanged = percent, p.now()
		return nil
	})
}

// Halt stops a release on channel; rollbackTo, when set, is an older
// release installs of it should go back to.
func (p *Publisher) Halt(ctx context.Context, version, channel, rollbackTo string) (*Head, error) {
	return p.Update(ctx, channel, func(h *Head) error {
		r := h.Find(version)
		if r == nil {
			return inputErrorf("%s is not on %s", version, channel)
		}
		if rollbackTo != "" {
			to := h.Find(rollbackTo)
			switch {
			case to == nil:
				return report.OptionErrorf("rollbackTo", "%s is not on %s", rollbackTo, channel)
			case to.Halted:
				return report.OptionErrorf("rollbackTo", "%s is halted too", rollbackTo)
			case compareVersions(rollbackTo, version) >= 0:
				return report.OptionErrorf("rollbackTo", "%s is not older than %s", rollbackTo, version)
			}
		}
		r.Halted, r.RollbackTo = true, rollbackTo
		return nil
	})
}

// Refresh re-signs a channel's head with a new seq and expiry; a non-nil
// collector sets the telemetry collector the head announces ("" removes
// it).
func (p *Publisher) Refresh(ctx context.Context, channel string, collector *string) (*Head, error) {
	if _, err := p.Store.Resolve(ctx, HeadTag(channel)); err != nil {
		return nil, err
	}
	return p.Update(ctx, channel, func(h *Head) error {
		if collector != nil {
			h.Collector = *collector
		}
		return nil
	})
}

// Prune keeps a channel's head small: it drops all but the newest keep
// releases from the head, except required stops, rollback targets and the
// release the plain tag follows. The artifacts and their version tags stay
// in the repository; only the channel stops offering them. It returns the
// versions dropped.
func (p *Publisher) Prune(ctx context.Context, channel string, keep int) ([]string, *Head, error) {
	if keep < 1 {
		return nil, nil, report.OptionErrorf("keep", "must be at least 1")
	}
	var dropped []string
	h, err := p.Update(ctx, channel, func(h *Head) error {
		dropped = nil
		h.sortReleases()
		needed := map[string]bool{}
		for _, r := range h.Releases {
			if r.RollbackTo != "" {
				needed[r.RollbackTo] = true
			}
		}
		if n := h.Newest(); n != nil {
			needed[n.Version] = true
		}
		var kept []Release
		for i, r := range h.Releases {
			if i >= len(h.Releases)-keep || r.RequiredStop || needed[r.Version] {
				kept = append(kept, r)
				continue
			}
			dropped = append(dropped, r.Version)
		}
		h.Releases = kept
		return nil
	})
	return dropped, h, err
}

// swapper is a store that can move a tag only if it still points where
// the caller saw it (a compare-and-swap).
type swapper interface {
	SwapTag(ctx context.Context, tag string, old, new v1.Hash) error
}

// Update changes a channel's head with change and writes it as the next
// seq, signed. Two writers at once both land: a writer whose head was
// replaced in the meantime reads the new head and applies its change
// again on top of it.
func (p *Publisher) Update(ctx context.Context, channel string, change func(*Head) error) (*Head, error) {
	v, err := p.Signer.Verifier()
	if err != nil {
		return nil, err
	}
	attempts := p.Attempts
	if attempts == 0 {
		attempts = 20
	}
	ttl := p.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	for attempt := 1; ; attempt++ {
		cur, curD, err := ReadHead(ctx, p.Store, channel, v)
		fresh := errors.Is(err, ErrNotFound)
		var ve *VerifyError
		if errors.As(err, &ve) && p.moved(ctx, channel, curD, attempt) {
			continue // replaced, and its signature dropped, meanwhile
		}
		if errors.As(err, &ve) {
			// An unsigned head older than the record: the tag was moved
			// back to a superseded head (whose signature was deleted).
			if old, rerr := readHeadAt(ctx, p.Store, curD); rerr == nil && old.Channel == channel {
				var re *RollbackError
				if cerr := p.checkRecords(ctx, channel, old, curD, v); errors.As(cerr, &re) {
					return nil, cerr
				}
			}
			return nil, verifyErrorf("%v (if its signature was deleted: 'relcheck channel refresh --channel %s --resign' signs a head you recognise again)", err, channel)
		}
		if err != nil && !fresh {
			return nil, err
		}
		var base *Head
		if !fresh {
			base = cur
		}
		if err := p.checkRecords(ctx, channel, base, curD, v); err != nil {
			// A writer that moved the head (and recorded it) since it was
			// read is a race, not a rollback: read it again.
			var re *RollbackError
			if now, rerr := p.Store.Resolve(ctx, HeadTag(channel)); errors.As(err, &re) && rerr == nil && now != curD && attempt < attempts {
				continue
			}
			return nil, err
		}
		h := &Head{Project: p.Project, Channel: channel, Epoch: 1}
		superseded := "" // the head before the one replaced now
		if !fresh {
			superseded = cur.Previous
			h = cur
			h.Previous = curD.String()
		}
		if err := change(h); err != nil {
			return nil, err
		}
		h.Seq++
		h.Issued = p.now()
		h.Expires = h.Issued.Add(ttl)
		if err := p.markStops(ctx, h); err != nil {
			return nil, err
		}
		h.sortReleases()
		img, err := headImage(h)
		if err != nil {
			return nil, err
		}
		if m, err := img.Manifest(); err == nil && m.Config.Size > MaxHeadSize {
			return nil, inputErrorf("the %s head would be %d bytes, more than clients read (%d): halt or drop old releases first", channel, m.Config.Size, MaxHeadSize)
		}
		d, err := p.Store.Put(ctx, img, "")
		if err != nil {
			return nil, err
		}
		if err := p.Signer.Sign(ctx, p.Store, d); err != nil {
			return nil, err
		}
		err = p.swap(ctx, HeadTag(channel), curD, d, h.Seq)
		if errors.Is(err, errConflict) {
			if attempt >= attempts {
				return nil, fmt.Errorf("the %s head kept changing while writing it (%d attempts)", channel, attempt)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(rand.IntN(100*attempt)+10) * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := p.Store.Tag(ctx, RecordTag(channel, h.Seq), d); err != nil {
			return h, fmt.Errorf("the %s head (seq %d) is written, but its record %s is not: %w", channel, h.Seq, RecordTag(channel, h.Seq), err)
		}
		if p.Trust != nil {
			if err := p.Trust.Record(p.Store.String(), h, d.String(), p.now()); err != nil {
				return h, err
			}
		}
		p.dropSignature(ctx, superseded)
		return h, p.followTag(ctx, channel)
	}
}

// dropSignature deletes the signature of a superseded head (digest; ""
// none), where the store allows it: each head write would otherwise leave
// one more sha256-….sig tag behind. Called with the head before the one
// just replaced, so a client that read the tag just before it moved still
// verifies what it read. A head without its signature is refused by
// clients, as a head tag moved back must be. Best effort: a registry that
// refuses deletes keeps the tags (see the README).
func (p *Publisher) dropSignature(ctx context.Context, digest string) {
	del, ok := p.Store.(tagDeleter)
	if !ok || digest == "" {
		return
	}
	d, err := v1.NewHash(digest)
	if err != nil {
		return
	}
	_ = del.DeleteTag(ctx, SignatureTag(d))
}

// swap moves tag from old (zero: no tag yet) to new.
func (p *Publisher) swap(ctx context.Context, tag string, old, new v1.Hash, seq uint64) error {
	if s, ok := p.Store.(swapper); ok {
		return s.SwapTag(ctx, tag, old, new)
	}
	cur, err := p.Store.Resolve(ctx, tag)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if cur != old {
		return errConflict
	}
	if err := p.Store.Tag(ctx, tag, new); err != nil {
		return err
	}
	// Another writer may have checked the tag just before this one moved
	// it and move it right after. Wait, then look for this head in the
	// chain of heads that replaced it.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(p.Settle):
	}
	at, err := p.Store.Resolve(ctx, tag)
	if err != nil {
		return err
	}
	for at != new {
		h, err := readHeadAt(ctx, p.Store, at)
		if err != nil {
			return err
		}
		if h.Seq <= seq || h.Previous == "" {
			return errConflict // replaced by a head that does not build on this one
		}
		if at, err = v1.NewHash(h.Previous); err != nil {
			return err
		}
	}
	return nil
}

// followTag points the plain channel tag at the channel's newest release
// rolled out to everyone.
func (p *Publisher) followTag(ctx context.Context, channel string) error {
	h, _, err := ReadHead(ctx, p.Store, channel, nil)
	if err != nil {
		return err
	}
	r := h.Newest()
	if r == nil {
		return nil
	}
	d, err := v1.NewHash(r.Digest)
	if err != nil {
		return err
	}
	if cur, err := p.Store.Resolve(ctx, channel); err == nil && cur == d {
		return nil
	}
	return p.Store.Tag(ctx, channel, d)
}

// metadata reads (once) the metadata of release d; nil for images.
func (p *Publisher) metadata(ctx context.Context, d v1.Hash) (*Metadata, error) {
	if m, ok := p.metas[d]; ok {
		return m, nil
	}
	m, err := metadataAt(ctx, p.Store, d)
	if err != nil {
		return nil, err
	}
	if p.metas == nil {
		p.metas = map[v1.Hash]*Metadata{}
	}
	p.metas[d] = m
	return m, nil
}

// markStops computes the required stops of a head from the releases'
// migration facts: a release that drops a schema object makes the
// channel's first release that declared it deprecated a stop of every
// upgrade that crosses both. A stop the maintainer marked stays one.
func (p *Publisher) markStops(ctx context.Context, h *Head) error {
	h.sortReleases()
	metas := make([]*Metadata, len(h.Releases))
	for i, r := range h.Releases {
		d, err := v1.NewHash(r.Digest)
		if err != nil {
			return err
		}
		if metas[i], err = p.metadata(ctx, d); err != nil {
			return err
		}
	}
	for i := range h.Releases {
		if metas[i] != nil {
			h.Releases[i].RequiredStop, h.Releases[i].StopReason = metas[i].RequiredStop, ""
			if metas[i].RequiredStop {
				h.Releases[i].StopReason = "marked by the maintainer"
			}
		}
	}
	for i, m := range metas {
		if m == nil || m.Migrations == nil {
			continue
		}
		for _, obj := range m.Migrations.Dropped {
			for j := 0; j < i; j++ {
				if h.Releases[j].Halted || metas[j] == nil || metas[j].Migrations == nil || !deprecates(metas[j].Migrations.Deprecated, obj) {
					continue
				}
				r := &h.Releases[j]
				r.RequiredStop = true
				why := fmt.Sprintf("deprecates %s, which %s drops", obj, h.Releases[i].Version)
				if r.StopReason == "" {
					r.StopReason = why
				} else if !strings.Contains(r.StopReason, why) {
					r.StopReason += "; " + why
				}
				break
			}
		}
	}
	return nil
}

// deprecates reports whether a deprecated list covers obj: the object
// itself, or the table of a column "table.column".
func deprecates(list []string, obj string) bool {
	if slices.Contains(list, obj) {
		return true
	}
	t, _, ok := strings.Cut(obj, ".")
	return ok && slices.Contains(list, t)
}

// Path is the upgrade path from one version to another on a channel: the
// required stops strictly between them, then the target.
func Path(h *Head, from, to string) ([]Release, error) {
	if _, _, err := ParseVersion(from); err != nil {
		return nil, &report.InputError{Err: err}
	}
	target := h.Find(to)
	if target == nil {
		return nil, inputErrorf("%s is not on %s", to, h.Channel)
	}
	if compareVersions(from, to) >= 0 {
		return nil, inputErrorf("%s is not newer than %s", to, from)
	}
	if target.Halted {
		return nil, &RefusedError{Msg: fmt.Sprintf("%s is halted on %s", to, h.Channel)}
	}
	rs := slices.Clone(h.Releases)
	slices.SortStableFunc(rs, func(a, b Release) int { return compareVersions(a.Version, b.Version) })
	var path []Release
	for _, r := range rs {
		if r.RequiredStop && compareVersions(r.Version, from) > 0 && compareVersions(r.Version, to) < 0 {
			if r.Halted {
				return nil, &RefusedError{Msg: fmt.Sprintf("%s → %s must pass through %s (%s), which is halted on %s: wait for a fixed release", from, to, r.Version, r.StopReason, h.Channel)}
			}
			path = append(path, r)
		}
	}
	return append(path, *target), nil
}
