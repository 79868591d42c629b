package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// Key rotation. A maintainer whose key leaked (or is due) writes a
// rotation statement into the repository — "the project's releases are
// signed by NEW from now on" — signed by the old key and the new one, and
// re-signs the channels' heads and releases with the new key. A client
// that trusts the old key finds the statements (tags keys.rotation-N),
// follows the chain once from the key it trusts, remembers the new key,
// and from then on accepts only that: a head the old key signs after the
// rotation is refused. What remains possible: whoever holds the old key
// can also write a rotation to a key of theirs; a client follows the first
// chain it finds from its key, so rotate as soon as a leak is known, and
// operators who learn of a compromise re-subscribe with the new key.

// RotationArtifactType marks a rotation statement.
const (
	RotationArtifactType = "application/vnd.relcheck.key-rotation.v1"
	rotationMediaType    = "application/vnd.relcheck.key-rotation.v1+json"
)

// Rotation is a signed statement that a project's releases and heads are
// signed by New from now on, instead of Old.
type Rotation struct {
	Project string    `json:"project"`
	Seq     uint64    `json:"seq"`
	Old     string    `json:"old"` // PEM
	New     string    `json:"new"` // PEM
	Issued  time.Time `json:"issued"`
}

// RotationTag is the tag of the repository's rotation statement seq.
func RotationTag(seq uint64) string { return fmt.Sprintf("keys.rotation-%d", seq) }

// pem is a verifier's public key in PEM.
func (v *Verifier) pem() (string, error) {
	pub, err := v.v.PublicKey()
	if err != nil {
		return "", err
	}
	raw, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	return string(raw), err
}

// rotationImage is a rotation statement as an OCI artifact.
func rotationImage(r *Rotation) (v1.Image, error) {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return jsonArtifact(raw, RotationArtifactType, rotationMediaType, nil)
}

// rotations lists the rotation statements of a repository by seq, with
// their digests; statements that cannot be read are left out.
func rotations(ctx context.Context, st Store) ([]*Rotation, []v1.Hash, error) {
	tags, err := st.Tags(ctx)
	if err != nil {
		return nil, nil, err
	}
	var seqs []uint64
	for _, t := range tags {
		if n, err := strconv.ParseUint(strings.TrimPrefix(t, "keys.rotation-"), 10, 64); err == nil && strings.HasPrefix(t, "keys.rotation-") {
			seqs = append(seqs, n)
		}
	}
	slices.Sort(seqs)
	var rs []*Rotation
	var ds []v1.Hash
	for _, n := range seqs {
		d, err := st.Resolve(ctx, RotationTag(n))
		if err != nil {
			continue
		}
		img, err := st.Get(ctx, d)
		if err != nil {
			continue
		}
		m, err := img.Manifest()
		if err != nil || m.ArtifactType != RotationArtifactType || m.Config.Size > 64<<10 {
			continue
		}
		raw, err := readConfig(img, m.Config, 64<<10)
		if err != nil {
			continue
		}
		var r Rotation
		if json.Unmarshal(raw, &r) != nil || r.Seq != n {
			continue
		}
		rs = append(rs, &r)
		ds = append(ds, d)
	}
	return rs, ds, nil
}

// Rotate moves the repository to the key of next: it writes a rotation
// statement signed by the current key and by next, signs every channel's
// head and every release they list with next as well, then writes each
// head again signed by next alone. The Publisher signs with next
// afterwards.
func (p *Publisher) Rotate(ctx context.Context, next *Signer) (*Rotation, error) {
	oldV, err := p.Signer.Verifier()
	if err != nil {
		return nil, err
	}
	newV, err := next.Verifier()
	if err != nil {
		return nil, err
	}
	oldPEM, err := oldV.pem()
	if err != nil {
		return nil, err
	}
	newPEM, err := newV.pem()
	if err != nil {
		return nil, err
	}
	if oldPEM == newPEM {
		return nil, inputErrorf("the new key is the current key")
	}
	existing, _, err := rotations(ctx, p.Store)
	if err != nil {
		return nil, err
	}
	r := &Rotation{Project: p.Project, Seq: 1, Old: oldPEM, New: newPEM, Issued: p.now()}
	if len(existing) > 0 {
		r.Seq = existing[len(existing)-1].Seq + 1
	}
	// Every head and release verified with the old key gets the new
	// key's signature too, so nothing verifiable becomes unverifiable.
	var heads []string
	for _, c := range Names {
		h, d, err := ReadHead(ctx, p.Store, c, oldV)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if p.Project == "" {
			p.Project, r.Project = h.Project, h.Project
		}
		for _, rel := range h.Releases {
			rd, err := v1.NewHash(rel.Digest)
			if err != nil {
				return nil, err
			}
			if err := oldV.Verify(ctx, p.Store, rd); err != nil {
				return nil, err
			}
			if err := next.Sign(ctx, p.Store, rd); err != nil {
				return nil, err
			}
		}
		if err := next.Sign(ctx, p.Store, d); err != nil {
			return nil, err
		}
		heads = append(heads, c)
	}
	img, err := rotationImage(r)
	if err != nil {
		return nil, err
	}
	d, err := p.Store.Put(ctx, img, RotationTag(r.Seq))
	if err != nil {
		return nil, err
	}
	for _, s := range []*Signer{p.Signer, next} {
		if err := s.Sign(ctx, p.Store, d); err != nil {
			return nil, err
		}
	}
	p.Signer = next
	for _, c := range heads {
		if _, err := p.Update(ctx, c, func(*Head) error { return nil }); err != nil {
			return r, err
		}
	}
	return r, nil
}

// FollowRotations returns the key a client that trusts v must trust now:
// v, or the end of the chain of rotation statements from v, each signed
// by both its keys. It returns v when the repository has none from it.
func FollowRotations(ctx context.Context, st Store, v *Verifier) (*Verifier, []*Rotation, error) {
	rs, ds, err := rotations(ctx, st)
	if err != nil || len(rs) == 0 {
		return v, nil, err
	}
	cur, err := v.pem()
	if err != nil {
		return nil, nil, err
	}
	var followed []*Rotation
	for i, r := range rs {
		if r.Old != cur {
			continue
		}
		next, err := ParseVerifier([]byte(r.New), RotationTag(r.Seq))
		if err != nil {
			continue
		}
		if v.Verify(ctx, st, ds[i]) != nil || next.Verify(ctx, st, ds[i]) != nil {
			continue // not signed by both keys: not a rotation of ours
		}
		v, cur = next, r.New
		followed = append(followed, r)
	}
	return v, followed, nil
}

// followedKeyFile is where an install keeps the key it followed a
// rotation to.
func (in *Installer) followedKeyFile() string { return in.meta("key.pub") }

// followRotations moves the client to the key the repository's rotation
// statements lead to from the key it trusts, and remembers it.
func (c *Client) followRotations(ctx context.Context, record bool) error {
	v, followed, err := FollowRotations(ctx, c.Store, c.Verifier)
	if err != nil || len(followed) == 0 {
		return err
	}
	last := followed[len(followed)-1]
	c.Verifier, c.Installer.Verifier = v, v
	if !record {
		return nil
	}
	if err := os.MkdirAll(c.Installer.meta(), 0o755); err != nil {
		return err
	}
	if err := writeAtomic(c.Installer.followedKeyFile(), []byte(last.New), 0o644); err != nil {
		return err
	}
	c.Installer.logf("followed a key rotation", "event", "key-rotation", "seq", last.Seq, "issued", last.Issued)
	return nil
}
