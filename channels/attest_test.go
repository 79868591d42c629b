package channels

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	slsa1 "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v1"

	"github.com/relcheck/relcheck/internal/regtest"
)

// TestAttestProvenance: a release's SLSA v1 provenance, signed in
// cosign's attestation format, is verified by the real cosign CLI with the
// channel's key — and refused with another key or another type.
func TestAttestProvenance(t *testing.T) {
	if _, err := exec.LookPath("cosign"); err != nil || (!regtest.Available() && os.Getenv("CI") == "") {
		if os.Getenv("CI") != "" {
			t.Fatal("in CI cosign and the registry must be installed (.ci/run installs them)")
		}
		t.Skip("needs the cosign CLI and docker-registry")
	}
	ctx := context.Background()
	dir := t.TempDir()
	priv, pub, err := GenerateKeys(dir, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := LoadSigner(priv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	reg := regtest.Start(t)
	st, err := Open(reg+"/relcheck/att", false)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(128, 1)
	d, err := st.Put(ctx, img, "v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	src := ProvenanceSource{Repository: "github.com/org/app", Commit: strings.Repeat("ab", 20), Ref: "refs/tags/v1.0.0",
		BuilderID: "https://github.com/org/app/.github/workflows/release.yml@refs/tags/v1.0.0", InvocationID: "https://github.com/org/app/actions/runs/1",
		ReportDigest: strings.Repeat("cd", 32), Started: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	if err := signer.Attest(ctx, st, d, slsa1.PredicateSLSAProvenance, ProvenanceSLSA1(src)); err != nil {
		t.Fatal(err)
	}
	ref := reg + "/relcheck/att@" + d.String()
	out, err := exec.Command("cosign", "verify-attestation", "--key", pub, "--type", "slsaprovenance1", "--insecure-ignore-tlog=true", ref).Output()
	if err != nil {
		t.Fatalf("cosign verify-attestation: %v\n%s", err, exitOutput(err))
	}
	var env struct{ Payload string }
	if err := json.Unmarshal([]byte(strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]), &env); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	stmt, _ := base64.StdEncoding.DecodeString(env.Payload)
	for _, want := range []string{`"predicateType":"https://slsa.dev/provenance/v1"`, `"sha256":"` + d.Hex + `"`, `"gitCommit":"` + src.Commit + `"`,
		`"uri":"git+https://github.com/org/app@refs/tags/v1.0.0"`, `"id":"` + src.BuilderID + `"`} {
		if !strings.Contains(string(stmt), want) {
			t.Errorf("the statement lacks %s:\n%s", want, stmt)
		}
	}
	// Another key, another predicate type: refused.
	_, other, err := GenerateKeys(filepath.Join(dir, "other"), []byte("pw"))
	if err != nil {
		os.MkdirAll(filepath.Join(dir, "other"), 0o755)
		_, other, err = GenerateKeys(filepath.Join(dir, "other"), []byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := exec.Command("cosign", "verify-attestation", "--key", other, "--type", "slsaprovenance1", "--insecure-ignore-tlog=true", ref).Run(); err == nil {
		t.Error("another key verified the attestation")
	}
	if err := exec.Command("cosign", "verify-attestation", "--key", pub, "--type", "spdxjson", "--insecure-ignore-tlog=true", ref).Run(); err == nil {
		t.Error("an SPDX attestation was found where there is none")
	}
}

func exitOutput(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
