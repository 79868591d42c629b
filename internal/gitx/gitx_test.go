package gitx

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcheck/relcheck/internal/gittest"
)

func testRepo(t *testing.T) *Repo {
	t.Helper()
	dir := t.TempDir()
	gittest.Init(t, dir)
	date := []string{"GIT_COMMITTER_DATE=2026-01-02T03:04:05Z", "GIT_AUTHOR_DATE=2026-01-02T03:04:05Z"}
	run := func(args ...string) { gittest.GitEnv(t, dir, date, args...) }
	os.MkdirAll(filepath.Join(dir, "sub", "deep"), 0o755)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "deep", "b.sh"), []byte("#!/bin/sh\n"), 0o755)
	// export-ignore and export-subst must not change the materialised tree.
	os.WriteFile(filepath.Join(dir, ".gitattributes"), []byte("sub/deep export-ignore\na.txt export-subst\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("$Format:%H$"), 0o644)
	run("add", "-A")
	run("commit", "-qm", "one")
	for _, tag := range []string{"v1.9.0", "v1.10.0", "v1.10.1-rc.1", "v2", "1.11.0", "sub/v0.3.0"} {
		run("tag", tag)
	}
	run("tag", "-a", "-m", "annotated", "v1.2.3")
	// A higher release on a branch HEAD cannot reach.
	run("checkout", "-q", "-b", "side")
	os.WriteFile(filepath.Join(dir, "side.txt"), []byte("side"), 0o644)
	run("add", "-A")
	run("commit", "-qm", "side")
	run("tag", "v9.0.0")
	run("checkout", "-q", "main")
	// HEAD moves on, so the archived tags differ from HEAD.
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("changed at head"), 0o644)
	run("commit", "-qam", "two")
	r, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReleaseTags(t *testing.T) {
	r := testRepo(t)
	ctx := context.Background()
	tags, err := r.ReleaseTags(ctx, "", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tg := range tags {
		names = append(names, tg.Name)
		if tg.Commit == "" || tg.Time.IsZero() {
			t.Errorf("tag %s lacks commit or time: %+v", tg.Name, tg)
		}
	}
	if got := strings.Join(names, " "); got != "v1.2.3 v1.9.0 v1.10.0" {
		t.Errorf("release tags = %s, want semver order without prereleases, malformed names or tags HEAD cannot reach", got)
	}
	head, _ := r.ResolveCommit(ctx, "HEAD~1")
	if tags[0].Commit != head {
		t.Errorf("annotated tag peeled to %s, want commit %s", tags[0].Commit, head)
	}
	sub, _ := r.ReleaseTags(ctx, "sub/", "HEAD")
	if len(sub) != 1 || sub[0].Version.String() != "0.3.0" {
		t.Errorf("prefixed tags = %+v", sub)
	}
}

func TestArchive(t *testing.T) {
	r := testRepo(t)
	// A dirty, partly staged working tree must come out exactly as it was.
	os.WriteFile(filepath.Join(r.Root, "a.txt"), []byte("staged edit"), 0o644)
	r.Git(context.Background(), "add", "a.txt")
	os.WriteFile(filepath.Join(r.Root, "a.txt"), []byte("unstaged edit"), 0o644)
	os.WriteFile(filepath.Join(r.Root, "new.txt"), []byte("untracked"), 0o644)
	before, _ := r.Git(context.Background(), "status", "--porcelain")
	staged, _ := r.Git(context.Background(), "diff", "--cached")
	dest := t.TempDir()
	if err := r.Archive(context.Background(), "v1.9.0", dest); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dest, "sub", "deep", "b.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&0o100 == 0 {
		t.Errorf("executable bit lost: %v", st.Mode())
	}
	if a, _ := os.ReadFile(filepath.Join(dest, "a.txt")); string(a) != "$Format:%H$" {
		t.Errorf("a.txt = %q: export-subst applied", a)
	}
	after, _ := r.Git(context.Background(), "status", "--porcelain")
	stagedAfter, _ := r.Git(context.Background(), "diff", "--cached")
	if after != before || staged != stagedAfter {
		t.Errorf("the working tree or index changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if a, _ := os.ReadFile(filepath.Join(r.Root, "a.txt")); string(a) != "unstaged edit" {
		t.Errorf("working tree file changed: %q", a)
	}
	if err := r.Archive(context.Background(), "nope", t.TempDir()); err == nil {
		t.Error("archive of an unknown ref succeeded")
	}
}

func TestParseRelease(t *testing.T) {
	for in, ok := range map[string]bool{"v1.2.3": true, "v0.0.0": true, "1.2.3": false, "v1.2": false, "v1.2.3-rc.1": false, "v1.2.3+meta": false, "v01.2.3": false} {
		if _, got := ParseRelease(in); got != ok {
			t.Errorf("ParseRelease(%q) = %v, want %v", in, got, ok)
		}
	}
}
