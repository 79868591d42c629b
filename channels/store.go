// Package channels publishes releases as signed OCI artifacts and keeps
// signed channel heads (edge, beta, stable) next to them, in any OCI
// registry or in a local OCI image layout.
//
// Where things are:
//
//	store.go         registries and local layouts (Store)
//	artifact.go      a release: files and metadata as an OCI artifact
//	sign.go          cosign-compatible keys and signatures
//	head.go          signed channel heads; verify.go verifying them
//	publish.go       Publisher: publish, promote, rollout, halt, prune
//	trust.go         what an install has seen (no rollback of heads)
//	subscription.go  an operator's subscription (subscription.yaml)
//	decide.go        the upgrade decision and its path of hops
//	install.go       Installer: journaled, crash-safe hops, health, rollback
//	upgrade.go       Client: check a channel; run.go one operator run
//	outcome.go       the typed actions and results
package channels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/relcheck/relcheck/report"
)

// ErrNotFound is a tag or digest the store does not have.
var ErrNotFound = errors.New("not found")

// Store is where releases and channel heads live. Both implementations —
// a registry repository and a local OCI image layout (oci:DIR) — pass the
// same conformance suite.
type Store interface {
	// String names the store as the user wrote it.
	String() string
	// Put writes img (blobs, then manifest) and, when tag is set, points
	// tag at it.
	Put(ctx context.Context, img v1.Image, tag string) (v1.Hash, error)
	// Get reads the image with digest d; its manifest hashes to d.
	Get(ctx context.Context, d v1.Hash) (v1.Image, error)
	// Resolve returns the digest tag points at (ErrNotFound when none).
	Resolve(ctx context.Context, tag string) (v1.Hash, error)
	// Tags lists the tags, sorted.
	Tags(ctx context.Context) ([]string, error)
	// Tag points tag at the existing manifest d.
	Tag(ctx context.Context, tag string, d v1.Hash) error
}

// Open opens a store: "oci:DIR" for a local OCI image layout (created on
// first write), anything else is a registry repository reference
// (REGISTRY/REPO). insecure allows plain HTTP (loopback registries use it
// anyway).
func Open(ref string, insecure bool) (Store, error) {
	return OpenWith(ref, insecure, DefaultNetwork)
}

// OpenWith is Open with the network operations of a registry bounded by n.
func OpenWith(ref string, insecure bool, n Network) (Store, error) {
	if dir, ok := strings.CutPrefix(ref, "oci:"); ok {
		if dir == "" {
			return nil, fmt.Errorf("%q: give a directory after oci:", ref)
		}
		return &layoutStore{ref: ref, dir: dir}, nil
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("%q is not a repository (REGISTRY/NAME, or oci:DIR): %v", ref, err)
	}
	return &registryStore{ref: ref, repo: repo, net: n}, nil
}

// registryStore is a repository in an OCI registry.
type registryStore struct {
	ref  string
	repo name.Repository
	net  Network

	// One puller and one pusher for all calls: token exchanges and
	// connections are reused instead of pinging the registry every time.
	once     sync.Once
	rt       http.RoundTripper
	pullOnce sync.Once
	puller   *remote.Puller
	pusher   *remote.Pusher
}

func (s *registryStore) String() string { return s.ref }

// roundTripper is the store's bounded HTTP transport.
func (s *registryStore) roundTripper() http.RoundTripper {
	s.once.Do(func() { s.rt = s.net.transport() })
	return s.rt
}

func (s *registryStore) opts(ctx context.Context) []remote.Option {
	base := append([]remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)}, s.net.remoteOptions(s.roundTripper())...)
	s.pullOnce.Do(func() {
		s.puller, _ = remote.NewPuller(base...)
		s.pusher, _ = remote.NewPusher(base...)
	})
	opts := append(base, remote.WithContext(ctx))
	if s.puller != nil {
		opts = append(opts, remote.Reuse(s.puller))
	}
	if s.pusher != nil {
		opts = append(opts, remote.Reuse(s.pusher))
	}
	return opts
}

func (s *registryStore) Put(ctx context.Context, img v1.Image, tag string) (v1.Hash, error) {
	d, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	var ref name.Reference = s.repo.Digest(d.String())
	if tag != "" {
		ref = s.repo.Tag(tag)
	}
	if err := remote.Write(ref, img, s.opts(ctx)...); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing to %s: %w", ref, err)
	}
	return d, nil
}

func (s *registryStore) Get(ctx context.Context, d v1.Hash) (v1.Image, error) {
	img, err := remote.Image(s.repo.Digest(d.String()), s.opts(ctx)...)
	if notFound(err) {
		return nil, fmt.Errorf("%s@%s: %w", s.ref, d, ErrNotFound)
	}
	return img, err
}

func (s *registryStore) Resolve(ctx context.Context, tag string) (v1.Hash, error) {
	desc, err := remote.Head(s.repo.Tag(tag), s.opts(ctx)...)
	if notFound(err) {
		return v1.Hash{}, fmt.Errorf("%s:%s: %w", s.ref, tag, ErrNotFound)
	}
	if err != nil {
		return v1.Hash{}, err
	}
	return desc.Digest, nil
}

func (s *registryStore) Tags(ctx context.Context) ([]string, error) {
	tags, err := remote.List(s.repo, s.opts(ctx)...)
	if notFound(err) {
		return nil, nil
	}
	slices.Sort(tags)
	return tags, err
}

func (s *registryStore) Tag(ctx context.Context, tag string, d v1.Hash) error {
	desc, err := remote.Get(s.repo.Digest(d.String()), s.opts(ctx)...)
	if notFound(err) {
		return fmt.Errorf("%s@%s: %w", s.ref, d, ErrNotFound)
	}
	if err != nil {
		return err
	}
	return remote.Tag(s.repo.Tag(tag), desc, s.opts(ctx)...)
}

// notFound reports whether a registry said that a name or manifest does
// not exist.
func notFound(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if te.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range te.Errors {
		if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}

// layoutStore is a local OCI image layout; tags are the index's
// org.opencontainers.image.ref.name annotations. Writers take a file lock.
type layoutStore struct {
	ref string
	dir string
}

const refName = "org.opencontainers.image.ref.name"

func (s *layoutStore) String() string { return s.ref }

// path opens the layout, creating it when create is set.
func (s *layoutStore) path(create bool) (layout.Path, error) {
	p, err := layout.FromPath(s.dir)
	if err == nil || !create {
		if err != nil {
			return "", fmt.Errorf("%s: not an OCI image layout: %w", s.ref, ErrNotFound)
		}
		// ggcr reads index.json whole, at every look-up: bound it first.
		if err := s.checkFile("index.json", maxIndex); err != nil {
			return "", err
		}
		return p, nil
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return "", err
	}
	return layout.Write(s.dir, empty.Index)
}

// locked runs f holding an exclusive lock on the layout.
func (s *layoutStore) locked(ctx context.Context, f func(layout.Path) error) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	unlock, err := s.flock(ctx, syscall.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := s.path(true)
	if err != nil {
		return err
	}
	return f(p)
}

// rlocked runs f holding a shared lock on an existing layout: writers
// rewrite index.json in place.
func (s *layoutStore) rlocked(ctx context.Context, f func(layout.Path) error) error {
	if _, err := os.Stat(s.dir); err != nil {
		return fmt.Errorf("%s: %w", s.ref, ErrNotFound)
	}
	unlock, err := s.flock(ctx, syscall.LOCK_SH)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := s.path(false)
	if err != nil {
		return err
	}
	return f(p)
}

// flock takes the layout's lock file in mode how. A reader of a layout
// it cannot write (no lock file, a read-only directory) reads unlocked:
// nobody can be writing it through relcheck either.
func (s *layoutStore) flock(ctx context.Context, how int) (func(), error) {
	lf, err := os.OpenFile(filepath.Join(s.dir, ".relcheck.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil && how == syscall.LOCK_SH {
		if lf, err = os.Open(filepath.Join(s.dir, ".relcheck.lock")); err != nil {
			return func() {}, nil
		}
	}
	if err != nil {
		return nil, err
	}
	if err := waitFlock(ctx, lf, how, LayoutLockWait); err != nil {
		lf.Close()
		return nil, fmt.Errorf("%s: %w", s.ref, err)
	}
	return func() { syscall.Flock(int(lf.Fd()), syscall.LOCK_UN); lf.Close() }, nil
}

func (s *layoutStore) Put(ctx context.Context, img v1.Image, tag string) (v1.Hash, error) {
	d, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	err = s.locked(ctx, func(p layout.Path) error {
		if tag != "" {
			return p.ReplaceImage(img, match.Annotation(refName, tag), layout.WithAnnotations(map[string]string{refName: tag}))
		}
		if has, err := s.inIndex(p, d); err != nil || has {
			return err
		}
		return p.AppendImage(img)
	})
	return d, err
}

// inIndex reports whether the index lists manifest d.
func (s *layoutStore) inIndex(p layout.Path, d v1.Hash) (bool, error) {
	ms, err := indexManifests(p)
	return slices.ContainsFunc(ms, func(m v1.Descriptor) bool { return m.Digest == d }), err
}

// indexManifests lists the descriptors of a layout's index.
func indexManifests(p layout.Path) ([]v1.Descriptor, error) {
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	return im.Manifests, nil
}

func (s *layoutStore) Get(ctx context.Context, d v1.Hash) (v1.Image, error) {
	if _, err := os.Stat(filepath.Join(s.dir, "blobs", d.Algorithm, d.Hex)); err != nil {
		return nil, fmt.Errorf("%s@%s: %w", s.ref, d, ErrNotFound)
	}
	if err := s.checkFile(path.Join("blobs", d.Algorithm, d.Hex), maxManifest); err != nil {
		return nil, err
	}
	var img v1.Image
	err := s.rlocked(ctx, func(p layout.Path) (err error) {
		img, err = p.Image(d)
		return err
	})
	if err != nil {
		return nil, err
	}
	// A registry checks that a manifest hashes to its digest; a directory
	// does not, so check here (the image keeps these bytes).
	raw, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	if got := sha256.Sum256(raw); d.Algorithm != "sha256" || hex.EncodeToString(got[:]) != d.Hex {
		return nil, &VerifyError{Msg: fmt.Sprintf("%s@%s: the manifest stored there has digest sha256:%x", s.ref, d, got)}
	}
	return img, nil
}

// LayoutLockWait bounds the wait for a layout's lock: a writer that hangs
// (or a reader stopped with SIGSTOP) cannot hold every other command.
var LayoutLockWait = 30 * time.Second

// waitFlock takes f's lock in mode how, waiting at most wait (or until
// ctx ends).
func waitFlock(ctx context.Context, f *os.File, how int, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still locked by another process after %s (see %s): try again once it ends", wait, f.Name())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// maxManifest bounds a manifest read from a layout, maxIndex its
// index.json (about 40,000 tags).
const (
	maxManifest = 4 << 20
	maxIndex    = 16 << 20
)

// checkFile refuses a file of the layout (name relative to it) that is
// not a regular file (a symlink to /dev/zero, a FIFO) or is larger than
// max bytes (a sparse file, JSON padded with blanks): what the layout's
// reader would load whole into memory.
func (s *layoutStore) checkFile(name string, max int64) error {
	fi, err := os.Stat(filepath.Join(s.dir, filepath.FromSlash(name)))
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return &VerifyError{Msg: fmt.Sprintf("%s: %s is not a regular file (%s)", s.ref, name, fi.Mode().Type())}
	case fi.Size() > max:
		return &VerifyError{Msg: fmt.Sprintf("%s: %s has %d bytes, more than the %d a layout may hold there", s.ref, name, fi.Size(), max)}
	}
	return nil
}

func (s *layoutStore) manifests(ctx context.Context) ([]v1.Descriptor, error) {
	var ms []v1.Descriptor
	err := s.rlocked(ctx, func(p layout.Path) (err error) {
		ms, err = indexManifests(p)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return ms, err
}

func (s *layoutStore) Resolve(ctx context.Context, tag string) (v1.Hash, error) {
	ms, err := s.manifests(ctx)
	if err != nil {
		return v1.Hash{}, err
	}
	for _, m := range ms {
		if m.Annotations[refName] == tag {
			return m.Digest, nil
		}
	}
	return v1.Hash{}, fmt.Errorf("%s:%s: %w", s.ref, tag, ErrNotFound)
}

func (s *layoutStore) Tags(ctx context.Context) ([]string, error) {
	ms, err := s.manifests(ctx)
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, m := range ms {
		if t := m.Annotations[refName]; t != "" {
			tags = append(tags, t)
		}
	}
	slices.Sort(tags)
	return tags, nil
}

func (s *layoutStore) Tag(ctx context.Context, tag string, d v1.Hash) error {
	img, err := s.Get(ctx, d)
	if err != nil {
		return err
	}
	_, err = s.Put(ctx, img, tag)
	return err
}

// SwapTag moves tag from old (zero: no such tag yet) to the manifest new,
// under the layout's lock: a compare-and-swap.
func (s *layoutStore) SwapTag(ctx context.Context, tag string, old, new v1.Hash) error {
	return s.locked(ctx, func(p layout.Path) error {
		ms, err := indexManifests(p)
		if err != nil {
			return err
		}
		var cur v1.Hash
		for _, m := range ms {
			if m.Annotations[refName] == tag {
				cur = m.Digest
			}
		}
		if cur != old {
			return errConflict
		}
		img, err := p.Image(new)
		if err != nil {
			return err
		}
		return p.ReplaceImage(img, match.Annotation(refName, tag), layout.WithAnnotations(map[string]string{refName: tag}))
	})
}

// DeleteTag removes tag from the index (its blobs stay, as with any
// untagged manifest of a layout).
func (s *layoutStore) DeleteTag(ctx context.Context, tag string) error {
	return s.locked(ctx, func(p layout.Path) error {
		return p.RemoveDescriptors(match.Annotation(refName, tag))
	})
}

// DeleteTag deletes tag. The OCI distribution spec lets a registry delete
// a tag itself; others (distribution) delete manifests by digest only,
// which removes the tag with it: so by tag first, then by digest. Only
// for manifests no other tag shares (signatures of superseded heads). A
// registry that allows neither answers ErrDeleteUnsupported.
func (s *registryStore) DeleteTag(ctx context.Context, tag string) error {
	d, err := s.Resolve(ctx, tag)
	if err != nil {
		return err
	}
	if err := remote.Delete(s.repo.Tag(tag), s.opts(ctx)...); err == nil {
		return nil
	}
	err = remote.Delete(s.repo.Digest(d.String()), s.opts(ctx)...)
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusMethodNotAllowed || te.StatusCode == http.StatusForbidden || te.StatusCode == http.StatusNotImplemented || te.StatusCode == http.StatusBadRequest) {
		return fmt.Errorf("%s: %w (%v)", s.ref, ErrDeleteUnsupported, err)
	}
	if notFound(err) {
		return nil
	}
	return err
}

// ErrDeleteUnsupported: the registry refuses deletes (distribution does
// unless storage.delete.enabled is set).
var ErrDeleteUnsupported = errors.New("the registry does not allow deletes")

// tagDeleter is a store that can delete a tag.
type tagDeleter interface {
	DeleteTag(ctx context.Context, tag string) error
}

// blobRanger is a store that reads a blob from an offset, to resume an
// interrupted download.
type blobRanger interface {
	BlobFrom(ctx context.Context, d v1.Hash, offset int64) (io.ReadCloser, error)
}

func (s *layoutStore) BlobFrom(ctx context.Context, d v1.Hash, offset int64) (io.ReadCloser, error) {
	if err := s.checkFile(path.Join("blobs", d.Algorithm, d.Hex), math.MaxInt64); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, err := os.Open(filepath.Join(s.dir, "blobs", d.Algorithm, d.Hex))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s@%s: %w", s.ref, d, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// BlobFrom asks the registry for the blob from offset on (an HTTP range
// request); a registry that ignores the range sends it all, and the part
// already there is skipped.
func (s *registryStore) BlobFrom(ctx context.Context, d v1.Hash, offset int64) (io.ReadCloser, error) {
	auth, err := authn.DefaultKeychain.Resolve(s.repo.Registry)
	if err != nil {
		return nil, err
	}
	tr, err := transport.NewWithContext(ctx, s.repo.Registry, auth, s.roundTripper(), []string{s.repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", s.repo.Registry.Scheme(), s.repo.RegistryStr(), s.repo.RepositoryStr(), d)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	client := &http.Client{Transport: tr}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		// Some registries refuse ranges: read it all.
		resp.Body.Close()
		req.Header.Del("Range")
		if resp, err = client.Do(req); err != nil {
			return nil, err
		}
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		return resp.Body, nil
	case http.StatusOK:
		if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
			resp.Body.Close()
			return nil, err
		}
		return resp.Body, nil
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%s@%s: %w", s.ref, d, ErrNotFound)
	}
	return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
}

// RemoteImage reads a container image from a registry (publish --image).
func RemoteImage(ctx context.Context, ref string, insecure bool) (v1.Image, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, report.OptionErrorf("Image", "%q: %v", ref, err)
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if notFound(err) {
		return nil, report.OptionErrorf("Image", "%s: no such image", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return img, nil
}
