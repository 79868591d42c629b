package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/in-toto/in-toto-golang/in_toto"
	"github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/common"
	slsa1 "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v1"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/empty"
	ocimutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
)

// Attestations: signed in-toto statements about a release, in cosign's
// attestation format — a DSSE envelope (payload type
// application/vnd.in-toto+json) signed with the channel's key, as a layer
// of the image at tag sha256-<hex>.att, its predicate type annotated — so
// that `cosign verify-attestation --key cosign.pub --type …` checks them.

// AttestationTag is where cosign keeps the attestations of manifest d.
func AttestationTag(d v1.Hash) string {
	return d.Algorithm + "-" + d.Hex + ".att"
}

// Attest signs an in-toto statement with predicate about manifest d of st
// and attaches it next to the attestations already there.
func (s *Signer) Attest(ctx context.Context, st Store, d v1.Hash, predicateType string, predicate any) error {
	ref, err := identity(st, d)
	if err != nil {
		return err
	}
	stmt := in_toto.Statement{
		StatementHeader: in_toto.StatementHeader{Type: "https://in-toto.io/Statement/v1", PredicateType: predicateType,
			Subject: []in_toto.Subject{{Name: ref.Context().Name(), Digest: common.DigestSet{d.Algorithm: d.Hex}}}},
		Predicate: predicate,
	}
	payload, err := json.Marshal(stmt)
	if err != nil {
		return err
	}
	envelope, err := dsse.WrapSigner(s.sv, types.IntotoPayloadType).SignMessage(bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("signing the %s attestation: %w", predicateType, err)
	}
	att, err := static.NewAttestation(envelope, static.WithLayerMediaType(types.DssePayloadType),
		static.WithAnnotations(map[string]string{"predicateType": predicateType}))
	if err != nil {
		return err
	}
	base := oci.Signatures(empty.Signatures())
	if ad, err := st.Resolve(ctx, AttestationTag(d)); err == nil {
		img, err := st.Get(ctx, ad)
		if err != nil {
			return err
		}
		base = &sigImage{Image: img}
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	atts, err := ocimutate.AppendSignatures(base, false, att)
	if err != nil {
		return err
	}
	if _, err := st.Put(ctx, atts, AttestationTag(d)); err != nil {
		return fmt.Errorf("writing the attestations of %s: %w", d, err)
	}
	return nil
}

// ProvenanceSource is what a release's SLSA provenance says about how it
// was made.
type ProvenanceSource struct {
	// Repository is the source repository (host/path) and Commit the
	// commit built; Ref the git ref, when known.
	Repository, Commit, Ref string
	// BuilderID names what built and published it: the CI workflow, or
	// relcheck on a maintainer's machine.
	BuilderID string
	// InvocationID is the CI run, when there is one.
	InvocationID string
	// Report is the relcheck report of the commit (its digest), when the
	// gates ran.
	ReportDigest string
	Started      time.Time
}

// BuildTypeRelcheck is the SLSA buildType of a relcheck publish.
const BuildTypeRelcheck = "https://github.com/relcheck/relcheck/publish/v1"

// ProvenanceSLSA1 is the SLSA v1 provenance predicate of a publish.
func ProvenanceSLSA1(src ProvenanceSource) slsa1.ProvenancePredicate {
	uri := "git+https://" + src.Repository
	if src.Ref != "" {
		uri += "@" + src.Ref
	}
	p := slsa1.ProvenancePredicate{
		BuildDefinition: slsa1.ProvenanceBuildDefinition{
			BuildType:            BuildTypeRelcheck,
			ExternalParameters:   map[string]any{"source": uri},
			ResolvedDependencies: []slsa1.ResourceDescriptor{{URI: uri, Digest: common.DigestSet{"gitCommit": src.Commit}}},
		},
		RunDetails: slsa1.ProvenanceRunDetails{Builder: slsa1.Builder{ID: src.BuilderID}},
	}
	if src.InvocationID != "" || !src.Started.IsZero() {
		p.RunDetails.BuildMetadata = slsa1.BuildMetadata{InvocationID: src.InvocationID}
		if !src.Started.IsZero() {
			t := src.Started.UTC()
			p.RunDetails.BuildMetadata.StartedOn = &t
		}
	}
	if src.ReportDigest != "" {
		p.RunDetails.Byproducts = []slsa1.ResourceDescriptor{{Name: "relcheck report", Digest: common.DigestSet{"sha256": src.ReportDigest}, MediaType: "application/json"}}
	}
	return p
}

// PredicateSLSAProvenance1 is SLSA v1 provenance's predicate type (cosign's
// --type slsaprovenance1).
const PredicateSLSAProvenance1 = slsa1.PredicateSLSAProvenance
