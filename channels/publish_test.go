package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/relcheck/relcheck/report"
)

var (
	keysOnce sync.Once
	keysDir  string
)

// testKeys generates one key pair (password "secret") for all tests, and
// a second one for wrong-key tests.
func testKeys(t *testing.T) (signer, other *Signer, pub string) {
	t.Helper()
	keysOnce.Do(func() {
		dir, err := os.MkdirTemp("", "relcheck-keys-")
		if err != nil {
			panic(err)
		}
		keysDir = dir
		for _, sub := range []string{"a", "b"} {
			os.Mkdir(filepath.Join(dir, sub), 0o755)
			if _, _, err := GenerateKeys(filepath.Join(dir, sub), []byte("secret")); err != nil {
				panic(err)
			}
		}
	})
	s, err := LoadSigner(filepath.Join(keysDir, "a", PrivateKeyFile), []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := LoadSigner(filepath.Join(keysDir, "b", PrivateKeyFile), []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	return s, o, filepath.Join(keysDir, "a", PublicKeyFile)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if keysDir != "" {
		os.RemoveAll(keysDir)
	}
	os.Exit(code)
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := GenerateKeys(dir, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(priv); st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v", priv, st.Mode())
	}
	raw, _ := os.ReadFile(priv)
	if !strings.Contains(string(raw), "ENCRYPTED SIGSTORE PRIVATE KEY") {
		t.Errorf("private key is not cosign's encrypted PEM:\n%s", raw)
	}
	if _, _, err := GenerateKeys(dir, []byte("pw")); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("overwriting keys: %v", err)
	}
	if _, err := LoadSigner(priv, []byte("wrong")); err == nil || !strings.Contains(err.Error(), "wrong password") {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := LoadVerifier(pub); err != nil {
		t.Error(err)
	}
	if _, err := LoadVerifier(priv); err == nil {
		t.Error("a private key was accepted as a public key")
	}
}

func TestSignVerify(t *testing.T) {
	ctx := context.Background()
	signer, other, pub := testKeys(t)
	v, err := LoadVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	ov, _ := other.Verifier()
	for kind, st := range stores(t) {
		t.Run(kind, func(t *testing.T) {
			img, _ := random.Image(128, 1)
			d, err := st.Put(ctx, img, "v1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			var ve *VerifyError
			if err := v.Verify(ctx, st, d); !errors.As(err, &ve) || !strings.Contains(err.Error(), "not signed") {
				t.Errorf("unsigned: %v", err)
			}
			if err := signer.Sign(ctx, st, d); err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(ctx, st, d); err != nil {
				t.Errorf("signed: %v", err)
			}
			if err := ov.Verify(ctx, st, d); !errors.As(err, &ve) {
				t.Errorf("wrong key: %v", err)
			}
			// Signing again keeps one signature.
			if err := signer.Sign(ctx, st, d); err != nil {
				t.Fatal(err)
			}
			sigs, _ := readSignatures(ctx, st, d)
			if l, _ := sigs.Get(); len(l) != 1 {
				t.Errorf("%d signatures after signing twice", len(l))
			}
			// A second key adds its signature next to the first.
			if err := other.Sign(ctx, st, d); err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(ctx, st, d); err != nil {
				t.Errorf("after a second signer: %v", err)
			}
			if err := ov.Verify(ctx, st, d); err != nil {
				t.Errorf("second signer: %v", err)
			}
			// A signature moved onto another artifact does not verify.
			img2, _ := random.Image(128, 1)
			d2, _ := st.Put(ctx, img2, "v1.0.1")
			sd, _ := st.Resolve(ctx, SignatureTag(d))
			if err := st.Tag(ctx, SignatureTag(d2), sd); err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(ctx, st, d2); !errors.As(err, &ve) {
				t.Errorf("a signature of another digest: %v", err)
			}
		})
	}
}

func newPublisher(t *testing.T, st Store) *Publisher {
	signer, _, _ := testKeys(t)
	return &Publisher{Store: st, Signer: signer, Project: "textkit", Settle: 50 * time.Millisecond}
}

// release builds a small release artifact.
func release(t *testing.T, version string, facts *MigrationFacts) v1.Image {
	t.Helper()
	f := filepath.Join(t.TempDir(), "textkitd")
	os.WriteFile(f, []byte("#!/bin/sh\necho "+version+"\n"), 0o755)
	img, err := NewRelease(Metadata{Project: "textkit", Version: version, Created: time.Now(), Migrations: facts}, []string{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPublishPromoteHalt(t *testing.T) {
	ctx := context.Background()
	_, _, pub := testKeys(t)
	v, _ := LoadVerifier(pub)
	for kind, st := range stores(t) {
		t.Run(kind, func(t *testing.T) {
			p := newPublisher(t, st)
			d1, h, err := p.Publish(ctx, release(t, "v1.1.0-0.20261101000000.gaaaa", nil), PublishOptions{Version: "v1.1.0-0.20261101000000.gaaaa", Channel: "edge", Rollout: 100})
			if err != nil {
				t.Fatal(err)
			}
			if h.Seq != 1 || len(h.Releases) != 1 || h.Releases[0].Digest != d1.String() {
				t.Fatalf("head after the first publish: %+v", h)
			}
			var ie *report.InputError
			if _, _, err := p.Publish(ctx, release(t, "v1.1.0-0.20261101000000.gaaaa", nil), PublishOptions{Version: "v1.1.0-0.20261101000000.gaaaa", Channel: "edge", Rollout: 100}); !errors.As(err, &ie) {
				t.Errorf("publishing a version again: %v", err)
			}
			if _, _, err := p.Publish(ctx, release(t, "x", nil), PublishOptions{Version: "1.2", Channel: "edge"}); !errors.As(err, &ie) {
				t.Errorf("an invalid version: %v", err)
			}
			if got, _ := st.Resolve(ctx, "edge"); got != d1 {
				t.Errorf("edge tag = %s, want %s", got, d1)
			}
			// Promotion: same digest, the channel's version.
			var re *RefusedError
			if _, _, err := p.Promote(ctx, "v1.1.0-0.20261101000000.gaaaa", PromoteOptions{To: "beta", Rollout: 100, MinSoak: time.Hour}); !errors.As(err, &re) {
				t.Errorf("promotion before the soak time: %v", err)
			}
			bv, bh, err := p.Promote(ctx, "v1.1.0-0.20261101000000.gaaaa", PromoteOptions{To: "beta", Rollout: 100})
			if err != nil {
				t.Fatal(err)
			}
			if bv != "v1.1.0-beta.1" || bh.Releases[0].Digest != d1.String() || bh.Seq != 1 {
				t.Errorf("beta: %s %+v", bv, bh)
			}
			if _, _, err := p.Promote(ctx, "v9.9.9", PromoteOptions{To: "stable"}); !errors.As(err, &ie) {
				t.Errorf("promoting a missing version: %v", err)
			}
			sv, sh, err := p.Promote(ctx, bv, PromoteOptions{To: "stable", Rollout: 25})
			if err != nil {
				t.Fatal(err)
			}
			if sv != "v1.1.0" || sh.Releases[0].Rollout != 25 {
				t.Errorf("stable: %s %+v", sv, sh)
			}
			if got, _ := st.Resolve(ctx, "v1.1.0"); got != d1 {
				t.Errorf("v1.1.0 = %s, want the edge digest %s", got, d1)
			}
			if _, err := st.Resolve(ctx, "stable"); !errors.Is(err, ErrNotFound) {
				t.Errorf("the stable tag moved to a release at 25%%: %v", err)
			}
			if _, err := p.Rollout(ctx, "v1.1.0", "stable", 10, nil); !errors.As(err, &ie) {
				t.Errorf("narrowing a rollout: %v", err)
			}
			sh, err = p.Rollout(ctx, "v1.1.0", "stable", 100, nil)
			if err != nil || sh.Seq != 2 || sh.Releases[0].Rollout != 100 {
				t.Fatalf("rollout: %+v, %v", sh, err)
			}
			if got, _ := st.Resolve(ctx, "stable"); got != d1 {
				t.Errorf("stable tag = %s after a full rollout", got)
			}
			// A second release, halted with a rollback target.
			d2, _, err := p.Publish(ctx, release(t, "v1.2.0", nil), PublishOptions{Version: "v1.2.0", Channel: "stable", Rollout: 100})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := st.Resolve(ctx, "stable"); got != d2 {
				t.Errorf("stable tag = %s, want the newest %s", got, d2)
			}
			if _, err := p.Halt(ctx, "v1.2.0", "stable", "v1.3.0"); !errors.As(err, &ie) {
				t.Errorf("rollback to a missing version: %v", err)
			}
			sh, err = p.Halt(ctx, "v1.2.0", "stable", "v1.1.0")
			if err != nil {
				t.Fatal(err)
			}
			if r := sh.Find("v1.2.0"); !r.Halted || r.RollbackTo != "v1.1.0" {
				t.Errorf("halted release: %+v", r)
			}
			if got, _ := st.Resolve(ctx, "stable"); got != d1 {
				t.Errorf("stable tag = %s after halting the newest, want %s", got, d1)
			}
			if _, _, err := p.Promote(ctx, "v1.2.0", PromoteOptions{To: "stable"}); err == nil {
				t.Error("promoted a halted release")
			}
			// Everything verifies for a client with the public key.
			for _, c := range []string{"edge", "beta", "stable"} {
				h, _, err := ReadHead(ctx, st, c, v)
				if err != nil {
					t.Fatal(err)
				}
				if err := CheckFresh(h, time.Now()); err != nil {
					t.Error(err)
				}
				if err := VerifyReleases(ctx, st, h, v); err != nil {
					t.Error(err)
				}
			}
			if sh, err = p.Refresh(ctx, "stable", nil); err != nil || sh.Seq != 5 {
				t.Errorf("refresh: seq %d, %v", sh.Seq, err)
			}
		})
	}
}

func TestRequiredStops(t *testing.T) {
	ctx := context.Background()
	st := stores(t)["layout"]
	p := newPublisher(t, st)
	pub := func(v string, f *MigrationFacts) {
		if _, _, err := p.Publish(ctx, release(t, v, f), PublishOptions{Version: v, Channel: "stable", Rollout: 100}); err != nil {
			t.Fatal(err)
		}
	}
	pub("v1.0.0", &MigrationFacts{From: 0, To: 1, Added: []string{"users", "users.email"}})
	pub("v1.1.0", &MigrationFacts{From: 1, To: 2, Deprecated: []string{"users.email"}})
	pub("v1.2.0", &MigrationFacts{From: 2, To: 3, Deprecated: []string{"users.email"}})
	h, _, _ := ReadHead(ctx, st, "stable", nil)
	if h.Find("v1.1.0").RequiredStop {
		t.Error("a deprecation alone made a stop")
	}
	pub("v1.3.0", &MigrationFacts{From: 3, To: 4, Dropped: []string{"users.email"}})
	h, _, _ = ReadHead(ctx, st, "stable", nil)
	r := h.Find("v1.1.0")
	if !r.RequiredStop || !strings.Contains(r.StopReason, "users.email") || h.Find("v1.2.0").RequiredStop {
		t.Fatalf("stops after the drop: %+v", h.Releases)
	}
	for _, c := range []struct{ from, to, want string }{
		{"v1.0.0", "v1.3.0", "v1.1.0 v1.3.0"},
		{"v1.1.0", "v1.3.0", "v1.3.0"},
		{"v0.9.0", "v1.2.0", "v1.1.0 v1.2.0"},
		{"v1.0.0", "v1.1.0", "v1.1.0"},
	} {
		path, err := Path(h, c.from, c.to)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range path {
			got = append(got, r.Version)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("path %s → %s = %v, want %s", c.from, c.to, got, c.want)
		}
	}
	if _, err := Path(h, "v1.3.0", "v1.0.0"); err == nil {
		t.Error("a downgrade path was accepted")
	}
	// Pruning keeps the newest and every stop.
	dropped, ph, err := p.Prune(ctx, "stable", 1)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, r := range ph.Releases {
		left = append(left, r.Version)
	}
	if strings.Join(dropped, " ") != "v1.0.0 v1.2.0" || strings.Join(left, " ") != "v1.1.0 v1.3.0" {
		t.Errorf("prune dropped %v, kept %v", dropped, left)
	}
	h = ph
	// A halted stop is no way through.
	h.Find("v1.1.0").Halted = true
	var refused *RefusedError
	if _, err := Path(h, "v1.0.0", "v1.3.0"); !errors.As(err, &refused) || !strings.Contains(err.Error(), "must pass through v1.1.0") {
		t.Errorf("a path through a halted stop: %v", err)
	}
	h.Find("v1.1.0").Halted = false

	// Promotion keeps stops reachable: a release that drops a column does
	// not reach a channel with installs before the deprecation.
	edge := func(v string, f *MigrationFacts) {
		if _, _, err := p.Publish(ctx, release(t, v, f), PublishOptions{Version: v, Channel: "edge", Rollout: 100}); err != nil {
			t.Fatal(err)
		}
	}
	edge("v2.0.0-0.1.ga", &MigrationFacts{Added: []string{"t", "t.c"}})
	edge("v2.1.0-0.2.gb", &MigrationFacts{Deprecated: []string{"t.c"}})
	edge("v2.2.0-0.3.gc", &MigrationFacts{Dropped: []string{"t.c"}, Deprecated: []string{"t.c"}})
	if _, _, err := p.Promote(ctx, "v2.2.0-0.3.gc", PromoteOptions{To: "beta"}); err != nil {
		t.Fatalf("to an empty channel: %v", err) // nobody to cross the drop
	}
	if _, _, err := p.Promote(ctx, "v2.0.0-0.1.ga", PromoteOptions{To: "beta"}); err != nil {
		t.Fatal(err)
	}
	p2 := newPublisher(t, st)
	edge2 := func(v string, f *MigrationFacts) {
		if _, _, err := p2.Publish(ctx, release(t, v, f), PublishOptions{Version: v, Channel: "edge", Rollout: 100}); err != nil {
			t.Fatal(err)
		}
	}
	edge2("v2.3.0-0.4.gd", &MigrationFacts{Dropped: []string{"t.c"}})
	var re *RefusedError
	_, _, err = p2.Promote(ctx, "v2.3.0-0.4.gd", PromoteOptions{To: "stable"})
	if !errors.As(err, &re) {
		t.Fatalf("a drop promoted past its missing stop: %v", err)
	}
	if !strings.Contains(err.Error(), "drops t.c, and no release on stable deprecates it yet: promote v2.1.0-0.2.gb to stable first") {
		t.Errorf("message: %v", err)
	}
}

// TestConcurrentPublish: two writers at once both land, with consecutive
// seqs, on every store.
func TestConcurrentPublish(t *testing.T) {
	ctx := context.Background()
	for kind, st := range stores(t) {
		t.Run(kind, func(t *testing.T) {
			const n = 4
			errs := make(chan error, n)
			for i := 0; i < n; i++ {
				go func(i int) {
					p := newPublisher(t, st)
					// A registry has no compare-and-swap: the settle time
					// must exceed a writer's check-to-write gap, which a
					// busy machine stretches.
					p.Settle = time.Second
					v := "v1.0." + string(rune('0'+i))
					_, _, err := p.Publish(ctx, release(t, v, nil), PublishOptions{Version: v, Channel: "edge", Rollout: 100})
					errs <- err
				}(i)
			}
			for i := 0; i < n; i++ {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			h, d, err := ReadHead(ctx, st, "edge", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Releases) != n || h.Seq != n {
				t.Fatalf("after %d concurrent publishes: seq %d, releases %+v", n, h.Seq, h.Releases)
			}
			// The chain of heads has every seq once.
			for seq := uint64(n); seq >= 1; seq-- {
				if h.Seq != seq {
					t.Fatalf("head %s has seq %d, want %d", d, h.Seq, seq)
				}
				if seq == 1 {
					break
				}
				d, _ = v1.NewHash(h.Previous)
				if h, err = readHeadAt(ctx, st, d); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestHeadAttacks: what a registry or mirror could do to a client, and
// that verification refuses each.
func TestHeadAttacks(t *testing.T) {
	ctx := context.Background()
	signer, other, pub := testKeys(t)
	v, _ := LoadVerifier(pub)
	st := stores(t)["registry"]
	p := newPublisher(t, st)
	p.TTL = time.Hour
	d1, _, err := p.Publish(ctx, release(t, "v1.0.0", nil), PublishOptions{Version: "v1.0.0", Channel: "stable", Rollout: 100})
	if err != nil {
		t.Fatal(err)
	}
	old, oldD, _ := ReadHead(ctx, st, "stable", v)
	if _, _, err := p.Publish(ctx, release(t, "v1.1.0", nil), PublishOptions{Version: "v1.1.0", Channel: "stable", Rollout: 100}); err != nil {
		t.Fatal(err)
	}
	trust := OpenTrust(t.TempDir())
	cur, curD, err := ReadHead(ctx, st, "stable", v)
	if err != nil {
		t.Fatal(err)
	}
	if err := trust.Check("r", cur, curD.String()); err != nil {
		t.Fatal(err)
	}
	trust.Record("r", cur, curD.String(), time.Now())
	var ve *VerifyError

	t.Run("rollback", func(t *testing.T) {
		// The registry serves the older, validly signed head again.
		if err := st.Tag(ctx, HeadTag("stable"), oldD); err != nil {
			t.Fatal(err)
		}
		defer st.Tag(ctx, HeadTag("stable"), curD)
		h, d, err := ReadHead(ctx, st, "stable", v)
		if err != nil {
			t.Fatal(err) // the old head itself is genuine
		}
		if err := trust.Check("r", h, d.String()); !errors.As(err, &ve) || !strings.Contains(err.Error(), "rollback") {
			t.Errorf("an older head was accepted: %v", err)
		}
		_ = old
	})
	t.Run("freeze", func(t *testing.T) {
		if err := CheckFresh(cur, time.Now().Add(2*time.Hour)); !errors.As(err, &ve) || !strings.Contains(err.Error(), "expired") {
			t.Errorf("an expired head was accepted: %v", err)
		}
	})
	// forge writes a modified head, signed by key (nil: not signed), at
	// the stable head tag.
	forge := func(t *testing.T, h *Head, key *Signer) {
		t.Helper()
		img, err := headImage(h)
		if err != nil {
			t.Fatal(err)
		}
		d, err := st.Put(ctx, img, HeadTag("stable"))
		if err != nil {
			t.Fatal(err)
		}
		if key != nil {
			key.Sign(ctx, st, d)
		}
		t.Cleanup(func() { st.Tag(ctx, HeadTag("stable"), curD) })
	}
	t.Run("mix-and-match", func(t *testing.T) {
		// The v1.1.0 entry now names v1.0.0's artifact, unsigned.
		h := *cur
		h.Releases = append([]Release(nil), cur.Releases...)
		h.Find("v1.1.0").Digest = d1.String()
		forge(t, &h, nil)
		if _, _, err := ReadHead(ctx, st, "stable", v); !errors.As(err, &ve) || !strings.Contains(err.Error(), "not signed") {
			t.Errorf("a head with a swapped digest was accepted: %v", err)
		}
		// Even signed by the right key, the release's own metadata gives
		// the swap away.
		forge(t, &h, signer)
		h2, _, err := ReadHead(ctx, st, "stable", v)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyReleases(ctx, st, h2, v); !errors.As(err, &ve) || !strings.Contains(err.Error(), "but that artifact is release v1.0.0") {
			t.Errorf("a swapped release digest was accepted: %v", err)
		}
	})
	t.Run("wrong-key", func(t *testing.T) {
		h := *cur
		h.Seq += 10
		forge(t, &h, other)
		if _, _, err := ReadHead(ctx, st, "stable", v); !errors.As(err, &ve) || !strings.Contains(err.Error(), "no signature") {
			t.Errorf("a head signed by another key was accepted: %v", err)
		}
	})
	t.Run("endless", func(t *testing.T) {
		h := *cur
		h.Releases = append([]Release(nil), cur.Releases...)
		for i := 0; len(h.Releases) < 20000; i++ {
			h.Releases = append(h.Releases, Release{Version: "v0.0." + itoa(i), Digest: d1.String(), Published: time.Now(), Rollout: 100})
		}
		forge(t, &h, signer)
		if _, _, err := ReadHead(ctx, st, "stable", v); !errors.As(err, &ve) || !strings.Contains(err.Error(), "more than the limit") {
			t.Errorf("an oversized head was accepted: %v", err)
		}
	})
	t.Run("other-channel", func(t *testing.T) {
		h := *cur
		h.Channel = "edge"
		img, _ := headImage(&h)
		d, _ := st.Put(ctx, img, HeadTag("stable"))
		signer.Sign(ctx, st, d)
		t.Cleanup(func() { st.Tag(ctx, HeadTag("stable"), curD) })
		if _, _, err := ReadHead(ctx, st, "stable", v); !errors.As(err, &ve) || !strings.Contains(err.Error(), "not stable") {
			t.Errorf("the edge head served as stable was accepted: %v", err)
		}
	})
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestParseHead(t *testing.T) {
	good := `{"project":"p","channel":"stable","seq":1,"epoch":1,"issued":"2026-11-01T00:00:00Z","expires":"2026-11-08T00:00:00Z",
"releases":[{"version":"v1.0.0","digest":"sha256:` + strings.Repeat("a", 64) + `","published":"2026-11-01T00:00:00Z","rollout":100}]}`
	if _, err := ParseHead([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"unknown field":  strings.Replace(good, `"epoch"`, `"epoc"`, 1),
		"channel":        strings.Replace(good, `"stable"`, `"nightly"`, 1),
		"seq 0":          strings.Replace(good, `"seq":1`, `"seq":0`, 1),
		"expiry":         strings.Replace(good, `2026-11-08`, `2026-10-08`, 1),
		"version":        strings.Replace(good, `v1.0.0`, `v1.0`, 1),
		"digest":         strings.Replace(good, `sha256:`, `md5:`, 1),
		"rollout":        strings.Replace(good, `"rollout":100`, `"rollout":101`, 1),
		"trailing":       good + `{}`,
		"rollbackTo":     strings.Replace(good, `"rollout":100`, `"rollout":100,"rollbackTo":"v0.9.0"`, 1),
		"build metadata": strings.Replace(good, `v1.0.0`, `v1.0.0+abc`, 1),
	} {
		if _, err := ParseHead([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseHead(f *testing.F) {
	f.Add([]byte(`{"project":"p","channel":"edge","seq":3,"epoch":1,"issued":"2026-11-01T00:00:00Z","expires":"2026-11-08T00:00:00Z","releases":[{"version":"v1.0.0-0.1.gabc","digest":"sha256:` + strings.Repeat("0", 64) + `","published":"2026-11-01T00:00:00Z","rollout":25,"halted":true}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, err := ParseHead(raw)
		if err != nil {
			return
		}
		// What parses, validates again after a round trip.
		out, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseHead(out); err != nil {
			t.Fatalf("round trip: %v\n%s", err, out)
		}
	})
}

// TestTrust: a client refuses an older head, a different head with the
// same seq, and a head of another project in the same repository.
func TestTrust(t *testing.T) {
	tr := OpenTrust(t.TempDir())
	h := &Head{Project: "textkit", Channel: "stable", Seq: 5, Epoch: 1}
	if err := tr.Check("r", h, "sha256:a"); err != nil {
		t.Fatal(err)
	}
	tr.Record("r", h, "sha256:a", time.Now())
	var ve *VerifyError
	for name, c := range map[string]struct {
		h      Head
		digest string
		want   string
	}{
		"older":         {Head{Project: "textkit", Channel: "stable", Seq: 4, Epoch: 1}, "sha256:b", "refusing a rollback"},
		"same seq":      {Head{Project: "textkit", Channel: "stable", Seq: 5, Epoch: 1}, "sha256:c", "changed without a new seq"},
		"other project": {Head{Project: "other", Channel: "edge", Seq: 9, Epoch: 1}, "sha256:d", `is of project "other"`},
	} {
		if err := tr.Check("r", &c.h, c.digest); !errors.As(err, &ve) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := tr.Check("r", h, "sha256:a"); err != nil {
		t.Errorf("the same head again: %v", err)
	}
	if err := tr.Check("r", &Head{Project: "textkit", Channel: "stable", Seq: 6, Epoch: 1}, "sha256:e"); err != nil {
		t.Errorf("a newer head: %v", err)
	}
}

// TestPublishResumes: a publish that stopped after pushing the release
// (before signing it or writing the head) goes on when run again with the
// same files, although the new build has another creation time; other
// files under the same version are still refused.
func TestPublishResumes(t *testing.T) {
	ctx := context.Background()
	st, err := Open("oci:"+filepath.Join(t.TempDir(), "layout"), false)
	if err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, st)
	dir := t.TempDir()
	f := filepath.Join(dir, "textkitd")
	os.WriteFile(f, []byte("#!/bin/sh\necho v1\n"), 0o755)
	build := func(created time.Time) v1.Image {
		img, err := NewRelease(Metadata{Project: "textkit", Version: "v1.0.0", Created: created}, []string{f}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	first := build(time.Now().Add(-time.Hour))
	if _, err := st.Put(ctx, first, "v1.0.0"); err != nil { // pushed, then the job died
		t.Fatal(err)
	}
	firstD, _ := first.Digest()
	d, h, err := p.Publish(ctx, build(time.Now()), PublishOptions{Version: "v1.0.0", Channel: "stable", Rollout: 100})
	if err != nil {
		t.Fatalf("resuming the publish: %v", err)
	}
	if d != firstD || h.Find("v1.0.0") == nil || h.Find("v1.0.0").Digest != firstD.String() {
		t.Fatalf("published %s (head %+v), want the artifact pushed first, %s", d, h.Releases, firstD)
	}
	if v, _ := p.Signer.Verifier(); v.Verify(ctx, st, firstD) != nil {
		t.Fatal("the resumed release is not signed")
	}

	os.WriteFile(f, []byte("#!/bin/sh\necho other\n"), 0o755)
	if _, _, err := p.Publish(ctx, build(time.Now()), PublishOptions{Version: "v1.0.0", Channel: "beta"}); err == nil || !strings.Contains(err.Error(), "versions are immutable") {
		t.Fatalf("other files under a published version: %v", err)
	}
}

// TestSupersededSignatures: each head write deletes the signature of the
// head before the one it replaced, so the repository keeps two signed
// heads (the current one, and the one a client may have read just before
// the swap) instead of one more sha256-….sig tag per write.
func TestSupersededSignatures(t *testing.T) {
	ctx := context.Background()
	_, _, pub := testKeys(t)
	v, _ := LoadVerifier(pub)
	for kind, st := range stores(t) {
		t.Run(kind, func(t *testing.T) {
			p := newPublisher(t, st)
			const n = 5
			for i := 0; i < n; i++ {
				ver := fmt.Sprintf("v1.0.%d", i)
				if _, _, err := p.Publish(ctx, release(t, ver, nil), PublishOptions{Version: ver, Channel: "edge", Rollout: 100}); err != nil {
					t.Fatal(err)
				}
			}
			for seq := uint64(1); seq <= n; seq++ {
				d, err := st.Resolve(ctx, RecordTag("edge", seq))
				if err != nil {
					t.Fatal(err)
				}
				_, err = st.Resolve(ctx, SignatureTag(d))
				signed := err == nil
				if want := seq >= n-1; signed != want {
					t.Errorf("head seq %d: signed %v, want %v", seq, signed, want)
				}
			}
			// The current head verifies, and so does a client's read of it.
			if _, _, err := ReadHead(ctx, st, "edge", v); err != nil {
				t.Fatal(err)
			}
			// The releases' own signatures are untouched.
			for i := 0; i < n; i++ {
				d, err := st.Resolve(ctx, fmt.Sprintf("v1.0.%d", i))
				if err != nil {
					t.Fatal(err)
				}
				if err := v.Verify(ctx, st, d); err != nil {
					t.Errorf("release v1.0.%d: %v", i, err)
				}
			}
		})
	}
}
