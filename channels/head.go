package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types of a channel head.
const (
	HeadArtifactType = "application/vnd.relcheck.channel.v1"
	HeadMediaType    = "application/vnd.relcheck.channel.v1+json"
	emptyMediaType   = "application/vnd.oci.empty.v1+json"
)

// Limits and defaults of channel heads.
const (
	// MaxHeadSize bounds a head read from a store: a mirror must not be
	// able to feed a client endless data.
	MaxHeadSize = 1 << 20
	// DefaultTTL is how long a head is valid after it was signed.
	DefaultTTL = 7 * 24 * time.Hour
)

// Names lists the channels, from the least to the most conservative.
var Names = []string{"edge", "beta", "stable"}

// ValidChannel reports whether c is one of Names.
func ValidChannel(c string) bool { return slices.Contains(Names, c) }

// HeadTag is the tag of a channel's head; the plain tag (edge, beta,
// stable) is the newest release, for people who just pull.
func HeadTag(channel string) string { return "channel." + channel }

// Head is a channel's signed state: which releases it offers, to whom,
// and how fresh that statement is.
type Head struct {
	Project string    `json:"project"`
	Channel string    `json:"channel"`
	Seq     uint64    `json:"seq"`
	Epoch   uint64    `json:"epoch"`
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires"`
	// Previous is the digest of the head this one replaced: heads form a
	// chain, so a writer can tell whether its write survived a race.
	Previous string `json:"previous,omitempty"`
	// Collector is the telemetry collector the maintainers run, for
	// installs that opted in.
	Collector string    `json:"collector,omitempty"`
	Releases  []Release `json:"releases"`
}

// Release is one release on a channel.
type Release struct {
	Version   string    `json:"version"`
	Digest    string    `json:"digest"`
	Published time.Time `json:"published"`
	// Rollout is the share of installs offered the release, in percent.
	Rollout      float64 `json:"rollout"`
	RequiredStop bool    `json:"requiredStop,omitempty"`
	// StopReason says why the release is a required stop.
	StopReason string `json:"stopReason,omitempty"`
	Halted     bool   `json:"halted,omitempty"`
	// RollbackTo is where installs of a halted release should go.
	RollbackTo string `json:"rollbackTo,omitempty"`
	Security   bool   `json:"security,omitempty"`
	// RolloutChanged is when Rollout was last set (publish, promote,
	// rollout): the pace of a scheduled rollout counts from it.
	RolloutChanged time.Time `json:"rolloutChanged,omitzero"`
}

// Find returns the release with version v, or nil.
func (h *Head) Find(v string) *Release {
	for i := range h.Releases {
		if h.Releases[i].Version == v {
			return &h.Releases[i]
		}
	}
	return nil
}

// Newest returns the newest release that is not halted and is rolled out
// to everyone, or nil: what the plain channel tag points at.
func (h *Head) Newest() *Release {
	var best *Release
	for i := range h.Releases {
		r := &h.Releases[i]
		if r.Halted || r.Rollout < 100 {
			continue
		}
		if best == nil || compareVersions(r.Version, best.Version) > 0 {
			best = r
		}
	}
	return best
}

// sortReleases orders releases by version, oldest first.
func (h *Head) sortReleases() {
	slices.SortStableFunc(h.Releases, func(a, b Release) int { return compareVersions(a.Version, b.Version) })
}

// ParseVersion checks that v is a semantic version usable as an OCI tag
// (no build metadata) and returns it with its leading "v".
func ParseVersion(v string) (string, *semver.Version, error) {
	s := strings.TrimPrefix(v, "v")
	sv, err := semver.StrictNewVersion(s)
	if err != nil {
		return "", nil, fmt.Errorf("%q is not a semantic version (vMAJOR.MINOR.PATCH[-PRERELEASE]): %v", v, err)
	}
	if sv.Metadata() != "" {
		return "", nil, fmt.Errorf("%q has build metadata (+…), which an OCI tag cannot hold", v)
	}
	return "v" + s, sv, nil
}

// compareVersions orders two versions; invalid ones sort first.
func compareVersions(a, b string) int {
	_, va, ea := ParseVersion(a)
	_, vb, eb := ParseVersion(b)
	switch {
	case ea != nil && eb != nil:
		return strings.Compare(a, b)
	case ea != nil:
		return -1
	case eb != nil:
		return 1
	}
	return va.Compare(vb)
}

// Core returns vMAJOR.MINOR.PATCH of a version.
func Core(v string) string {
	_, sv, err := ParseVersion(v)
	if err != nil {
		return v
	}
	return fmt.Sprintf("v%d.%d.%d", sv.Major(), sv.Minor(), sv.Patch())
}

// ParseHead parses a channel head, strictly, and checks that it is well
// formed.
func ParseHead(raw []byte) (*Head, error) {
	var h Head
	if err := decodeStrict(raw, MaxHeadSize, "channel head", &h); err != nil {
		return nil, err
	}
	if err := h.validate(); err != nil {
		return nil, fmt.Errorf("channel head: %v", err)
	}
	return &h, nil
}

func (h *Head) validate() error {
	if !ValidChannel(h.Channel) {
		return fmt.Errorf("unknown channel %q", h.Channel)
	}
	if h.Seq == 0 {
		return fmt.Errorf("seq must be at least 1")
	}
	if h.Issued.IsZero() || !h.Expires.After(h.Issued) {
		return fmt.Errorf("expires (%s) must be after issued (%s)", h.Expires.Format(time.RFC3339), h.Issued.Format(time.RFC3339))
	}
	if h.Previous != "" {
		if _, err := v1.NewHash(h.Previous); err != nil {
			return fmt.Errorf("previous: %v", err)
		}
	}
	seen := map[string]bool{}
	for _, r := range h.Releases {
		if _, _, err := ParseVersion(r.Version); err != nil {
			return err
		}
		if seen[r.Version] {
			return fmt.Errorf("release %s is listed twice", r.Version)
		}
		seen[r.Version] = true
		if _, err := v1.NewHash(r.Digest); err != nil {
			return fmt.Errorf("release %s: digest: %v", r.Version, err)
		}
		if r.Rollout < 0 || r.Rollout > 100 || r.Rollout != r.Rollout {
			return fmt.Errorf("release %s: rollout %v is not between 0 and 100", r.Version, r.Rollout)
		}
	}
	for _, r := range h.Releases {
		if r.RollbackTo != "" && !seen[r.RollbackTo] {
			return fmt.Errorf("release %s: rollbackTo %s is not on the channel", r.Version, r.RollbackTo)
		}
	}
	return nil
}

// headImage is a head as an OCI artifact: the head as config, and the
// empty layer OCI recommends for artifacts without content.
func headImage(h *Head) (v1.Image, error) {
	raw, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return nil, err
	}
	return jsonArtifact(raw, HeadArtifactType, HeadMediaType, map[string]string{"org.opencontainers.image.created": h.Issued.UTC().Format(time.RFC3339)})
}

// jsonArtifact is an OCI artifact whose content is the JSON document raw,
// as its config, with an empty layer (heads, rotation statements).
func jsonArtifact(raw []byte, artifactType, mediaType string, annotations map[string]string) (v1.Image, error) {
	emptyLayer := static.NewLayer([]byte("{}"), emptyMediaType)
	ed, _ := emptyLayer.Digest()
	a := &artifact{config: raw, layers: map[v1.Hash]partial.CompressedLayer{ed: emptyLayer}}
	cd, cs, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	a.manifest = v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        v1.Descriptor{MediaType: types.MediaType(mediaType), Size: cs, Digest: cd},
		Layers:        []v1.Descriptor{{MediaType: emptyMediaType, Size: 2, Digest: ed}},
		Annotations:   annotations,
	}
	if a.raw, err = json.Marshal(a.manifest); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(a)
}

// readHeadAt reads the head stored as manifest d (a Store's Get checks
// that the manifest hashes to d), refusing any part larger than a head may
// be. It does not check signatures.
func readHeadAt(ctx context.Context, st Store, d v1.Hash) (*Head, error) {
	img, err := st.Get(ctx, d)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if m.ArtifactType != HeadArtifactType || m.Config.MediaType != HeadMediaType {
		return nil, verifyErrorf("%s is not a channel head (artifactType %q)", d, m.ArtifactType)
	}
	if m.Config.Size > MaxHeadSize {
		return nil, verifyErrorf("the channel head %s is %d bytes, more than the limit of %d", d, m.Config.Size, MaxHeadSize)
	}
	raw, err := readConfig(img, m.Config, MaxHeadSize)
	if err != nil {
		return nil, fmt.Errorf("the channel head %s: %w", d, err)
	}
	h, err := ParseHead(raw)
	if err != nil {
		return nil, verifyErrorf("%v", err)
	}
	return h, nil
}

// ReadHead reads and verifies the head of channel: its signature by v
// (skipped when v is nil), that it is the head of that channel, and that
// it is well formed. Expiry and rollback are the caller's policy: see
// Trust. It returns ErrNotFound when the channel has no head.
func ReadHead(ctx context.Context, st Store, channel string, v *Verifier) (*Head, v1.Hash, error) {
	d, err := st.Resolve(ctx, HeadTag(channel))
	if err != nil {
		return nil, v1.Hash{}, err
	}
	if v != nil {
		if err := v.Verify(ctx, st, d); err != nil {
			var ve *VerifyError
			if errors.As(err, &ve) {
				return nil, d, verifyErrorf("the %s head %s: %v", channel, d, err)
			}
			return nil, d, fmt.Errorf("the %s head %s: %w", channel, d, err)
		}
	}
	h, err := readHeadAt(ctx, st, d)
	if err != nil {
		return nil, d, err
	}
	if h.Channel != channel {
		return nil, d, verifyErrorf("the head at %s is the head of channel %s, not %s", HeadTag(channel), h.Channel, channel)
	}
	return h, d, nil
}

// CheckFresh refuses a head that expired: whoever serves it may be
// freezing the channel.
func CheckFresh(h *Head, now time.Time) error {
	if now.After(h.Expires) {
		return verifyErrorf("the %s head (seq %d) expired at %s: the channel may be frozen by whoever serves it; a maintainer renews it with 'relcheck channel refresh'",
			h.Channel, h.Seq, h.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// VerifyReleases checks every release a head lists: its artifact is signed
// by v, and a relcheck release's own metadata is of the same version line
// (a head cannot name another release's digest).
func VerifyReleases(ctx context.Context, st Store, h *Head, v *Verifier) error {
	for _, r := range h.Releases {
		d, err := v1.NewHash(r.Digest)
		if err != nil {
			return verifyErrorf("release %s: %v", r.Version, err)
		}
		if err := v.Verify(ctx, st, d); err != nil {
			return fmt.Errorf("release %s: %w", r.Version, err)
		}
		meta, err := metadataAt(ctx, st, d)
		if err != nil {
			return err
		}
		if meta != nil && Core(meta.Version) != Core(r.Version) {
			return verifyErrorf("the %s head lists %s with digest %s, but that artifact is release %s", h.Channel, r.Version, d, meta.Version)
		}
		if meta != nil && meta.Project != "" && h.Project != "" && meta.Project != h.Project {
			return verifyErrorf("the %s head of %s lists %s, a release of %s", h.Channel, h.Project, r.Version, meta.Project)
		}
	}
	return nil
}

// metadataAt reads the release metadata of manifest d; nil when d is not
// a relcheck release (a container image published with --image).
func metadataAt(ctx context.Context, st Store, d v1.Hash) (*Metadata, error) {
	img, err := st.Get(ctx, d)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if m.ArtifactType != ArtifactType {
		return nil, nil
	}
	meta, err := ReadMetadata(img)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	return meta, nil
}

// errConflict is a head that changed while it was being written.
var errConflict = errors.New("the channel head changed")

// Compare orders two versions as semantic versions.
func Compare(a, b string) int { return compareVersions(a, b) }
