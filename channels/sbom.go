package channels

import (
	"bytes"
	"debug/buildinfo"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// An SBOM of a release, in CycloneDX (1.6): cosign's --type cyclonedx
// verifies it as an attestation, and CycloneDX has a component per Go
// module with its purl, which is what a Go binary's embedded build
// information (debug/buildinfo) holds: the main module, every module
// linked in with its version and go.sum hash, the Go version and the
// build settings. A file that is not a Go binary is a file component with
// its SHA-256.

// PredicateCycloneDX is a CycloneDX SBOM's predicate type (cosign's --type
// cyclonedx).
const PredicateCycloneDX = "https://cyclonedx.org/bom"

// SBOM describes a release's files.
func SBOM(project, version string, files []string) (*cdx.BOM, error) {
	bom := cdx.NewBOM()
	bom.SerialNumber = "" // reproducible: the same files give the same BOM
	bom.Metadata = &cdx.Metadata{
		Timestamp: time.Now().UTC().Format(time.RFC3339),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "relcheck"}}},
		Component: &cdx.Component{BOMRef: "release", Type: cdx.ComponentTypeApplication, Name: project, Version: version},
	}
	var comps []cdx.Component
	var deps []cdx.Dependency
	seen := map[string]bool{}
	for _, f := range files {
		sum, err := fileDigest(f)
		if err != nil {
			return nil, err
		}
		name := filepath.Base(f)
		c := cdx.Component{BOMRef: "file:" + name, Type: cdx.ComponentTypeFile, Name: name,
			Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: sum}}}
		bi, err := buildinfo.ReadFile(f)
		if err != nil {
			comps = append(comps, c)
			continue
		}
		// A Go binary: an application component, its modules below.
		c.Type = cdx.ComponentTypeApplication
		c.Version = bi.Main.Version
		c.PackageURL = purl(bi.Main.Path, bi.Main.Version)
		props := []cdx.Property{{Name: "golang:go_version", Value: bi.GoVersion}, {Name: "golang:path", Value: bi.Path}}
		for _, s := range bi.Settings {
			props = append(props, cdx.Property{Name: "golang:build:" + s.Key, Value: s.Value})
		}
		c.Properties = &props
		var dependsOn []string
		for _, m := range bi.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			ref := purl(m.Path, m.Version)
			dependsOn = append(dependsOn, ref)
			if seen[ref] {
				continue
			}
			seen[ref] = true
			mc := cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeLibrary, Name: m.Path, Version: m.Version, PackageURL: ref}
			if m.Sum != "" {
				mc.Properties = &[]cdx.Property{{Name: "golang:go.sum", Value: m.Sum}}
			}
			comps = append(comps, mc)
		}
		comps = append(comps, c)
		if len(dependsOn) > 0 {
			deps = append(deps, cdx.Dependency{Ref: c.BOMRef, Dependencies: &dependsOn})
		}
	}
	bom.Components = &comps
	if len(deps) > 0 {
		bom.Dependencies = &deps
	}
	return bom, nil
}

// EncodeSBOM is the BOM as CycloneDX JSON.
func EncodeSBOM(bom *cdx.BOM) ([]byte, error) {
	var b bytes.Buffer
	if err := cdx.NewBOMEncoder(&b, cdx.BOMFileFormatJSON).Encode(bom); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// purl is a Go module's package URL.
func purl(path, version string) string {
	if version == "" || version == "(devel)" {
		return "pkg:golang/" + strings.ToLower(path)
	}
	return fmt.Sprintf("pkg:golang/%s@%s", strings.ToLower(path), version)
}
