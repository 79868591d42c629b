package channels

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relcheck/relcheck/report"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/empty"
	ocimutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Key file names, as cosign generate-key-pair writes them.
const (
	PrivateKeyFile = "cosign.key"
	PublicKeyFile  = "cosign.pub"
)

// sigAnnotation holds a layer's base64 signature in cosign's format.
const sigAnnotation = "dev.cosignproject.cosign/signature"

// Bounds on what is read back from a store when verifying.
const (
	maxSignatures = 64
	maxPayload    = 64 << 10
)

// VerifyError is a signature or channel head that does not verify.
type VerifyError struct{ Msg string }

func (e *VerifyError) Error() string { return e.Msg }

// ExitCode is report.ExitFindings: the channel is not to be trusted.
func (e *VerifyError) ExitCode() int { return report.ExitFindings }

func verifyErrorf(format string, args ...any) error {
	return &VerifyError{Msg: fmt.Sprintf(format, args...)}
}

// KeysAbsent refuses a directory that holds a key pair already: a key is
// never overwritten. GenerateKeys asks it; a CLI may ask before it asks
// for a password.
func KeysAbsent(dir string) error {
	for _, f := range []string{filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)} {
		if _, err := os.Lstat(f); err == nil {
			return &report.InputError{Err: fmt.Errorf("%s already exists: move it away first, a key is not overwritten", f)}
		}
	}
	return nil
}

// GenerateKeys writes a cosign-compatible encrypted key pair, cosign.key
// and cosign.pub, into dir. It refuses to overwrite either file.
func GenerateKeys(dir string, password []byte) (priv, pub string, err error) {
	if err := KeysAbsent(dir); err != nil {
		return "", "", err
	}
	priv, pub = filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		return "", "", err
	}
	if err := writeNew(priv, kb.PrivateBytes, 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(pub, kb.PublicBytes, 0o644); err != nil {
		os.Remove(priv)
		return "", "", err
	}
	return priv, pub, nil
}

// writeNew creates path with data, failing if it exists.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// Signer signs manifests with a cosign private key.
type Signer struct {
	sv signature.SignerVerifier
}

// LoadSigner reads an encrypted cosign private key.
func LoadSigner(keyFile string, password []byte) (*Signer, error) {
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, &report.InputError{Err: fmt.Errorf("signing key: %w (create one with 'relcheck keys generate')", err)}
	}
	sv, err := cosign.LoadPrivateKey(raw, password, nil)
	if err != nil {
		if strings.Contains(err.Error(), "decrypt") {
			return nil, &report.InputError{Err: fmt.Errorf("%s: wrong password (COSIGN_PASSWORD)", keyFile)}
		}
		return nil, &report.InputError{Err: fmt.Errorf("%s: not a cosign private key: %v", keyFile, err)}
	}
	return &Signer{sv: sv}, nil
}

// Verifier returns the verifier of the signer's public key.
func (s *Signer) Verifier() (*Verifier, error) {
	pub, err := s.sv.PublicKey()
	if err != nil {
		return nil, err
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &Verifier{v: v}, nil
}

// Verifier checks cosign signatures against a public key.
type Verifier struct {
	v signature.Verifier
}

// LoadVerifier reads a PEM public key such as cosign.pub.
func LoadVerifier(pubFile string) (*Verifier, error) {
	raw, err := os.ReadFile(pubFile)
	if err != nil {
		return nil, &report.InputError{Err: fmt.Errorf("public key: %w (give the channel's public key with --key FILE)", err)}
	}
	return ParseVerifier(raw, pubFile)
}

// ParseVerifier parses a PEM public key; name is used in errors.
func ParseVerifier(raw []byte, name string) (*Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(raw)
	if err != nil {
		return nil, &report.InputError{Err: fmt.Errorf("%s: not a PEM public key: %v", name, err)}
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, &report.InputError{Err: fmt.Errorf("%s: %v", name, err)}
	}
	return &Verifier{v: v}, nil
}

// SignatureTag is where cosign keeps the signatures of manifest d.
func SignatureTag(d v1.Hash) string {
	return d.Algorithm + "-" + d.Hex + ".sig"
}

// identity is the docker-reference a signature payload names: the
// registry repository, or a fixed name for a local layout (cosign checks
// the digest, not this name, when verifying with a key).
func identity(st Store, d v1.Hash) (name.Digest, error) {
	repo := "localhost/relcheck-layout"
	if rs, ok := st.(*registryStore); ok {
		repo = rs.repo.Name()
	}
	return name.NewDigest(repo + "@" + d.String())
}

// Sign signs manifest d in st in cosign's format: a simple-signing payload
// naming d, signed, as a layer of the image at tag sha256-<hex>.sig. A
// valid signature by the same key that is already there is kept instead
// of adding a duplicate.
func (s *Signer) Sign(ctx context.Context, st Store, d v1.Hash) error {
	ref, err := identity(st, d)
	if err != nil {
		return err
	}
	pl, err := (&payload.Cosign{Image: ref}).MarshalJSON()
	if err != nil {
		return err
	}
	existing, err := readSignatures(ctx, st, d)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	base := oci.Signatures(empty.Signatures())
	if existing != nil {
		base = existing
		v, err := s.Verifier()
		if err != nil {
			return err
		}
		if v.check(ctx, existing, d) == nil {
			return nil // already signed by this key
		}
	}
	raw, err := s.sv.SignMessage(bytes.NewReader(pl))
	if err != nil {
		return err
	}
	sig, err := static.NewSignature(pl, base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		return err
	}
	sigs, err := ocimutate.AppendSignatures(base, false, sig)
	if err != nil {
		return err
	}
	if _, err := st.Put(ctx, sigs, SignatureTag(d)); err != nil {
		return fmt.Errorf("writing the signature of %s: %w", d, err)
	}
	return nil
}

// Verify checks that manifest d in st carries a valid cosign signature by
// the verifier's key, with cosign's own verification (offline: no
// transparency log).
func (v *Verifier) Verify(ctx context.Context, st Store, d v1.Hash) error {
	sigs, err := readSignatures(ctx, st, d)
	if errors.Is(err, ErrNotFound) {
		return verifyErrorf("%s@%s is not signed (no %s)", st, d, SignatureTag(d))
	}
	if err != nil {
		return err
	}
	return v.check(ctx, sigs, d)
}

func (v *Verifier) check(ctx context.Context, sigs oci.Signatures, d v1.Hash) error {
	list, err := sigs.Get()
	if err != nil {
		return verifyErrorf("signatures of %s: %v", d, err)
	}
	co := &cosign.CheckOpts{SigVerifier: v.v, IgnoreTlog: true, IgnoreSCT: true, ClaimVerifier: cosign.SimpleClaimVerifier}
	var errs []string
	for _, sig := range list {
		if _, err := cosign.VerifyImageSignature(ctx, sig, d, co); err == nil {
			return nil
		} else {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) == 0 {
		return verifyErrorf("%s is not signed", d)
	}
	return verifyErrorf("no signature of %s matches the key: %s", d, strings.Join(errs, "; "))
}

// readSignatures reads the signature image of manifest d.
func readSignatures(ctx context.Context, st Store, d v1.Hash) (oci.Signatures, error) {
	sd, err := st.Resolve(ctx, SignatureTag(d))
	if err != nil {
		return nil, err
	}
	img, err := st.Get(ctx, sd)
	if err != nil {
		return nil, err
	}
	return &sigImage{Image: img}, nil
}

// sigImage reads a cosign signature image from any store.
type sigImage struct{ v1.Image }

func (s *sigImage) Get() ([]oci.Signature, error) {
	m, err := s.Manifest()
	if err != nil {
		return nil, err
	}
	if len(m.Layers) > maxSignatures {
		return nil, fmt.Errorf("%d signatures, more than %d", len(m.Layers), maxSignatures)
	}
	var out []oci.Signature
	for _, l := range m.Layers {
		if l.Size > maxPayload {
			return nil, fmt.Errorf("a signature payload of %d bytes, more than %d", l.Size, maxPayload)
		}
		layer, err := s.LayerByDigest(l.Digest)
		if err != nil {
			return nil, err
		}
		rc, err := layer.Compressed()
		if err != nil {
			return nil, err
		}
		pl, err := io.ReadAll(io.LimitReader(rc, maxPayload+1))
		rc.Close()
		if err != nil {
			return nil, err
		}
		sig, err := static.NewSignature(pl, l.Annotations[sigAnnotation])
		if err != nil {
			return nil, err
		}
		out = append(out, sig)
	}
	return out, nil
}

// PublicKeyPEM returns the signer's public key as cosign.pub holds it.
func (s *Signer) PublicKeyPEM() ([]byte, error) {
	pub, err := s.sv.PublicKey()
	if err != nil {
		return nil, err
	}
	return cryptoutils.MarshalPublicKeyToPEM(pub)
}
