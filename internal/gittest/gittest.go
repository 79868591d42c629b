// Package gittest builds throwaway git repositories for tests, with a fixed
// identity and no user or system configuration.
package gittest

import (
	"os"
	"os/exec"
	"testing"
)

// Env is the environment git runs with in tests.
func Env(extra ...string) []string {
	return append(append(os.Environ(),
		"GIT_AUTHOR_NAME=relcheck test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=relcheck test", "GIT_COMMITTER_EMAIL=test@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"), extra...)
}

// Git runs git in dir and fails the test on error.
func Git(tb testing.TB, dir string, args ...string) {
	tb.Helper()
	GitEnv(tb, dir, nil, args...)
}

// GitEnv runs git in dir with extra environment variables.
func GitEnv(tb testing.TB, dir string, env []string, args ...string) {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = Env(env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// Init makes dir a repository on branch main, skipping the test when git is
// not installed.
func Init(tb testing.TB, dir string) {
	tb.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		tb.Skip("git not installed")
	}
	Git(tb, dir, "init", "-q", "-b", "main")
}
