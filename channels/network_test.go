package channels

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// blackhole accepts connections and never answers.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return ln.Addr().String()
}

// short are bounds small enough for tests.
var short = Network{Connect: time.Second, Response: time.Second, Stall: time.Second, MinBytes: 1024}

// TestBlackholedRegistry: a registry that accepts and never answers ends
// a client's check with a timeout, not a hang.
func TestBlackholedRegistry(t *testing.T) {
	st, err := OpenWith(blackhole(t)+"/relcheck/sample", true, short)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Resolve(context.Background(), HeadTag("stable"))
	if err == nil || !isDeadline(err) {
		t.Fatalf("Resolve on a black hole: %v, want a timeout", err)
	}
}

// TestTrickledDownload: a registry that sends a release file a few bytes
// at a time is given up (the download kept to resume), and a cancelled
// context stops a download at once.
func TestTrickledDownload(t *testing.T) {
	ctx := context.Background()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var trickle atomic.Value // the digest of the file to trickle
	trickle.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := trickle.Load().(string); d != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d) {
			{
				r.Header.Del("Range")
				rec := httptest.NewRecorder()
				reg.ServeHTTP(rec, r)
				w.Header().Set("Content-Length", rec.Header().Get("Content-Length"))
				w.WriteHeader(rec.Code)
				for _, b := range rec.Body.Bytes() {
					w.Write([]byte{b})
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						return
					case <-time.After(300 * time.Millisecond):
					}
				}
				return
			}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	repo := strings.TrimPrefix(srv.URL, "http://") + "/relcheck/sample"
	// Only the download is trickled: the publisher gets the default bounds.
	st, err := OpenWith(repo, true, DefaultNetwork)
	if err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, st)
	img := release(t, "v1.0.0", nil)
	if _, _, err := p.Publish(ctx, img, PublishOptions{Version: "v1.0.0", Channel: "stable", Rollout: 100}); err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	trickle.Store(m.Layers[0].Digest.String())
	_, _, pub := testKeys(t)
	sub := &Subscription{Repo: repo, Insecure: true, Channel: "stable", Key: pub, InstallDir: t.TempDir(), InstallID: NewInstallID(),
		Network: &NetworkConfig{ConnectTimeout: config10s, ResponseTimeout: config10s, StallTimeout: config1s}}
	c, err := NewClient(sub, nil)
	if err != nil {
		t.Fatal(err)
	}
	chk, err := c.Check(ctx, DecideOptions{}, true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Installer.Apply(ctx, chk.State, chk.Decision, chk.HeadDigest)
	if err == nil || !strings.Contains(err.Error(), "giving up on a stalled transfer") {
		t.Fatalf("a trickled download: %v, want a stalled transfer", err)
	}

	// Cancelled while trickling: the download stops with the context.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err = c.Installer.Apply(cctx, chk.State, chk.Decision, chk.HeadDigest)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("a cancelled download: %v, want context.Canceled", err)
	}
}

const (
	config1s  = 1_000_000_000
	config10s = 10 * config1s
)
