package channels

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPolicyCheck(t *testing.T) {
	prov, _ := json.Marshal(ProvenanceSLSA1(ProvenanceSource{Repository: "github.com/org/app", Commit: "abc", BuilderID: "https://github.com/org/app/.github/workflows/r.yml@refs/tags/v1"}))
	stmts := []Statement{{PredicateType: PredicateSLSAProvenance1, Predicate: prov}, {PredicateType: PredicateCycloneDX, Predicate: json.RawMessage(`{}`)}}
	p := &Policy{Provenance: &ProvenancePolicy{Source: "github.com/org/app", Builder: "^https://github.com/org/app/"}, SBOM: true}
	if err := p.Check(stmts); err != nil {
		t.Errorf("a release that meets the policy: %v", err)
	}
	if err := p.Check(stmts[:1]); err == nil || !strings.Contains(err.Error(), "no CycloneDX SBOM") {
		t.Errorf("no SBOM: %v", err)
	}
	p.Provenance.Source = "github.com/other/app"
	if err := p.Check(stmts); err == nil || !strings.Contains(err.Error(), "its provenance names source github.com/org/app") {
		t.Errorf("another source: %v", err)
	}
	if err := p.Check(nil); err == nil || !strings.Contains(err.Error(), "no SLSA provenance") {
		t.Errorf("nothing: %v", err)
	}
	if _, err := (&Policy{Provenance: &ProvenancePolicy{Source: "x", Builder: "["}}).validate(); err == nil {
		t.Error("a bad builder pattern was accepted")
	}
}

func FuzzPolicyCheck(f *testing.F) {
	prov, _ := json.Marshal(ProvenanceSLSA1(ProvenanceSource{Repository: "github.com/org/app", Commit: "abc", BuilderID: "b"}))
	f.Add(string(prov))
	f.Add(`{"buildDefinition":{"resolvedDependencies":[{"uri":"git+https://x@"}]}}`)
	f.Fuzz(func(t *testing.T, pred string) {
		p := &Policy{Provenance: &ProvenancePolicy{Source: "github.com/org/app", Builder: "b"}, SBOM: true}
		p.Check([]Statement{{PredicateType: PredicateSLSAProvenance1, Predicate: json.RawMessage(pred)}})
	})
}
