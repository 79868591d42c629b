package apicompat

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relcheck/relcheck/internal/gittest"
	"github.com/relcheck/relcheck/internal/gitx"
)

func TestWindowMet(t *testing.T) {
	day := 24 * time.Hour
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tag := func(name string, daysAgo int) Release {
		return Release{Name: name, Time: now.Add(-time.Duration(daysAgo) * day)}
	}
	since := []Release{tag("v0.2.0", 40), tag("v0.3.0", 10)}
	tests := []struct {
		name          string
		since         []Release
		releases, min int
		want          bool
	}{
		{"enough releases, no days asked", since, 2, 0, true},
		{"too few releases", since, 3, 0, false},
		{"days counted from the first deprecated release", since, 1, 40, true},
		{"one day short", since, 1, 41, false},
		{"never released as deprecated", nil, 0, 0, true},
		{"never released, days asked", nil, 0, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, _, _ := windowMet(tt.since, tt.releases, tt.min, now)
			if ok != tt.want {
				t.Errorf("windowMet = %v, want %v", ok, tt.want)
			}
		})
	}
}

// TestDeprecatedSince reads the deprecation history from real tags: the
// window starts at the earliest release that carried the marker, and a
// release without it ends the count.
func TestDeprecatedSince(t *testing.T) {
	dir := t.TempDir()
	gittest.Init(t, dir)
	git := func(args ...string) { gittest.Git(t, dir, args...) }
	release := func(tag, src string) {
		os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
		os.WriteFile(filepath.Join(dir, "sub", "s.go"), []byte("package sub\n"+src), 0o644)
		git("add", "-A")
		git("commit", "-qm", tag)
		git("tag", tag)
	}
	release("v0.1.0", "// Deprecated: Use G.\nfunc F() {}\n")
	release("v0.2.0", "func F() {}\n") // undeprecated again
	release("v0.3.0", "// F does.\n//\n// Deprecated: Use G.\nfunc F() {}\ntype T struct{}\n// Deprecated: gone soon.\nfunc (T) M() {}\n")
	release("v0.4.0", "// Deprecated: Use G.\nfunc F() {}\n// Deprecated: Use U.\ntype T struct{}\nfunc (T) M() {}\n")
	ctx := context.Background()
	repo, err := gitx.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	tags, _ := repo.ReleaseTags(ctx, "", "HEAD")
	h := &History{Root: repo.Root, Tags: releases(tags)}
	names := func(ts []Release) string {
		var n []string
		for _, t := range ts {
			n = append(n, t.Name)
		}
		return strings.Join(n, " ")
	}
	if got := names(h.DeprecatedSince(ctx, "sub", "F")); got != "v0.3.0 v0.4.0" {
		t.Errorf("F deprecated in %q, want v0.3.0 v0.4.0 (v0.2.0 dropped the marker)", got)
	}
	// T.M: deprecated itself at v0.3.0, through its type at v0.4.0.
	if got := names(h.DeprecatedSince(ctx, "sub", "T.M")); got != "v0.3.0 v0.4.0" {
		t.Errorf("T.M deprecated in %q, want v0.3.0 v0.4.0", got)
	}
	if got := names(h.DeprecatedSince(ctx, "sub", "Missing")); got != "" {
		t.Errorf("Missing deprecated in %q, want none", got)
	}
}

// releases converts git's release tags.
func releases(tags []gitx.Tag) []Release {
	out := make([]Release, len(tags))
	for i, t := range tags {
		out[i] = Release(t)
	}
	return out
}
