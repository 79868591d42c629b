package channels

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
)

// Policy is what an operator requires of a release's attestations before
// installing it (subscription.yaml's policy:).
type Policy struct {
	Provenance *ProvenancePolicy `yaml:"provenance,omitempty"`
	// SBOM requires a signed CycloneDX SBOM.
	SBOM bool `yaml:"sbom,omitempty"`
}

// ProvenancePolicy requires a signed SLSA v1 provenance naming Source
// (host/path, as publish writes it) and, when set, a builder id matching
// Builder (a regular expression).
type ProvenancePolicy struct {
	Source  string `yaml:"source"`
	Builder string `yaml:"builder,omitempty"`
}

// validate checks the policy's values; the key is relative to policy.
func (p *Policy) validate() (key string, err error) {
	if p.Provenance != nil {
		if strings.TrimSpace(p.Provenance.Source) == "" {
			return "provenance.source", errors.New("missing: the source repository as host/path, like github.com/org/app")
		}
		if _, err := regexp.Compile(p.Provenance.Builder); err != nil {
			return "provenance.builder", fmt.Errorf("not a regular expression: %v", err)
		}
	}
	return "", nil
}

// Statement is a verified in-toto statement about a release.
type Statement struct {
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
	Subject       []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
}

// Attestations are the statements about manifest d whose DSSE signature
// verifies with the key and whose subject is d; the others are left out
// (said in the error when none is left).
func (v *Verifier) Attestations(ctx context.Context, st Store, d v1.Hash) ([]Statement, error) {
	ad, err := st.Resolve(ctx, AttestationTag(d))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	img, err := st.Get(ctx, ad)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if len(m.Layers) > maxSignatures {
		return nil, verifyErrorf("%d attestations of %s, more than %d", len(m.Layers), d, maxSignatures)
	}
	var out []Statement
	for _, l := range m.Layers {
		if l.Size > 4<<20 {
			continue
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return nil, err
		}
		rc, err := layer.Compressed()
		if err != nil {
			return nil, err
		}
		envelope, err := io.ReadAll(io.LimitReader(rc, 4<<20))
		rc.Close()
		if err != nil {
			return nil, err
		}
		if dsse.WrapVerifier(v.v).VerifySignature(bytes.NewReader(envelope), nil) != nil {
			continue // not signed by this key
		}
		var env struct {
			PayloadType string `json:"payloadType"`
			Payload     string `json:"payload"`
		}
		if json.Unmarshal(envelope, &env) != nil || env.PayloadType != "application/vnd.in-toto+json" {
			continue
		}
		payload, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			continue
		}
		var s Statement
		if json.Unmarshal(payload, &s) != nil {
			continue
		}
		for _, sub := range s.Subject {
			if sub.Digest[d.Algorithm] == d.Hex {
				out = append(out, s)
				break
			}
		}
	}
	return out, nil
}

// Check says why a release's verified statements do not meet the policy
// (nil when they do).
func (p *Policy) Check(stmts []Statement) error {
	if p == nil {
		return nil
	}
	var why []string
	if pp := p.Provenance; pp != nil {
		var found []string
		ok := false
		for _, s := range stmts {
			if s.PredicateType != PredicateSLSAProvenance1 {
				continue
			}
			var pred struct {
				BuildDefinition struct {
					ResolvedDependencies []struct {
						URI string `json:"uri"`
					} `json:"resolvedDependencies"`
				} `json:"buildDefinition"`
				RunDetails struct {
					Builder struct {
						ID string `json:"id"`
					} `json:"builder"`
				} `json:"runDetails"`
			}
			if json.Unmarshal(s.Predicate, &pred) != nil {
				continue
			}
			source := ""
			for _, dep := range pred.BuildDefinition.ResolvedDependencies {
				u := strings.TrimPrefix(dep.URI, "git+https://")
				u, _, _ = strings.Cut(u, "@")
				source = u
			}
			found = append(found, fmt.Sprintf("source %s, builder %s", orNone(source), orNone(pred.RunDetails.Builder.ID)))
			if source == pp.Source && (pp.Builder == "" || regexp.MustCompile(pp.Builder).MatchString(pred.RunDetails.Builder.ID)) {
				ok = true
			}
		}
		switch {
		case ok:
		case len(found) == 0:
			why = append(why, "no SLSA provenance signed by the channel's key")
		default:
			want := "source " + pp.Source
			if pp.Builder != "" {
				want += ", builder matching " + pp.Builder
			}
			why = append(why, fmt.Sprintf("its provenance names %s; the policy asks for %s", strings.Join(found, "; "), want))
		}
	}
	if p.SBOM {
		has := false
		for _, s := range stmts {
			has = has || s.PredicateType == PredicateCycloneDX
		}
		if !has {
			why = append(why, "no CycloneDX SBOM signed by the channel's key")
		}
	}
	if len(why) > 0 {
		return verifyErrorf("refused by the subscription's policy: %s", strings.Join(why, "; "))
	}
	return nil
}
