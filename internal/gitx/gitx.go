// Package gitx runs the git CLI for relcheck: finding release tags, resolving
// the base of a comparison, and materialising a tree at a ref without touching
// the user's working tree.
package gitx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Repo is a git working tree.
type Repo struct {
	// Root is the top-level directory of the working tree.
	Root string
}

// ErrNotRepo is returned by Open for a directory outside any git repository.
var ErrNotRepo = errors.New("not a git repository")

// Open finds the repository containing dir.
func Open(ctx context.Context, dir string) (*Repo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, err
	}
	out, err := run(ctx, abs, nil, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", abs, ErrNotRepo)
	}
	root := strings.TrimSpace(out)
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	return &Repo{Root: root}, nil
}

// Git runs a git command in the repository and returns its standard output.
func (r *Repo) Git(ctx context.Context, args ...string) (string, error) {
	return run(ctx, r.Root, nil, args...)
}

func run(ctx context.Context, dir string, stdout io.Writer, args ...string) (string, error) {
	return runWith(ctx, dir, nil, stdout, args...)
}

func runEnv(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	return runWith(ctx, dir, env, nil, args...)
}

func runWith(ctx context.Context, dir string, env []string, stdout io.Writer, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	// Never let a user's pager, editor or locale change what we parse.
	cmd.Env = append(append(os.Environ(), "GIT_PAGER=cat", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C"), env...)
	var out, errb bytes.Buffer
	if stdout != nil {
		cmd.Stdout = stdout
	} else {
		cmd.Stdout = &out
	}
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
	}
	return out.String(), nil
}

// HasHead reports whether the repository has at least one commit.
func (r *Repo) HasHead(ctx context.Context) bool {
	_, err := r.Git(ctx, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
	return err == nil
}

// IsShallow reports whether the repository is a shallow clone (whose tags
// and history may be missing).
func (r *Repo) IsShallow(ctx context.Context) bool {
	out, err := r.Git(ctx, "rev-parse", "--is-shallow-repository")
	return err == nil && strings.TrimSpace(out) == "true"
}

// IsClean reports whether the project in dir is exactly as committed: no
// changes to tracked files, and no untracked files the gates read (Go
// sources, go.mod/go.sum, SQL migrations, relcheck.yaml); stray build
// outputs or coverage files do not count.
func (r *Repo) IsClean(ctx context.Context, dir string) bool {
	st, err := r.Git(ctx, "-C", dir, "status", "--porcelain", "--untracked-files=all", "--", ".")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(st, "\n") {
		if len(l) < 4 {
			continue
		}
		if !strings.HasPrefix(l, "??") {
			return false
		}
		name := path.Base(strings.TrimSpace(l[3:]))
		switch {
		case strings.HasSuffix(name, ".go"), strings.HasSuffix(name, ".sql"),
			name == "go.mod", name == "go.sum", name == "relcheck.yaml":
			return false
		}
	}
	return true
}

// Describe returns the short hash of HEAD, with "-dirty" when the working tree
// has uncommitted changes to tracked files, or "worktree" without any commit.
func (r *Repo) Describe(ctx context.Context) string {
	h, err := r.Git(ctx, "rev-parse", "--short", "HEAD")
	if err != nil {
		return "worktree"
	}
	h = strings.TrimSpace(h)
	if !r.IsClean(ctx, r.Root) {
		h += "-dirty"
	}
	return h
}

// Tag is a release tag.
type Tag struct {
	Name    string          // as in git, e.g. "v1.4.0" or "sub/v1.4.0"
	Version *semver.Version // parsed from the name without its prefix
	Time    time.Time       // tagger date for annotated tags, else commit date
	Commit  string
}

// ReleaseTags returns the non-prerelease vX.Y.Z tags with the given prefix
// (for a module in a subdirectory, "sub/") reachable from rev, in ascending
// semver order. With rev empty, all such tags are returned.
func (r *Repo) ReleaseTags(ctx context.Context, prefix, rev string) ([]Tag, error) {
	args := []string{"tag", "--format=%(refname:strip=2)%09%(creatordate:unix)%09%(*objectname)%09%(objectname)"}
	if rev != "" {
		if !r.HasHead(ctx) {
			return nil, nil
		}
		args = append(args, "--merged", rev)
	}
	out, err := r.Git(ctx, args...)
	if err != nil {
		return nil, err
	}
	var tags []Tag
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 || !strings.HasPrefix(f[0], prefix) {
			continue
		}
		v, ok := ParseRelease(strings.TrimPrefix(f[0], prefix))
		if !ok {
			continue
		}
		sec, _ := strconv.ParseInt(f[1], 10, 64)
		commit := f[2]
		if commit == "" {
			commit = f[3]
		}
		tags = append(tags, Tag{Name: f[0], Version: v, Time: time.Unix(sec, 0).UTC(), Commit: commit})
	}
	sort.SliceStable(tags, func(i, j int) bool { return tags[i].Version.LessThan(tags[j].Version) })
	return tags, nil
}

// ParseRelease parses a release version "vX.Y.Z" (no prerelease, no build
// metadata, no missing parts).
func ParseRelease(s string) (*semver.Version, bool) {
	if !strings.HasPrefix(s, "v") {
		return nil, false
	}
	v, err := semver.StrictNewVersion(s[1:])
	if err != nil || v.Prerelease() != "" || v.Metadata() != "" {
		return nil, false
	}
	return v, true
}

// ResolveCommit returns the full commit hash a ref names.
func (r *Repo) ResolveCommit(ctx context.Context, ref string) (string, error) {
	out, err := r.Git(ctx, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("unknown revision %q: no such tag, branch or commit", ref)
	}
	return strings.TrimSpace(out), nil
}

// Archive writes the tree of ref into dest (which must exist) through a
// temporary index, so neither the working tree nor the real index is touched.
// Unlike `git archive`, it keeps files marked export-ignore and leaves
// export-subst placeholders alone: the tree is the commit's, byte for byte.
func (r *Repo) Archive(ctx context.Context, ref, dest string) error {
	tmp, err := os.MkdirTemp("", "relcheck-index-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	env := []string{"GIT_INDEX_FILE=" + filepath.Join(tmp, "index")}
	if _, err := runEnv(ctx, r.Root, env, "read-tree", ref+"^{tree}"); err != nil {
		return err
	}
	abs, err := filepath.Abs(dest)
	if err != nil {
		return err
	}
	_, err = runEnv(ctx, r.Root, env, "checkout-index", "--all", "--force", "--prefix="+abs+string(filepath.Separator))
	return err
}

// ReadFile returns the contents of a file at ref (path relative to the root).
func (r *Repo) ReadFile(ctx context.Context, ref, file string) ([]byte, error) {
	out, err := r.Git(ctx, "show", ref+":"+filepath.ToSlash(file))
	if err != nil {
		return nil, err
	}
	return []byte(out), nil
}

// ListFiles returns the files directly inside dir (relative to the root) at ref.
func (r *Repo) ListFiles(ctx context.Context, ref, dir string) ([]string, error) {
	spec := ref + ":" + filepath.ToSlash(dir)
	if dir == "" || dir == "." {
		spec = ref
	}
	out, err := r.Git(ctx, "ls-tree", "--name-only", spec)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			files = append(files, l)
		}
	}
	return files, nil
}
