// Package check runs relcheck's gates over a repository: it resolves the
// base release, loads the configuration, runs each applicable gate in order
// and assembles the report and the version decision. Gates are data: a list
// of entries that each say whether they apply, and run.
//
// It sits above the gates (apicompat, migrations, perf) and below the CLI:
//
//	check.go     Resolve (repository, configuration, base), the gate list, Run
//	config.go    relcheck.yaml: each gate's own section, strictly decoded
//	template.go  the commented relcheck.yaml that relcheck init writes
//	channel.go   NextVersion and ChannelVersion for publish and version next
package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"

	"github.com/relcheck/relcheck/apicompat"
	"github.com/relcheck/relcheck/internal/gitx"
	"github.com/relcheck/relcheck/migrations"
	"github.com/relcheck/relcheck/perf"
	"github.com/relcheck/relcheck/report"
)

func inputErrorf(format string, args ...any) error {
	return report.Inputf(format, args...)
}

// Options select the repository, the base and the configuration.
type Options struct {
	Dir        string // --repo
	Base       string // --base; empty: the latest release tag reachable from HEAD
	ConfigFile string // --config; empty: relcheck.yaml in Dir (optional)
	// DatabaseURL overrides migrations.databaseURL (--database-url).
	DatabaseURL string
	// PerfSave is the file the perf gate saves its results to (--save);
	// PerfHistory the history file it appends to (--history).
	PerfSave    string
	PerfHistory string
	// PerfBudget caps the perf gate's time (--budget); 0: no cap.
	PerfBudget time.Duration
	Now        time.Time
}

// Env is a resolved repository: what every gate needs.
type Env struct {
	repo *gitx.Repo
	// filesOnly: the migrations gate reads its files and starts no
	// database (RunVersion).
	filesOnly   bool
	Root        string // repository root
	Dir         string // the project directory (--repo), absolute
	Display     string // the project directory as the user gave it
	TagPrefix   string // "sub/" when Dir is a subdirectory of Root
	Config      *Config
	ConfigFile  string // path relative to Root
	Base        string // a tag name or ref, empty for a first release
	BaseVersion *semver.Version
	tags        []gitx.Tag // release tags up to the base, ascending
	Head        string
	Now         time.Time
	// BaseNote explains a surprising base decision (shown in the version reasons).
	BaseNote string
	// tagged is the release tag on HEAD when HEAD is a clean release commit;
	// the base is then the release before it.
	tagged *gitx.Tag
	// ReleaseBase is the base of the gates that look at the application
	// rather than its Go API (migrations, perf): the highest vX.Y.Z tag
	// reachable from HEAD whatever the module path says (an application
	// tagged v2.14.0 whose module path has no /v2), or --base. Empty for a
	// first release.
	ReleaseBase string
	// baseErr is why --base cannot be the api gate's base (a tag of another
	// major version); only the api gate reports it.
	baseErr error
	// next is the next version as the api gate decided it, for the gates
	// after it (suppressions that expire at a version).
	next string
	// releaseTag is the release tag on HEAD when HEAD is a clean release
	// commit (of any major version).
	releaseTag string
	// Progress, when set, receives a line about long work in progress.
	Progress Progress
	// PerfProgress, when set, is told about each perf round.
	PerfProgress func(perf.Progress)
	// PerfSave, PerfHistory and PerfBudget are Options'.
	PerfSave    string
	PerfHistory string
	PerfBudget  time.Duration
	// pathMajor is N of a /vN module path suffix, 0 without one.
	pathMajor int
}

// Resolve opens the repository, loads the configuration and finds the base.
func Resolve(ctx context.Context, opts Options) (*Env, error) {
	dir := opts.Dir
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return nil, report.OptionErrorf("Dir", "%s: not a directory", dir)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	repo, err := gitx.Open(ctx, abs)
	if err != nil {
		if errors.Is(err, gitx.ErrNotRepo) {
			return nil, inputErrorf("%s is not inside a git repository: relcheck compares with release tags, run it in a git checkout (git init; git tag v0.1.0)", dir)
		}
		return nil, err
	}
	env := &Env{repo: repo, Root: repo.Root, Dir: abs, Display: dir, Now: opts.Now}
	if env.Now.IsZero() {
		env.Now = time.Now()
	}
	if data, err := os.ReadFile(filepath.Join(abs, "go.mod")); err == nil {
		if _, pathMajor, ok := module.SplitPathVersion(modfile.ModulePath(data)); ok && pathMajor != "" {
			fmt.Sscanf(strings.TrimLeft(pathMajor, "/."), "v%d", &env.pathMajor)
		}
	}
	if rel, err := filepath.Rel(repo.Root, abs); err == nil && rel != "." {
		rel = filepath.ToSlash(rel)
		// A major version subdirectory (sub/v2 holding module .../v2) is
		// tagged like its parent directory: sub/v2.x.y, as the go command
		// expects.
		if env.pathMajor >= 2 && path.Base(rel) == fmt.Sprintf("v%d", env.pathMajor) {
			rel = path.Dir(rel)
		}
		if rel != "." {
			env.TagPrefix = rel + "/"
		}
	}

	cfg, cfgPath, err := LoadConfigFor(abs, opts.ConfigFile)
	if err != nil {
		return nil, err
	}
	env.Config = cfg
	if opts.DatabaseURL != "" {
		cfg.Migrations.DatabaseURL = opts.DatabaseURL
	}
	env.PerfSave, env.PerfHistory, env.PerfBudget = opts.PerfSave, opts.PerfHistory, opts.PerfBudget
	env.ConfigFile = ConfigFileName
	if opts.ConfigFile != "" {
		env.ConfigFile = cfgPath
	}
	if p, err := filepath.Abs(cfgPath); err == nil {
		if rel, err := filepath.Rel(repo.Root, p); err == nil && !strings.HasPrefix(rel, "..") {
			env.ConfigFile = filepath.ToSlash(rel)
		}
	}

	env.Head = repo.Describe(ctx)
	if err := env.resolveBase(ctx, opts.Base); err != nil {
		return nil, err
	}
	if err := env.resolveReleaseBase(ctx, opts.Base); err != nil {
		return nil, err
	}
	return env, nil
}

// resolveReleaseBase finds the base of the migrations and perf gates: --base
// if given, else the highest release tag (with the project's tag prefix)
// reachable from HEAD of any major version, skipping the tag on a clean
// release commit at HEAD as resolveBase does. Applications are versioned by
// their releases, not by a Go module path: the api gate's rule that only
// tags of the path's major count must not decide their base.
func (env *Env) resolveReleaseBase(ctx context.Context, base string) error {
	if base != "" {
		env.ReleaseBase = base
		return nil
	}
	if !env.repo.HasHead(ctx) {
		return nil
	}
	tags, err := env.repo.ReleaseTags(ctx, env.TagPrefix, "HEAD")
	if err != nil {
		return err
	}
	if len(tags) > 0 && env.repo.IsClean(ctx, env.Dir) {
		if head, err := env.repo.ResolveCommit(ctx, "HEAD"); err == nil {
			for _, t := range tags {
				if t.Commit == head {
					env.releaseTag = t.Name // the highest on HEAD
				}
			}
			tags = slices.DeleteFunc(tags, func(t gitx.Tag) bool { return t.Commit == head })
		}
	}
	if len(tags) > 0 {
		env.ReleaseBase = tags[len(tags)-1].Name
		return nil
	}
	if env.Base != "" {
		env.ReleaseBase = env.Base
	}
	return nil
}

// releaseTags returns the release tags of this module reachable from rev:
// with the module's tag prefix, and of the major versions its path allows
// (v0 and v1 without a /vN suffix, vN with one; v2+ tags on a path without
// a suffix are +incompatible and never a base).
func (env *Env) releaseTags(ctx context.Context, rev string) ([]gitx.Tag, error) {
	tags, err := env.repo.ReleaseTags(ctx, env.TagPrefix, rev)
	if err != nil {
		return nil, err
	}
	kept := tags[:0]
	for _, t := range tags {
		if env.majorAllowed(t.Version) || env.previousMajor(t.Version) {
			kept = append(kept, t)
		}
	}
	return kept, nil
}

// majorAllowed reports whether v is a version of the module path's major:
// v0 and v1 without a /vN suffix, vN with one.
func (env *Env) majorAllowed(v *semver.Version) bool {
	if env.pathMajor >= 2 {
		return v.Major() == uint64(env.pathMajor)
	}
	return v.Major() <= 1
}

// previousMajor reports whether v belongs to the major before the path's
// (v1 and v0 for /v2, v2 for /v3): the base of a module that just moved to a
// new major path, as gorelease takes it.
func (env *Env) previousMajor(v *semver.Version) bool {
	switch {
	case env.pathMajor == 2:
		return v.Major() <= 1
	case env.pathMajor > 2:
		return v.Major() == uint64(env.pathMajor-1)
	}
	return false
}

// baseCandidates keeps the tags of the path's major, or if there are none,
// those of the major before it (the module moved to a new major path).
func (env *Env) baseCandidates(tags []gitx.Tag) []gitx.Tag {
	var same []gitx.Tag
	for _, t := range tags {
		if env.majorAllowed(t.Version) {
			same = append(same, t)
		}
	}
	if len(same) > 0 {
		return same
	}
	return tags
}

func (env *Env) resolveBase(ctx context.Context, base string) error {
	if !env.repo.HasHead(ctx) {
		if base != "" {
			return report.OptionErrorf("Base", "%s: the repository has no commits yet", base)
		}
		return nil
	}
	if base == "" {
		all, err := env.releaseTags(ctx, "HEAD")
		if err != nil {
			return err
		}
		// HEAD may be the release commit itself (a tag push): check the
		// lowest tag on it against the release before it.
		tags := all
		if len(all) > 0 && env.repo.IsClean(ctx, env.Dir) {
			if head, err := env.repo.ResolveCommit(ctx, "HEAD"); err == nil {
				var before []gitx.Tag
				for i := range all {
					if all[i].Commit != head {
						before = append(before, all[i])
					} else if env.tagged == nil && env.majorAllowed(all[i].Version) {
						env.tagged = &all[i]
					}
				}
				tags = before
			}
		}
		cands := env.baseCandidates(tags)
		if len(cands) == 0 && env.repo.IsShallow(ctx) {
			return inputErrorf("%s is a shallow clone without an earlier release tag, so the last release cannot be found: fetch the full history and tags (actions/checkout with fetch-depth: 0, or git fetch --unshallow --tags), or pass --base", env.Display)
		}
		if len(cands) == 0 {
			if env.TagPrefix != "" {
				// A module in a subdirectory is versioned by tags with the
				// directory as prefix; say so if only plain tags exist.
				if plain, err := env.repo.ReleaseTags(ctx, "", "HEAD"); err == nil && len(plain) > 0 {
					env.BaseNote = fmt.Sprintf("no %svX.Y.Z tag: the module in %s is versioned by tags like %s%s (tags like %s belong to a module at the repository root)",
						env.TagPrefix, strings.TrimSuffix(env.TagPrefix, "/"), env.TagPrefix, plain[len(plain)-1].Name, plain[len(plain)-1].Name)
				}
			}
			return nil // first release
		}
		last := cands[len(cands)-1]
		env.Base, env.BaseVersion = last.Name, last.Version
		env.tags = upTo(tags, last.Version)
		return nil
	}
	commit, err := env.repo.ResolveCommit(ctx, base)
	if err != nil {
		return report.OptionErrorf("Base", "%s: %v", base, err)
	}
	env.Base = base
	name := strings.TrimPrefix(base, "refs/tags/")
	if v, ok := gitx.ParseRelease(strings.TrimPrefix(name, env.TagPrefix)); ok && strings.HasPrefix(name, env.TagPrefix) {
		if !env.majorAllowed(v) && !env.previousMajor(v) {
			// Fine for the gates that look at the application; the api
			// gate refuses it when it runs.
			env.baseErr = report.OptionErrorf("Base", "%s: a v%d tag is not a release of this module's path (its major version is %s); pick a tag of this major, or of the one before it", base, v.Major(), env.majorName())
			env.Base = ""
			return nil
		}
		env.BaseVersion = v
	}
	tags, err := env.releaseTags(ctx, commit)
	if err != nil {
		return err
	}
	if env.BaseVersion != nil {
		tags = upTo(tags, env.BaseVersion)
	} else if cands := env.baseCandidates(tags); len(cands) > 0 {
		// A branch or commit as base (a pull request's target): the
		// version policy is that of the newest release it contains.
		last := cands[len(cands)-1]
		env.BaseVersion = last.Version
		env.BaseNote = fmt.Sprintf("base %s is not a release tag: version policy and next version follow %s, the newest release it contains", base, last.Name)
	}
	env.tags = tags
	return nil
}

func (env *Env) majorName() string {
	if env.pathMajor >= 2 {
		return fmt.Sprintf("v%d", env.pathMajor)
	}
	return "v0 or v1"
}

// upTo keeps the tags not above v.
func upTo(tags []gitx.Tag, v *semver.Version) []gitx.Tag {
	var out []gitx.Tag
	for _, t := range tags {
		if !t.Version.GreaterThan(v) {
			out = append(out, t)
		}
	}
	return out
}

// Gate is one entry of the pipeline.
type Gate struct {
	Name string
	// Applies says whether the repository has what the gate checks; when it
	// does not, the reason is reported as a skip.
	Applies func(ctx context.Context, env *Env) (bool, string)
	// Run runs the gate. It may return a version decision.
	Run func(ctx context.Context, env *Env) (*report.Check, *report.Version, error)
}

// Gates is the ordered list of gates relcheck knows.
func Gates() []Gate {
	return []Gate{apiGate(), migrationsGate(), perfGate()}
}

// GateNames lists the names of the known gates.
func GateNames() []string {
	var n []string
	for _, g := range Gates() {
		n = append(n, g.Name)
	}
	return n
}

// noModule says that dir has no go.mod, and where modules are below it.
func noModule(dir string) string {
	var found []string
	for _, pattern := range []string{"*/go.mod", "*/*/go.mod"} {
		ms, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, m := range ms {
			if rel, err := filepath.Rel(dir, filepath.Dir(m)); err == nil && !strings.HasPrefix(filepath.Base(rel), ".") {
				found = append(found, filepath.ToSlash(rel))
			}
		}
	}
	if len(found) > 0 {
		if len(found) > 3 {
			found = append(found[:3], "…")
		}
		return fmt.Sprintf("no go.mod here: not a Go module (a module is in %s: pass --repo %s)", strings.Join(found, ", "), found[0])
	}
	return "no go.mod: not a Go module"
}

func apiGate() Gate {
	return Gate{
		Name: "api",
		Applies: func(ctx context.Context, env *Env) (bool, string) {
			if _, err := os.Stat(filepath.Join(env.Dir, "go.mod")); err != nil {
				return false, noModule(env.Dir)
			}
			// An application (only main and internal packages) has no
			// exported Go API to check. A listing that fails, or patterns
			// that match nothing, are for the gate itself to report.
			if pub, err := apicompat.PublicPackages(ctx, env.Dir, env.Config.API.Packages); err == nil && len(pub) == 0 {
				return false, "no exported Go API: only main and internal packages"
			}
			return true, ""
		},
		Run: func(ctx context.Context, env *Env) (*report.Check, *report.Version, error) {
			if env.baseErr != nil {
				return nil, nil, env.baseErr
			}
			var tagged *apicompat.Release
			if env.tagged != nil {
				tagged = &releases(*env.tagged)[0]
			}
			res, err := apicompat.Check(ctx, apicompat.Options{
				Root: env.Root, ModDir: env.Dir,
				Base: env.Base, BaseVersion: env.BaseVersion, Tags: releases(env.tags...),
				Config: env.Config.API, ConfigFile: env.ConfigFile, Now: env.Now,
				Tagged: tagged,
			})
			var pe *apicompat.PatternError
			if errors.As(err, &pe) {
				return nil, nil, report.Inputf("%s: api.packages: %v; fix the patterns (they are relative to %s)", env.ConfigFile, err, env.Display)
			}
			if err != nil {
				return nil, nil, err
			}
			if env.BaseNote != "" {
				res.Version.Reasons = append(res.Version.Reasons, env.BaseNote)
			}
			return res.Check, &res.Version, nil
		},
	}
}

func migrationsGate() Gate {
	return Gate{
		Name: "migrations",
		Applies: func(ctx context.Context, env *Env) (bool, string) {
			dir := filepath.Join(env.Dir, env.Config.Migrations.Dir)
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				return false, fmt.Sprintf("no %s directory", env.Config.Migrations.Dir)
			}
			return true, ""
		},
		Run: func(ctx context.Context, env *Env) (*report.Check, *report.Version, error) {
			var baseVersion, next *semver.Version
			if v, ok := gitx.ParseRelease(strings.TrimPrefix(path.Base(env.ReleaseBase), env.TagPrefix)); ok {
				baseVersion = v
			}
			if env.next != "" {
				next, _ = semver.NewVersion(env.next)
			}
			chk, err := migrations.Check(ctx, migrations.Options{
				Root: env.Root, Dir: env.Dir, Base: env.ReleaseBase, ConfigFile: env.ConfigFile,
				Next: next, BaseVersion: baseVersion, Now: env.Now,
				Config: env.Config.Migrations, SLO: env.Config.SLO, BaseConfig: env.baseMigrationsConfig(ctx),
				NewEngine: func(ctx context.Context, dialect string) (migrations.Engine, error) {
					return migrations.OpenEngine(ctx, dialect, env.Config.Migrations.DatabaseURL)
				},
				SeedRows:  3,
				Progress:  env.Progress,
				FilesOnly: env.filesOnly,
			})
			var ne *migrations.NameError
			if errors.As(err, &ne) {
				return nil, nil, &report.InputError{Err: ne}
			}
			var ue *migrations.DatabaseURLError
			if errors.As(err, &ue) {
				return nil, nil, report.OptionErrorf("DatabaseURL", "or migrations.databaseURL: %w", ue)
			}
			return chk, nil, err
		},
	}
}

func perfGate() Gate {
	return Gate{
		Name: "perf",
		Applies: func(ctx context.Context, env *Env) (bool, string) {
			if _, err := os.Stat(filepath.Join(env.Dir, "go.mod")); err != nil {
				return false, noModule(env.Dir)
			}
			if len(env.Config.Perf.Scenarios) == 0 && !perf.HasBenchmarks(env.Dir) {
				return false, "no benchmarks (func BenchmarkXxx(b *testing.B) in _test.go files) and no perf.scenarios"
			}
			return true, ""
		},
		Run: func(ctx context.Context, env *Env) (*report.Check, *report.Version, error) {
			scenarios, err := perf.ParseScenarios(env.ConfigFile, env.Config.Perf.Scenarios)
			if err != nil {
				return nil, nil, &report.InputError{Err: err}
			}
			chk, err := perf.Check(ctx, perf.Options{
				Root: env.Root, Dir: env.Dir, Base: env.ReleaseBase, Head: env.Head,
				Benchmarks: env.Config.Perf.Benchmarks, Budget: env.PerfBudget, Save: env.PerfSave, History: env.PerfHistory,
				Progress: env.PerfProgress, Scenarios: scenarios, ConfigFile: env.ConfigFile,
			})
			return chk, nil, err
		},
	}
}

// baseMigrationsConfig reads the migrations section of relcheck.yaml as it
// was at the base: its deprecated list is what allows a drop now.
func (env *Env) baseMigrationsConfig(ctx context.Context) *migrations.Config {
	if env.ReleaseBase == "" {
		return nil
	}
	rel, err := filepath.Rel(env.Root, filepath.Join(env.Dir, ConfigFileName))
	if err != nil {
		return nil
	}
	data, err := env.repo.ReadFile(ctx, env.ReleaseBase, filepath.ToSlash(rel))
	if err != nil {
		return nil
	}
	cfg, err := parseConfig(ConfigFileName, data, false)
	if err != nil {
		return nil
	}
	return &cfg.Migrations
}

// Progress receives a line per gate started; nil is allowed.
type Progress func(format string, args ...any)

// Run runs the named gates (all that apply when names is empty).
func Run(ctx context.Context, env *Env, names []string, progress Progress) (*report.Report, error) {
	all := Gates()
	if len(names) == 0 {
		return run(ctx, env, all, false, progress)
	}
	var selected []Gate
	for _, n := range names {
		found := false
		for _, g := range all {
			if g.Name == n {
				selected = append(selected, g)
				found = true
			}
		}
		if !found {
			return nil, inputErrorf("unknown gate %q: known gates are %s", n, strings.Join(GateNames(), ", "))
		}
	}
	return run(ctx, env, selected, true, progress)
}

// RunVersion runs only what decides the next version, in seconds: the api
// gate, and the migrations gate on the files alone (for a project without
// an exported Go API, new migrations make a minor release). No database
// is started and perf does not run, so a version from here says nothing
// about whether the release passes those: Run does.
func RunVersion(ctx context.Context, env *Env, progress Progress) (*report.Report, error) {
	env.filesOnly = true
	defer func() { env.filesOnly = false }()
	return run(ctx, env, []Gate{apiGate(), migrationsGate()}, false, progress)
}

// run runs the selected gates; named says the user chose them, so one that
// does not apply is an error rather than skipped.
func run(ctx context.Context, env *Env, selected []Gate, named bool, progress Progress) (*report.Report, error) {
	if env.Progress == nil {
		env.Progress = progress
	}
	rep := &report.Report{Repo: displayRepo(env), Module: modulePath(env.Dir), Base: env.ReleaseBase, Head: env.Head}
	for _, g := range selected {
		if ok, why := g.Applies(ctx, env); !ok {
			if named {
				return nil, inputErrorf("gate %s does not apply here: %s", g.Name, why)
			}
			rep.Checks = append(rep.Checks, &report.Check{Name: g.Name, Status: report.StatusSkip, Summary: why, Findings: []report.Finding{}})
			continue
		}
		if progress != nil {
			progress("running %s gate", g.Name)
		}
		start := time.Now()
		chk, ver, err := g.Run(ctx, env)
		if err != nil {
			var ie *report.InputError
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.As(err, &ie) {
				return nil, err
			}
			chk = &report.Check{Name: g.Name, Status: report.StatusError, Summary: err.Error(), Findings: []report.Finding{}}
		}
		if chk.DurationMs == 0 {
			chk.DurationMs = time.Since(start).Milliseconds()
		}
		rep.Checks = append(rep.Checks, chk)
		if ver != nil {
			rep.Version = ver
			env.next = ver.Next
		}
		if g.Name == "api" {
			// The report's base is the api gate's when it ran; the other
			// gates say so when theirs differs.
			rep.Base = env.Base
		}
	}
	if rep.Version == nil && apiSkipped(rep) {
		rep.Version = applicationVersion(env, rep)
	}
	if rep.Base != env.ReleaseBase {
		for _, c := range rep.Checks {
			if c.Name != "api" && c.Status != report.StatusSkip {
				c.Notes = append(c.Notes, fmt.Sprintf("compared with %s, the latest release tag; the api gate compares with %s, the latest release of the module path's major version", orFirstRelease(env.ReleaseBase), orFirstRelease(rep.Base)))
			}
		}
	}
	if !named {
		ran := false
		var why []string
		for _, c := range rep.Checks {
			if c.Status != report.StatusSkip {
				ran = true
			}
			why = append(why, c.Name+": "+c.Summary)
		}
		if !ran {
			return nil, &report.InputError{Option: "Dir", Inline: true, Err: fmt.Errorf("nothing to check in %s (%s): point Dir (the Action's working-directory) at the project", displayRepo(env), strings.Join(why, "; "))}
		}
	}
	rep.Settle()
	return rep, nil
}

// apiSkipped reports whether the api gate was skipped: the project has no
// exported Go API (an application), or no go.mod.
func apiSkipped(rep *report.Report) bool {
	for _, c := range rep.Checks {
		if c.Name == "api" {
			return c.Status == report.StatusSkip
		}
	}
	return false
}

// applicationVersion is the next version of a project without an exported
// Go API, from its release base: a minor release when its migrations change
// the schema (new functionality for its users), a patch release otherwise.
// A major release is the maintainers' decision (--version).
func applicationVersion(env *Env, rep *report.Report) *report.Version {
	if env.ReleaseBase == "" {
		if env.releaseTag != "" {
			return &report.Version{Bump: "initial", Next: strings.TrimPrefix(env.releaseTag, env.TagPrefix), Reasons: []string{"HEAD is the release commit of " + env.releaseTag + ", the first release"}}
		}
		return &report.Version{Bump: "initial", Next: "v0.1.0", Reasons: []string{"no release tag yet: this is the first release"}}
	}
	bv, ok := gitx.ParseRelease(strings.TrimPrefix(env.ReleaseBase, env.TagPrefix))
	if !ok {
		return nil
	}
	v := &report.Version{Base: env.ReleaseBase, Bump: "patch", Reasons: []string{"no exported Go API: the version follows the application's changes"}}
	for _, c := range rep.Checks {
		if c.Name == "migrations" && c.Status != report.StatusSkip {
			if n, _ := c.Metrics["newMigrations"].(int); n > 0 {
				v.Bump = "minor"
				v.Reasons = append(v.Reasons, fmt.Sprintf("%d new migration(s) change the schema", n))
			}
		}
	}
	next := bv.IncPatch()
	if v.Bump == "minor" {
		next = bv.IncMinor()
	}
	v.Next = "v" + next.String()
	if env.releaseTag != "" {
		// The release exists: its tag is the version.
		v.Next = strings.TrimPrefix(env.releaseTag, env.TagPrefix)
		v.Reasons = append(v.Reasons, "HEAD is the release commit of "+env.releaseTag)
	}
	return v
}

func orFirstRelease(base string) string {
	if base == "" {
		return "nothing (a first release)"
	}
	return base
}

// modulePath is the module path of dir's go.mod, or "".
func modulePath(dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return ""
	}
	return modfile.ModulePath(data)
}

func displayRepo(env *Env) string {
	if env.Display != "" {
		return env.Display
	}
	return env.Dir
}

// Summaries is one line naming each check's status and summary.
func Summaries(rep *report.Report) string {
	var parts []string
	for _, c := range rep.Checks {
		parts = append(parts, fmt.Sprintf("%s %s: %s", c.Name, c.Status, c.Summary))
	}
	return strings.Join(parts, "; ")
}

// releases are the api gate's view of release tags.
func releases(tags ...gitx.Tag) []apicompat.Release {
	out := make([]apicompat.Release, len(tags))
	for i, t := range tags {
		out[i] = apicompat.Release(t)
	}
	return out
}
