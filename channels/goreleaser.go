package channels

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/relcheck/relcheck/report"
)

// A goreleaser build as it is: its dist/ directory's metadata.json (the
// project, version, tag and commit) and artifacts.json (every artifact
// with its path, type and platform). The release is the archives for each
// platform (or the binaries, when the build made no archives) and the
// checksums file, named as goreleaser named them.

// GoreleaserDist is what a goreleaser dist/ directory says of a release.
type GoreleaserDist struct {
	Project, Version, Tag, Commit string
	// Files are the artifacts' paths; Platforms maps a file's name to its
	// os/arch.
	Files     []string
	Platforms map[string]string
	// Cleanup removes what ReadGoreleaserDist made (links that give
	// binaries their platform's name).
	Cleanup func()
}

type goreleaserArtifact struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Goos   string `json:"goos"`
	Goarch string `json:"goarch"`
	Goarm  string `json:"goarm"`
	Type   string `json:"type"`
}

// ReadGoreleaserDist reads dist/metadata.json and dist/artifacts.json.
func ReadGoreleaserDist(dir string) (*GoreleaserDist, error) {
	bad := func(format string, args ...any) error {
		return &report.InputError{Err: fmt.Errorf("--goreleaser %s: "+format, append([]any{dir}, args...)...)}
	}
	var meta struct {
		ProjectName string `json:"project_name"`
		Tag         string `json:"tag"`
		Version     string `json:"version"`
		Commit      string `json:"commit"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "metadata.json"))
	if err != nil {
		return nil, bad("%v (run goreleaser release or build first)", err)
	}
	if err := json.Unmarshal(data, &meta); err != nil || meta.Version == "" {
		return nil, bad("metadata.json is not goreleaser's (%v)", err)
	}
	var arts []goreleaserArtifact
	data, err = os.ReadFile(filepath.Join(dir, "artifacts.json"))
	if err != nil {
		return nil, bad("%v", err)
	}
	if err := json.Unmarshal(data, &arts); err != nil {
		return nil, bad("artifacts.json is not goreleaser's: %v", err)
	}
	version := meta.Version
	if !strings.HasPrefix(version, "v") {
		version = "v" + version
	}
	d := &GoreleaserDist{Project: meta.ProjectName, Version: version, Tag: meta.Tag, Commit: meta.Commit, Platforms: map[string]string{}, Cleanup: func() {}}
	links := ""
	want := "Archive"
	if !hasType(arts, want) {
		want = "Binary"
	}
	for _, a := range arts {
		if a.Type != want && a.Type != "Checksum" {
			continue
		}
		path := filepath.Join(filepath.Dir(filepath.Clean(dir)), filepath.FromSlash(a.Path))
		if _, err := os.Stat(path); err != nil {
			path = filepath.Join(dir, filepath.Base(a.Path))
		}
		if _, err := os.Stat(path); err != nil {
			return nil, bad("artifacts.json lists %s, which is not there", a.Path)
		}
		name := filepath.Base(path)
		if a.Type == "Binary" {
			// Binaries share their name across platforms: goreleaser's
			// artifact name with the platform keeps them apart.
			name = fmt.Sprintf("%s_%s_%s", a.Name, a.Goos, a.Goarch)
			if links == "" {
				if links, err = os.MkdirTemp("", "relcheck-goreleaser-"); err != nil {
					return nil, err
				}
				dir := links
				d.Cleanup = func() { os.RemoveAll(dir) }
			}
			link := filepath.Join(links, name)
			target, err := filepath.Abs(path)
			if err == nil {
				err = os.Symlink(target, link)
			}
			if err != nil {
				d.Cleanup()
				return nil, err
			}
			path = link
		}
		d.Files = append(d.Files, path)
		if a.Goos != "" {
			p := a.Goos + "/" + a.Goarch
			if a.Goarm != "" {
				p += "/v" + a.Goarm
			}
			d.Platforms[name] = p
		}
	}
	if len(d.Files) == 0 {
		return nil, bad("artifacts.json lists no archive, binary or checksums file")
	}
	return d, nil
}

func hasType(arts []goreleaserArtifact, t string) bool {
	for _, a := range arts {
		if a.Type == t {
			return true
		}
	}
	return false
}
