package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/relcheck/relcheck/analysis"
	"github.com/relcheck/relcheck/config"
)

// TestClientUpgrade installs from every store and refuses what a hostile
// registry or mirror could serve: another key's signature, an older head,
// an expired head, a tampered download.
func TestClientUpgrade(t *testing.T) {
	ctx := context.Background()
	_, other, pub := testKeys(t)
	otherPub := filepath.Join(t.TempDir(), "other.pub")
	if raw, err := other.PublicKeyPEM(); err != nil {
		t.Fatal(err)
	} else {
		os.WriteFile(otherPub, raw, 0o644)
	}
	for kind, st := range stores(t) {
		t.Run(kind, func(t *testing.T) {
			p := newPublisher(t, st)
			for _, v := range []string{"v1.0.0", "v1.1.0"} {
				if _, _, err := p.Publish(ctx, release(t, v, nil), PublishOptions{Version: v, Channel: "stable", Rollout: 100}); err != nil {
					t.Fatal(err)
				}
			}
			oldHead, _ := st.Resolve(ctx, HeadTag("stable"))
			if _, err := p.Rollout(ctx, "v1.1.0", "stable", 100, nil); err != nil { // seq 3
				t.Fatal(err)
			}
			sub := &Subscription{Repo: st.String(), Channel: "stable", Key: pub, InstallDir: t.TempDir(), InstallID: NewInstallID(), HealthCmd: "current/textkitd"}
			c, err := NewClient(sub, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.Store = st
			c.Installer.Store = st
			chk, err := c.Check(ctx, DecideOptions{Phased: true}, true)
			if err != nil {
				t.Fatal(err)
			}
			if chk.Decision.Action != "install" || chk.Decision.Target != "v1.1.0" {
				t.Fatalf("decision %+v", chk.Decision)
			}
			if _, err := c.Installer.Apply(ctx, chk.State, chk.Decision, chk.HeadDigest); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(filepath.Join(sub.InstallDir, "current", "textkitd"))
			if err != nil || fi.Mode().Perm() != 0o755 {
				t.Fatalf("installed file: %v, %v", fi, err)
			}
			var ve *VerifyError

			// Another key.
			wrong := *sub
			wrong.Key = otherPub
			cw, _ := NewClient(&wrong, nil)
			cw.Store = st
			if _, err := cw.Check(ctx, DecideOptions{}, false); !errors.As(err, &ve) || !strings.Contains(err.Error(), "no signature") {
				t.Errorf("a head checked with another key: %v", err)
			}
			// An expired head.
			c.Installer.Now = func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }
			if _, err := c.Check(ctx, DecideOptions{}, false); !errors.As(err, &ve) || !strings.Contains(err.Error(), "expired") {
				t.Errorf("an expired head: %v", err)
			}
			c.Installer.Now = nil
			// An older head, genuine and signed, served again.
			cur, _ := st.Resolve(ctx, HeadTag("stable"))
			st.Tag(ctx, HeadTag("stable"), oldHead)
			if _, err := c.Check(ctx, DecideOptions{}, false); !errors.As(err, &ve) || !strings.Contains(err.Error(), "refusing a rollback") {
				t.Errorf("an older head: %v", err)
			}
			st.Tag(ctx, HeadTag("stable"), cur)

			// A tampered download (the layout's blob changed on disk; a
			// registry's blobs are checked by digest on the way too).
			if kind != "layout" {
				return
			}
			if _, _, err := p.Publish(ctx, release(t, "v1.2.0", nil), PublishOptions{Version: "v1.2.0", Channel: "stable", Rollout: 100}); err != nil {
				t.Fatal(err)
			}
			chk, err = c.Check(ctx, DecideOptions{}, true)
			if err != nil || chk.Decision.Target != "v1.2.0" {
				t.Fatalf("%+v %v", chk, err)
			}
			img, _ := st.Get(ctx, mustHash(t, chk.Decision.Path[0].Digest))
			m, _ := img.Manifest()
			blob := filepath.Join(strings.TrimPrefix(st.String(), "oci:"), "blobs", "sha256", m.Layers[0].Digest.Hex)
			os.Chmod(blob, 0o644)
			if err := os.WriteFile(blob, []byte("#!/bin/sh\necho evil\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = c.Installer.Apply(ctx, chk.State, chk.Decision, chk.HeadDigest)
			var he *HopError
			if !errors.As(err, &he) || he.Outcome.ReasonClass != "verify" || !strings.Contains(err.Error(), "tampered download") {
				t.Errorf("a tampered download: %v", err)
			}
			if v, _ := c.Installer.Current(); v != "v1.1.0" {
				t.Errorf("current = %s after a refused download", v)
			}
			if _, err := os.Stat(filepath.Join(sub.InstallDir, "versions", "v1.2.0")); err == nil {
				t.Error("the tampered version was installed")
			}
		})
	}
}

func mustHash(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestResumeDownload: an interrupted download continues where it stopped,
// and the result is still checked against the signed digest.
func TestResumeDownload(t *testing.T) {
	ctx := context.Background()
	_, _, pub := testKeys(t)
	content := make([]byte, 1<<20)
	for i := range content {
		content[i] = byte(i * 7)
	}
	for kind, st := range stores(t) {
		t.Run(kind, func(t *testing.T) {
			p := newPublisher(t, st)
			f := filepath.Join(t.TempDir(), "big.bin")
			os.WriteFile(f, content, 0o644)
			img, err := NewRelease(Metadata{Version: "v1.0.0", Created: time.Now()}, []string{f}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := p.Publish(ctx, img, PublishOptions{Version: "v1.0.0", Channel: "stable", Rollout: 100}); err != nil {
				t.Fatal(err)
			}
			sub := &Subscription{Repo: st.String(), Channel: "stable", Key: pub, InstallDir: t.TempDir(), InstallID: NewInstallID()}
			c, err := NewClient(sub, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.Store, c.Installer.Store = st, st
			var got int64
			c.Installer.Progress = func(n int64) { got += n }
			// Half of the file from an earlier, interrupted run.
			part := filepath.Join(sub.InstallDir, ".relcheck", "downloads", "v1.0.0", "big.bin.part")
			os.MkdirAll(filepath.Dir(part), 0o755)
			os.WriteFile(part, content[:len(content)/2], 0o600)
			chk, err := c.Check(ctx, DecideOptions{}, true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Installer.Apply(ctx, chk.State, chk.Decision, chk.HeadDigest); err != nil {
				t.Fatal(err)
			}
			if got != int64(len(content)/2) {
				t.Errorf("downloaded %d bytes, want the missing %d", got, len(content)/2)
			}
			back, _ := os.ReadFile(filepath.Join(sub.InstallDir, "current", "big.bin"))
			if string(back) != string(content) {
				t.Error("the resumed file differs")
			}
		})
	}
}

// TestLock: one operation at a time on an install, and the refusal names
// the holder.
func TestLock(t *testing.T) {
	in := &Installer{Sub: &Subscription{InstallDir: t.TempDir()}}
	unlock, err := in.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Lock(); err == nil || !strings.Contains(err.Error(), "another relcheck operation is running") || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second lock: %v", err)
	}
	unlock()
	again, err := in.Lock()
	if err != nil {
		t.Fatalf("after unlocking: %v", err)
	}
	again()
}

// TestRecoverUndo: a crash while undoing a failed hop finishes the undo;
// it never goes forward to the release that failed.
func TestRecoverUndo(t *testing.T) {
	for _, c := range []struct{ step, current string }{{"undo", "v2"}, {"undo", "v1"}, {"health", "v1"}, {"post", "v1"}} {
		t.Run(c.step+"-"+c.current, func(t *testing.T) {
			dir := t.TempDir()
			in := &Installer{Sub: &Subscription{InstallDir: dir}}
			os.MkdirAll(in.meta(), 0o755)
			for _, v := range []string{"v1", "v2"} {
				os.MkdirAll(filepath.Join(dir, "versions", v), 0o755)
			}
			if err := in.switchTo(c.current); err != nil {
				t.Fatal(err)
			}
			st := &LocalState{Installed: "v1"}
			j := &journal{Action: "upgrade", From: "v1", To: "v2", Step: c.step, Undo: "health: unhealthy"}
			if err := in.step(j, c.step); err != nil {
				t.Fatal(err)
			}
			out, err := in.Recover(context.Background(), st)
			if err != nil {
				t.Fatal(err)
			}
			if cur, _ := in.Current(); cur != "v1" || out.Result != "rolled_back" || st.Installed != "v1" {
				t.Errorf("current %s, outcome %+v, installed %s", cur, out, st.Installed)
			}
			if _, ok := st.Bad["v2"]; !ok {
				t.Error("the failed release is not marked bad")
			}
			if j, _ := in.loadJournal(); j != nil {
				t.Errorf("journal left: %+v", j)
			}
		})
	}
}

// TestHealthDeadline: the health check's deadline holds even when the
// command leaves a child behind that keeps its output open.
func TestHealthDeadline(t *testing.T) {
	// The children outlive the test's patience by far: only a deadline
	// that holds lets health return.
	in := &Installer{Sub: &Subscription{InstallDir: t.TempDir(), HealthCmd: "sleep 600 & sleep 600; false", HealthRetries: 1, HealthTimeout: config.Duration(300 * time.Millisecond)}}
	done := make(chan error, 1)
	go func() { done <- in.health(context.Background(), "v1") }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a hanging health check passed")
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("the health check hung past its 300ms deadline")
	}
}

// manyFiles builds a release of n files, then renames the files' titles
// with rename (a hostile publisher's manifest).
func manyFiles(t *testing.T, version string, n int, rename func(i int) string) v1.Image {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for i := range n {
		f := filepath.Join(dir, fmt.Sprintf("f%04d", i))
		os.WriteFile(f, []byte(fmt.Sprintf("file %d of %s\n", i, version)), 0o644)
		files = append(files, f)
	}
	img, err := NewRelease(Metadata{Project: "textkit", Version: version, Created: time.Now()}, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &artifact{layers: map[v1.Hash]partial.CompressedLayer{}}
	m, _ := img.Manifest()
	a.manifest = *m.DeepCopy()
	for i := range a.manifest.Layers {
		l := &a.manifest.Layers[i]
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			t.Fatal(err)
		}
		a.layers[l.Digest] = layer
		l.Annotations[AnnotationTitle] = rename(i)
	}
	a.config, _ = img.RawConfigFile()
	a.raw, _ = json.Marshal(a.manifest)
	out, err := partial.CompressedToImage(a)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// countingStore counts how often the images it returns parse their
// manifest or look a layer up.
type countingStore struct {
	Store
	calls *atomic.Int64
}

func (s countingStore) Get(ctx context.Context, d v1.Hash) (v1.Image, error) {
	img, err := s.Store.Get(ctx, d)
	return countingImage{img, s.calls}, err
}

func (s countingStore) BlobFrom(ctx context.Context, d v1.Hash, offset int64) (io.ReadCloser, error) {
	return s.Store.(blobRanger).BlobFrom(ctx, d, offset)
}

type countingImage struct {
	v1.Image
	calls *atomic.Int64
}

func (i countingImage) Manifest() (*v1.Manifest, error) { i.calls.Add(1); return i.Image.Manifest() }
func (i countingImage) RawManifest() ([]byte, error)    { i.calls.Add(1); return i.Image.RawManifest() }
func (i countingImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	i.calls.Add(1)
	return i.Image.LayerByDigest(h)
}

// TestInstallFiles installs a release of 300 files with the manifest read
// a constant number of times (not once per file), and refuses a release
// whose manifest names two files alike, as publish does.
func TestInstallFiles(t *testing.T) {
	ctx := context.Background()
	_, _, pub := testKeys(t)
	st, err := Open("oci:"+filepath.Join(t.TempDir(), "layout"), false)
	if err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, st)
	many := manyFiles(t, "v1.0.0", 300, func(i int) string { return fmt.Sprintf("f%04d", i) })
	dup := manyFiles(t, "v1.1.0", 3, func(i int) string { return "app" })
	for v, img := range map[string]v1.Image{"v1.0.0": many, "v1.1.0": dup} {
		if _, _, err := p.Publish(ctx, img, PublishOptions{Version: v, Channel: "stable", Rollout: 100}); err != nil {
			t.Fatal(err)
		}
	}
	sub := &Subscription{Repo: st.String(), Channel: "stable", Key: pub, InstallDir: t.TempDir(), InstallID: NewInstallID()}
	c, err := NewClient(sub, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := &atomic.Int64{}
	c.Store = countingStore{st, calls}
	c.Installer.Store = c.Store

	chk, err := c.Check(ctx, DecideOptions{To: "v1.0.0"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Installer.Apply(ctx, chk.State, chk.Decision, chk.HeadDigest); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(sub.InstallDir, "current"))
	if len(entries) != 300 {
		t.Fatalf("%d files installed, want 300", len(entries))
	}
	if n := calls.Load(); n > 10 {
		t.Errorf("the manifest was read or searched %d times for 300 files: once per file, not once per release", n)
	}

	chk, err = c.Check(ctx, DecideOptions{}, true)
	if err != nil || chk.Decision.Target != "v1.1.0" {
		t.Fatalf("%+v %v", chk, err)
	}
	out, err := c.Installer.Apply(ctx, chk.State, chk.Decision, chk.HeadDigest)
	if err == nil || !strings.Contains(err.Error(), `v1.1.0: two files named "app"`) {
		t.Fatalf("a release with two files named alike: %+v, %v", out, err)
	}
	if cur, _ := c.Installer.Current(); cur != "v1.0.0" {
		t.Errorf("running %s after the refused release, want v1.0.0", cur)
	}
}

// TestKeyRotation: after a rotation, an install that trusted the old key
// follows it, and a head the old key signs afterwards (a leaked key) is
// refused, by that install and by a fresh one alike.
func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	oldKey, newKey, oldPub := testKeys(t)
	st, err := Open("oci:"+filepath.Join(t.TempDir(), "layout"), false)
	if err != nil {
		t.Fatal(err)
	}
	p := &Publisher{Store: st, Signer: oldKey, Project: "textkit"}
	if _, _, err := p.Publish(ctx, release(t, "v1.0.0", nil), PublishOptions{Version: "v1.0.0", Channel: "stable", Rollout: 100}); err != nil {
		t.Fatal(err)
	}
	client := func() *Client {
		sub := &Subscription{Repo: st.String(), Channel: "stable", Key: oldPub, InstallDir: t.TempDir(), InstallID: NewInstallID(), Project: "textkit"}
		c, err := NewClient(sub, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	early := client()
	if chk, err := early.Check(ctx, DecideOptions{}, true); err != nil || chk.Decision.Target != "v1.0.0" {
		t.Fatalf("before the rotation: %+v %v", chk, err)
	}

	r, err := p.Rotate(ctx, newKey)
	if err != nil || r.Seq != 1 {
		t.Fatalf("rotate: %+v %v", r, err)
	}
	if _, _, err := p.Publish(ctx, release(t, "v1.1.0", nil), PublishOptions{Version: "v1.1.0", Channel: "stable", Rollout: 100}); err != nil {
		t.Fatal(err)
	}
	chk, err := early.Check(ctx, DecideOptions{}, true)
	if err != nil || chk.Decision.Target != "v1.1.0" {
		t.Fatalf("after the rotation: %+v %v", chk, err)
	}

	// The leaked old key signs a newer head offering its own release.
	evil := release(t, "v9.0.0", nil)
	ed, err := st.Put(ctx, evil, "v9.0.0")
	if err != nil {
		t.Fatal(err)
	}
	oldKey.Sign(ctx, st, ed)
	h := *chk.Head
	h.Seq += 10
	h.Releases = append(slices.Clone(h.Releases), Release{Version: "v9.0.0", Digest: ed.String(), Published: time.Now(), Rollout: 100})
	img, err := headImage(&h)
	if err != nil {
		t.Fatal(err)
	}
	hd, err := st.Put(ctx, img, "")
	if err != nil {
		t.Fatal(err)
	}
	oldKey.Sign(ctx, st, hd)
	if err := st.Tag(ctx, HeadTag("stable"), hd); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*Client{"the install that followed": early, "a fresh install": client()} {
		if _, err := c.Check(ctx, DecideOptions{}, false); err == nil || !strings.Contains(err.Error(), "matches the key") {
			t.Errorf("%s took a head signed by the rotated-out key: %v", name, err)
		}
	}
}

// constQuerier answers every query with one value.
type constQuerier float64

func (q constQuerier) Query(context.Context, string, time.Time) (float64, error) {
	return float64(q), nil
}

// TestRecoverBakeKeepsBaseline: a crash during the bake re-runs it on
// recovery, judged against the values measured before the switch (kept in
// the journal), not against none.
func TestRecoverBakeKeepsBaseline(t *testing.T) {
	dir := t.TempDir()
	a := &analysis.Analyzer{Querier: constQuerier(0.08), Sleep: func(context.Context, time.Duration) error { return nil },
		Config: analysis.Config{Prometheus: "http://127.0.0.1:9090", Bake: config.Duration(3 * time.Second), Interval: config.Duration(time.Second),
			SLIs: []analysis.SLI{{Name: "error_ratio", Query: "q", Condition: "< 0.01"}}}}
	in := &Installer{Sub: &Subscription{InstallDir: dir}, Analyzer: a}
	os.MkdirAll(in.meta(), 0o755)
	for _, v := range []string{"v1", "v2"} {
		os.MkdirAll(filepath.Join(dir, "versions", v), 0o755)
	}
	if err := in.switchTo("v2"); err != nil {
		t.Fatal(err)
	}
	st := &LocalState{Installed: "v1"}
	j := &journal{Action: "upgrade", From: "v1", To: "v2", Baseline: analysis.Baseline{"error_ratio": 0.002}, Switched: time.Now().Add(-time.Minute)}
	if err := in.step(j, "health"); err != nil {
		t.Fatal(err)
	}
	out, err := in.Recover(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if cur, _ := in.Current(); cur != "v1" || out.Result != RolledBack || out.ReasonClass != "analysis" {
		t.Fatalf("current %s, outcome %+v", cur, out)
	}
	if !strings.Contains(out.Reason, "0.08 after it, 0.002 before the switch") {
		t.Errorf("reason: %s", out.Reason)
	}
}
