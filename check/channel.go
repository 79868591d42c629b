package check

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// ChannelVersion turns the next release version into the version a channel
// publishes: stable is the plain version; beta is the next vX.Y.Z-beta.N
// neither tagged in git nor among published (the release repository's
// tags); edge is vX.Y.Z-0.YYYYMMDDhhmmss.gHASH from the HEAD commit, which
// sorts by commit time and is a valid OCI tag once "+" is avoided.
func ChannelVersion(ctx context.Context, env *Env, next, channel string, published []string) (string, error) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(next, "v"))
	if err != nil {
		return "", fmt.Errorf("next version %q: %w", next, err)
	}
	switch channel {
	case "", "stable":
		return next, nil
	case "beta":
		out, err := env.repo.Git(ctx, "tag", "--list", env.TagPrefix+next+"-beta.*")
		if err != nil {
			return "", err
		}
		n := 0
		for _, t := range append(strings.Fields(out), published...) {
			t = strings.TrimPrefix(t, env.TagPrefix)
			if k, err := strconv.Atoi(strings.TrimPrefix(t, next+"-beta.")); err == nil && strings.HasPrefix(t, next+"-beta.") && k > n {
				n = k
			}
		}
		return fmt.Sprintf("%s-beta.%d", next, n+1), nil
	case "edge":
		ver, err := EdgeVersion(ctx, env, next, "HEAD")
		if err != nil {
			return fmt.Sprintf("v%d.%d.%d-0.worktree", v.Major(), v.Minor(), v.Patch()), nil
		}
		if !env.repo.IsClean(ctx, env.Dir) {
			ver += ".dirty" // not the commit's content: never publish it as that commit
		}
		return ver, nil
	}
	return "", fmt.Errorf("unknown channel %q", channel)
}

// EdgeVersion is the edge version of next built from commit rev:
// vX.Y.Z-0.YYYYMMDDhhmmss.gHASH, sorting by commit time.
func EdgeVersion(ctx context.Context, env *Env, next, rev string) (string, error) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(next, "v"))
	if err != nil {
		return "", fmt.Errorf("next version %q: %w", next, err)
	}
	out, err := env.repo.Git(ctx, "log", "-1", "--format=%ct %h", "--abbrev=12", rev)
	if err != nil {
		return "", err
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return "", fmt.Errorf("git log %s: unexpected output %q", rev, out)
	}
	sec, _ := strconv.ParseInt(f[0], 10, 64)
	ts := time.Unix(sec, 0).UTC().Format("20060102150405")
	return fmt.Sprintf("v%d.%d.%d-0.%s.g%s", v.Major(), v.Minor(), v.Patch(), ts, f[1]), nil
}

// NextVersion is the version a release of the project in dir gets on a
// channel: next, or when it is empty the next version the gates derive,
// as the channel writes it (ChannelVersion; published are the release
// repository's tags, so a beta number is never taken twice). A tree with
// uncommitted changes has none: a release is a commit.
func NextVersion(ctx context.Context, dir, channel, next string, published []string) (string, error) {
	env, err := Resolve(ctx, Options{Dir: dir})
	if err != nil {
		return "", inputErrorf("no version can be derived in %s: %v", dir, err)
	}
	// Refused before the gates run, not after.
	if err := env.committed(ctx); err != nil {
		return "", err
	}
	if next == "" {
		rep, err := Run(ctx, env, nil, nil)
		if err != nil {
			return "", err
		}
		// A release is a commit that passed the gates.
		if out := rep.Outcome(); out != nil {
			return "", &NotReleasableError{Summary: Summaries(rep), Err: out}
		}
		if rep.Version == nil || rep.Version.Next == "" {
			return "", inputErrorf("the gates derived no next version (%s)", Summaries(rep))
		}
		next = rep.Version.Next
	}
	v, err := ChannelVersion(ctx, env, next, channel, published)
	if err != nil {
		return "", err
	}
	if strings.HasSuffix(v, ".dirty") {
		return "", inputErrorf("%s has uncommitted changes: commit them first", dir)
	}
	return v, nil
}

// Committed refuses a project directory whose tracked files have
// uncommitted changes: a release is a commit. Publish asks before it runs
// any gate.
func Committed(ctx context.Context, dir string) error {
	env, err := Resolve(ctx, Options{Dir: dir})
	if err != nil {
		return inputErrorf("no version can be derived in %s: %v", dir, err)
	}
	return env.committed(ctx)
}

func (env *Env) committed(ctx context.Context) error {
	if !env.repo.IsClean(ctx, env.Dir) {
		return inputErrorf("%s has uncommitted changes: commit them first (a release is a commit)", env.Display)
	}
	return nil
}

// NotReleasableError says that the gates did not pass on the commit a
// version was asked for. Its exit code is the outcome's (1 for findings at
// error level, 3 when a gate could not decide).
type NotReleasableError struct {
	Summary string
	Err     error
}

func (e *NotReleasableError) Error() string {
	return fmt.Sprintf("the gates did not pass on this commit, so it is not released (%s); 'relcheck check' shows the findings", e.Summary)
}

func (e *NotReleasableError) Unwrap() error { return e.Err }
