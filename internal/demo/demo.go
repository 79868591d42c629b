// Package demo materialises relcheck's sample project — a small Go library
// with a few releases as git tags and a pending change — into a directory,
// so `relcheck demo` can run the gates on something real.
package demo

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/tools/txtar"
)

// Stage is one step of the sample project's history.
type Stage struct {
	Name    string
	Tag     string // empty: left as an uncommitted change
	Date    string // RFC 3339 commit date
	Message string
	Files   []txtar.File
}

// Stages reads the stages (files *.txtar, in name order) from fsys.
func Stages(fsys fs.FS, dir string) ([]Stage, error) {
	names, err := fs.Glob(fsys, dir+"/*.txtar")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Stage
	for _, n := range names {
		data, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		a := txtar.Parse(data)
		st := Stage{Name: filepath.Base(n), Files: a.Files}
		for _, line := range strings.Split(string(a.Comment), "\n") {
			k, v, _ := strings.Cut(line, ":")
			switch strings.TrimSpace(k) {
			case "tag":
				st.Tag = strings.TrimSpace(v)
			case "date":
				st.Date = strings.TrimSpace(v)
			case "message":
				st.Message = strings.TrimSpace(v)
			}
		}
		out = append(out, st)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no stages in %s", dir)
	}
	return out, nil
}

// Materialize writes the stages into dir (which must be empty or absent) as a
// git repository: each tagged stage committed and tagged with its date, the
// last untagged stage written to the working tree only.
func Materialize(ctx context.Context, dir string, stages []Stage) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	}
	git := func(env []string, args ...string) error {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(),
			"GIT_AUTHOR_NAME=relcheck demo", "GIT_AUTHOR_EMAIL=demo@example.com",
			"GIT_COMMITTER_NAME=relcheck demo", "GIT_COMMITTER_EMAIL=demo@example.com",
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		cmd.Env = append(cmd.Env, env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := git(nil, "init", "-q", "-b", "main"); err != nil {
		return err
	}
	for _, st := range stages {
		if err := replaceTree(dir, st.Files); err != nil {
			return fmt.Errorf("stage %s: %w", st.Name, err)
		}
		if st.Tag == "" {
			continue
		}
		env := []string{"GIT_AUTHOR_DATE=" + st.Date, "GIT_COMMITTER_DATE=" + st.Date}
		if err := git(env, "add", "-A"); err != nil {
			return err
		}
		msg := st.Message
		if msg == "" {
			msg = st.Tag
		}
		if err := git(env, "commit", "-q", "-m", msg); err != nil {
			return err
		}
		if err := git(env, "tag", st.Tag); err != nil {
			return err
		}
	}
	return nil
}

// replaceTree removes everything in dir but .git and writes files.
func replaceTree(dir string, files []txtar.File) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == ".git" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	for _, f := range files {
		name := filepath.Clean(filepath.FromSlash(f.Name))
		if filepath.IsAbs(name) || strings.HasPrefix(name, "..") {
			return fmt.Errorf("file %q escapes the project", f.Name)
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
