package channels

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types of a release artifact.
const (
	ArtifactType    = "application/vnd.relcheck.release.v1"
	ConfigMediaType = "application/vnd.relcheck.release.config.v1+json"
	FileMediaType   = "application/vnd.relcheck.file.v1"
	// AnnotationTitle names a layer's file, as oras does.
	AnnotationTitle = "org.opencontainers.image.title"
	// AnnotationMode keeps a file's permission bits (octal).
	AnnotationMode = "dev.relcheck.file.mode"
)

// Metadata is a release artifact's config blob: what the release is.
type Metadata struct {
	Project string    `json:"project,omitempty"`
	Version string    `json:"version"`
	Commit  string    `json:"commit,omitempty"`
	Created time.Time `json:"created"`
	// APIBump is the api gate's verdict ("major", "minor", "patch").
	APIBump string `json:"apiBump,omitempty"`
	// Migrations is the range of migration versions the release brings,
	// and the schema objects it adds or drops.
	Migrations *MigrationFacts `json:"migrations,omitempty"`
	// RequiredStop marks a release every upgrade path must pass through.
	RequiredStop bool `json:"requiredStop,omitempty"`
	// Report is the digest of the check report the release passed.
	Report string     `json:"report,omitempty"`
	Files  []FileInfo `json:"files"`
	// Platforms maps a file's name to the platform it is for
	// ("linux/amd64"), when the build said so (goreleaser's dist/).
	Platforms map[string]string `json:"-"`
}

// MigrationFacts are what the migrations gate knew about a release.
type MigrationFacts struct {
	From       uint     `json:"from"`
	To         uint     `json:"to"`
	Added      []string `json:"added,omitempty"`
	Dropped    []string `json:"dropped,omitempty"`
	Deprecated []string `json:"deprecated,omitempty"`
}

// FileInfo is one file of a release.
type FileInfo struct {
	Name   string `json:"name"`
	Mode   string `json:"mode"`
	Size   int64  `json:"size"`
	Digest string `json:"digest"`
	// Platform is the os/arch the file is for, when known.
	Platform string `json:"platform,omitempty"`
}

// NewRelease builds a release artifact from files: an OCI image manifest
// with artifactType, the metadata as its config, and one layer per file
// titled with the file's base name and carrying its mode. Files are
// hashed once here and read again when pushed, never held in memory;
// progress, when set, is told how many bytes of them were read.
func NewRelease(meta Metadata, files []string, progress func(n int64)) (v1.Image, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("a release needs at least one file")
	}
	a := &artifact{layers: map[v1.Hash]partial.CompressedLayer{}}
	seen := map[string]bool{}
	meta.Files = nil
	for _, f := range files {
		l, err := newFileLayer(f)
		if err != nil {
			return nil, err
		}
		l.progress = progress
		if seen[l.title] {
			return nil, fmt.Errorf("two files are named %s: a release's files need distinct names", l.title)
		}
		seen[l.title] = true
		a.layers[l.digest] = l
		a.manifest.Layers = append(a.manifest.Layers, v1.Descriptor{MediaType: FileMediaType, Size: l.size, Digest: l.digest,
			Annotations: map[string]string{AnnotationTitle: l.title, AnnotationMode: fmt.Sprintf("%04o", l.mode)}})
		meta.Files = append(meta.Files, FileInfo{Name: l.title, Mode: fmt.Sprintf("%04o", l.mode), Size: l.size, Digest: l.digest.String(), Platform: meta.Platforms[l.title]})
	}
	cfg, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	a.config = cfg
	cd, cs, err := v1.SHA256(bytes.NewReader(cfg))
	if err != nil {
		return nil, err
	}
	a.manifest.SchemaVersion = 2
	a.manifest.MediaType = types.OCIManifestSchema1
	a.manifest.ArtifactType = ArtifactType
	a.manifest.Config = v1.Descriptor{MediaType: ConfigMediaType, Size: cs, Digest: cd}
	a.manifest.Annotations = map[string]string{
		"org.opencontainers.image.version": meta.Version,
		"org.opencontainers.image.created": meta.Created.UTC().Format(time.RFC3339),
	}
	if meta.Commit != "" {
		a.manifest.Annotations["org.opencontainers.image.revision"] = meta.Commit
	}
	if a.raw, err = json.Marshal(a.manifest); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(a)
}

// ReadMetadata reads a release artifact's metadata.
func ReadMetadata(img v1.Image) (*Metadata, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if m.ArtifactType != ArtifactType || m.Config.MediaType != ConfigMediaType {
		return nil, fmt.Errorf("not a relcheck release (artifactType %q)", m.ArtifactType)
	}
	if m.Config.Size > maxMetadata {
		return nil, fmt.Errorf("release metadata of %d bytes is larger than %d", m.Config.Size, maxMetadata)
	}
	raw, err := readConfig(img, m.Config, maxMetadata)
	if err != nil {
		return nil, fmt.Errorf("release metadata: %w", err)
	}
	return ParseMetadata(raw)
}

// maxMetadata bounds a release's metadata: it is read from registries.
const maxMetadata = 1 << 20

// ParseMetadata parses a release's config blob, strictly.
func ParseMetadata(raw []byte) (*Metadata, error) {
	var m Metadata
	if err := decodeStrict(raw, maxMetadata, "release metadata", &m); err != nil {
		return nil, err
	}
	if m.Version == "" {
		return nil, fmt.Errorf("release metadata: no version")
	}
	return &m, nil
}

// artifact is a release artifact as go-containerregistry's partial
// package wants it: a raw manifest, a raw config and layers by digest.
type artifact struct {
	manifest v1.Manifest
	raw      []byte
	config   []byte
	layers   map[v1.Hash]partial.CompressedLayer
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.raw, nil }

func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == a.manifest.Config.Digest {
		return partial.ConfigLayer(a)
	}
	if l, ok := a.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("no layer %s in the release", h)
}

// fileLayer is a file as a layer, streamed from disk.
type fileLayer struct {
	path   string
	title  string
	mode   os.FileMode
	size   int64
	digest v1.Hash
	// progress is told of every read.
	progress func(n int64)
}

func newFileLayer(path string) (*fileLayer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, err
	}
	return &fileLayer{path: path, title: filepath.Base(path), mode: st.Mode().Perm(), size: n,
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return FileMediaType, nil }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return l.Compressed() }

func (l *fileLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil || l.progress == nil {
		return f, err
	}
	return &progressReader{ReadCloser: f, progress: l.progress}, nil
}

// progressReader reports what is read through it.
type progressReader struct {
	io.ReadCloser
	progress func(n int64)
}

func (r *progressReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		r.progress(int64(n))
	}
	return n, err
}

// decodeStrict parses one JSON document of at most limit bytes into v:
// no unknown fields, nothing after it. Errors start with what.
func decodeStrict(raw []byte, limit int, what string, v any) error {
	if len(raw) > limit {
		return fmt.Errorf("%s of %d bytes is larger than %d", what, len(raw), limit)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%s: data after the document", what)
	}
	return nil
}

// readConfig reads an artifact's config blob, at most limit bytes, and
// checks it against its digest (a layout does not).
func readConfig(img v1.Image, desc v1.Descriptor, limit int) ([]byte, error) {
	cl, err := img.LayerByDigest(desc.Digest)
	if err != nil {
		return nil, err
	}
	rc, err := cl.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > limit {
		return nil, &VerifyError{Msg: fmt.Sprintf("larger than the limit of %d bytes", limit)}
	}
	if got := sha256.Sum256(raw); hex.EncodeToString(got[:]) != desc.Digest.Hex {
		return nil, &VerifyError{Msg: fmt.Sprintf("served with content of digest sha256:%x, not %s", got, desc.Digest)}
	}
	return raw, nil
}
