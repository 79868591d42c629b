package channels

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/relcheck/relcheck/internal/regtest"
)

// stores returns every Store implementation to run the conformance suite
// against: a local OCI layout, go-containerregistry's in-process registry
// and the real distribution registry (docker-registry) when it is
// installed; in CI it must be.
func stores(t *testing.T) map[string]Store {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	reg, err := Open(strings.TrimPrefix(srv.URL, "http://")+"/relcheck/sample", false)
	if err != nil {
		t.Fatal(err)
	}
	lay, err := Open("oci:"+filepath.Join(t.TempDir(), "layout"), false)
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]Store{"layout": lay, "registry": reg}
	if regtest.Available() || os.Getenv("CI") != "" {
		dist, err := Open(regtest.Start(t)+"/relcheck/sample", false)
		if err != nil {
			t.Fatal(err)
		}
		all["distribution"] = dist
	} else {
		t.Log("not testing against the distribution registry: docker-registry is not installed (apt-get install docker-registry)")
	}
	return all
}

// TestStoreContract is the conformance suite of Store.
func TestStoreContract(t *testing.T) {
	ctx := context.Background()
	for kind, s := range stores(t) {
		t.Run(kind, func(t *testing.T) {
			if tags, err := s.Tags(ctx); err != nil || len(tags) != 0 {
				t.Fatalf("empty store: tags %v, %v", tags, err)
			}
			if _, err := s.Resolve(ctx, "edge"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Resolve of a missing tag: %v", err)
			}
			a, _ := random.Image(256, 2)
			b, _ := random.Image(256, 1)
			da, err := s.Put(ctx, a, "v1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := a.Digest(); da != want {
				t.Errorf("Put returned %s, want %s", da, want)
			}
			db, err := s.Put(ctx, b, "")
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.Resolve(ctx, "v1.0.0"); err != nil || got != da {
				t.Errorf("Resolve v1.0.0 = %s, %v", got, err)
			}
			img, err := s.Get(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			if ls, _ := img.Layers(); len(ls) != 1 {
				t.Errorf("untagged image read back with %d layers", len(ls))
			}
			// A tag moves; other tags stay.
			if err := s.Tag(ctx, "edge", da); err != nil {
				t.Fatal(err)
			}
			if err := s.Tag(ctx, "edge", db); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Resolve(ctx, "edge"); got != db {
				t.Errorf("edge = %s after moving it to %s", got, db)
			}
			if got, _ := s.Resolve(ctx, "v1.0.0"); got != da {
				t.Errorf("v1.0.0 moved to %s", got)
			}
			tags, err := s.Tags(ctx)
			if err != nil || !slices.Equal(tags, []string{"edge", "v1.0.0"}) {
				t.Errorf("tags = %v, %v", tags, err)
			}
			missing := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
			if _, err := s.Get(ctx, missing); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get of a missing digest: %v", err)
			}
			if err := s.Tag(ctx, "x", missing); !errors.Is(err, ErrNotFound) {
				t.Errorf("Tag of a missing digest: %v", err)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	for _, bad := range []string{"oci:", "UPPER/case", "host:port:x/y"} {
		if _, err := Open(bad, false); err == nil {
			t.Errorf("Open(%q) accepted", bad)
		}
	}
}

// TestLayoutConcurrentWriters: two writers tagging at once both land.
func TestLayoutConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	s, _ := Open("oci:"+filepath.Join(t.TempDir(), "layout"), false)
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func(i int) {
			img, _ := random.Image(64, 1)
			_, err := s.Put(ctx, img, "t"+string(rune('a'+i)))
			errs <- err
		}(i)
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if tags, _ := s.Tags(ctx); len(tags) != 8 {
		t.Errorf("tags after 8 concurrent writers: %v", tags)
	}
}

// TestLayoutHostileFiles replaces the files of a published layout with
// what a hostile mirror could serve: each is refused with a message, and
// nothing is read whole into memory.
func TestLayoutHostileFiles(t *testing.T) {
	ctx := context.Background()
	signer, _, _ := testKeys(t)
	v, err := signer.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		// spoil changes the layout in dir; the manifest is the head's.
		spoil func(t *testing.T, dir, manifest string)
		want  string
	}{
		{"index symlink to /dev/zero", func(t *testing.T, dir, _ string) {
			os.Remove(filepath.Join(dir, "index.json"))
			if err := os.Symlink("/dev/zero", filepath.Join(dir, "index.json")); err != nil {
				t.Fatal(err)
			}
		}, "index.json is not a regular file"},
		{"sparse 1.5 GB index", func(t *testing.T, dir, _ string) {
			if err := os.Truncate(filepath.Join(dir, "index.json"), 1536<<20); err != nil {
				t.Fatal(err)
			}
		}, "index.json has 1610612736 bytes"},
		{"index padded with blanks", func(t *testing.T, dir, _ string) {
			raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
			if err != nil {
				t.Fatal(err)
			}
			padded := append(raw, strings.Repeat(" ", maxIndex)...)
			if err := os.WriteFile(filepath.Join(dir, "index.json"), padded, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "index.json has"},
		{"manifest symlink to /dev/zero", func(t *testing.T, dir, manifest string) {
			os.Remove(manifest)
			if err := os.Symlink("/dev/zero", manifest); err != nil {
				t.Fatal(err)
			}
		}, "is not a regular file"},
		{"manifest as a FIFO", func(t *testing.T, dir, manifest string) {
			os.Remove(manifest)
			if err := syscall.Mkfifo(manifest, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "is not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layout")
			st, err := Open("oci:"+dir, false)
			if err != nil {
				t.Fatal(err)
			}
			p := newPublisher(t, st)
			if _, _, err := p.Publish(ctx, release(t, "v1.0.0", nil), PublishOptions{Version: "v1.0.0", Channel: "stable", Rollout: 100}); err != nil {
				t.Fatal(err)
			}
			d, err := st.Resolve(ctx, HeadTag("stable"))
			if err != nil {
				t.Fatal(err)
			}
			tc.spoil(t, dir, filepath.Join(dir, "blobs", d.Algorithm, d.Hex))
			_, _, err = ReadHead(ctx, st, "stable", v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadHead: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
