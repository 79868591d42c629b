package channels

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReleaseArtifact(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bin, notes := filepath.Join(dir, "textkitd"), filepath.Join(dir, "NOTES.md")
	os.WriteFile(bin, []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.WriteFile(notes, []byte("# v1.2.0\n"), 0o644)
	meta := Metadata{Project: "textkit", Version: "v1.2.0", Commit: "abc123", Created: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), APIBump: "minor"}
	img, err := NewRelease(meta, []string{bin, notes}, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := NewRelease(meta, []string{bin, notes}, nil)
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("the same release built twice has digests %s and %s", d1, d2)
	}
	for kind, s := range stores(t) {
		t.Run(kind, func(t *testing.T) {
			d, err := s.Put(ctx, img, "v1.2.0")
			if err != nil {
				t.Fatal(err)
			}
			back, err := s.Get(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			m, err := back.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.ArtifactType != ArtifactType || m.Config.MediaType != ConfigMediaType || len(m.Layers) != 2 {
				t.Fatalf("manifest = %+v", m)
			}
			if a := m.Layers[0].Annotations; a[AnnotationTitle] != "textkitd" || a[AnnotationMode] != "0755" {
				t.Errorf("first layer annotations = %v", a)
			}
			if a := m.Layers[1].Annotations; a[AnnotationTitle] != "NOTES.md" || a[AnnotationMode] != "0644" {
				t.Errorf("second layer annotations = %v", a)
			}
			md, err := ReadMetadata(back)
			if err != nil {
				t.Fatal(err)
			}
			if md.Version != "v1.2.0" || md.APIBump != "minor" || len(md.Files) != 2 || md.Files[0].Size != 18 {
				t.Errorf("metadata = %+v", md)
			}
			ls, _ := back.Layers()
			rc, err := ls[0].Compressed()
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(rc)
			rc.Close()
			if string(data) != "#!/bin/sh\necho hi\n" {
				t.Errorf("layer content = %q", data)
			}
		})
	}
	if _, err := NewRelease(meta, nil, nil); err == nil {
		t.Error("a release without files was built")
	}
	if _, err := NewRelease(meta, []string{bin, bin}, nil); err == nil {
		t.Error("two files with one name were accepted")
	}
	if _, err := NewRelease(meta, []string{dir}, nil); err == nil {
		t.Error("a directory was accepted as a file")
	}
}

// FuzzParseMetadata: release metadata read from a registry is parsed or
// refused, never a crash.
func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte(`{"version": "v1.0.0", "created": "2026-11-21T12:00:00Z", "files": [{"name": "a", "mode": "0755", "size": 1, "digest": "sha256:00"}]}`))
	f.Add([]byte(`{"version": ""}`))
	f.Add([]byte(`{"version": "v1", "migrations": {"from": 1, "to": 3, "dropped": ["users.name"]}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseMetadata(raw)
		if err == nil && m.Version == "" {
			t.Fatal("accepted metadata without a version")
		}
	})
}
