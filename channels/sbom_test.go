package channels

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSBOM: this test binary is a Go binary (its own build information:
// the main module, the Go version, the build settings); a plain file gets
// its digest.
func TestSBOM(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), "NOTES.md")
	os.WriteFile(plain, []byte("notes\n"), 0o644)
	bom, err := SBOM("relcheck", "v1.0.0", []string{self, plain})
	if err != nil {
		t.Fatal(err)
	}
	data, err := EncodeSBOM(bom)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"bomFormat":"CycloneDX"`, `"specVersion":"1.6"`, `"purl":"pkg:golang/github.com/relcheck/relcheck"`,
		`"name":"golang:go_version"`, `"name":"NOTES.md"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("the SBOM lacks %s", want)
		}
	}
	sum, _ := fileDigest(plain)
	if !strings.Contains(string(data), sum) {
		t.Error("the plain file's digest is not in the SBOM")
	}
	if got := purl("github.com/BurntSushi/toml", "v1.4.0"); got != "pkg:golang/github.com/burntsushi/toml@v1.4.0" {
		t.Errorf("purl: %s", got)
	}
	if _, err := SBOM("x", "v1", []string{filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing file was described")
	}
}
