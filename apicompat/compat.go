package apicompat

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relcheck/relcheck/internal/gitx"
	"github.com/relcheck/relcheck/report"
)

// The previous release's tests against the head (api.compatTests): the
// base release's external test packages (package x_test) and their
// Examples are built against the head's packages and run with -count=1. A
// test that compiled and passed at the base and fails to compile or fails
// at head is a behaviour change the signatures cannot show
// (api/behaviour-changed). Internal tests are skipped: they see unexported
// code, which may change freely; a side's internal test files stay in its
// build only for the hooks they export to the external tests
// (export_test.go), and -run selects the external tests' functions. Both
// sides run at once, each bounded by
// api.compatTimeout; the outcome is cached by the pair of commits when the
// working tree is clean.

// compatOutcome is one top-level test's result on one side.
type compatOutcome struct {
	Pass bool `json:"pass"`
	Skip bool `json:"skip,omitempty"`
	// Output is the test's output, kept for failures.
	Output string `json:"output,omitempty"`
}

// compatRun is one side's run: the tests by package (module-relative)
// and name, and the packages whose tests did not build, with why.
type compatRun struct {
	Tests       map[string]map[string]*compatOutcome `json:"tests"`
	BuildFailed map[string]string                    `json:"buildFailed,omitempty"`
	// Err is why the run gave no results at all (a timeout).
	Err string `json:"error,omitempty"`
}

// compatPkg is a package whose base release has external tests.
type compatPkg struct {
	rel, path string
	// files are the base's external test files; head the head's, which
	// they replace there.
	files, head []string
	// funcs locates each test function of files: file and line.
	funcs map[string]report.Location
}

// compatTests runs the base's external tests against the head and turns
// what broke into findings.
func (c *comparison) compatTests(ctx context.Context) {
	if c.pathMoved() {
		c.notes = append(c.notes, fmt.Sprintf("compat tests: not run, the module path moved to %s (a new major version need not pass the old tests)", c.head.Path))
		return
	}
	start := time.Now()
	pkgs, err := c.compatPackages()
	if err != nil {
		c.compatFailed(err)
		return
	}
	if len(pkgs) == 0 {
		c.notes = append(c.notes, fmt.Sprintf("compat tests: %s has no external test package (package x_test) in the public packages; nothing to run", c.opts.Base))
		return
	}
	key := c.compatKey(ctx, pkgs)
	base, head, cached := loadCompatCache(key)
	if !cached {
		timeout := time.Duration(c.opts.Config.CompatTimeout)
		if timeout == 0 {
			timeout = DefaultCompatTimeout
		}
		var wg sync.WaitGroup
		var baseErr, headErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			base, baseErr = runCompat(ctx, c.base, pkgs, false, timeout)
		}()
		go func() {
			defer wg.Done()
			head, headErr = runCompat(ctx, c.head, pkgs, true, timeout)
		}()
		wg.Wait()
		if err := errors.Join(baseErr, headErr); err != nil {
			c.compatFailed(err)
			return
		}
		if base.Err == "" && head.Err == "" {
			saveCompatCache(key, base, head)
		}
	}
	if base.Err != "" || head.Err != "" {
		c.compatFailed(errors.New(strings.TrimSpace(base.Err + " " + head.Err)))
		return
	}
	c.compatFindings(pkgs, base, head, time.Since(start), cached)
}

// compatFailed is a compat run that could not decide: a warning, never a
// silent pass.
func (c *comparison) compatFailed(err error) {
	c.add(&item{f: report.Finding{Rule: RuleBehaviourChanged, Severity: report.SeverityWarning,
		Message: fmt.Sprintf("the tests of %s could not be run against head, so behaviour was not compared: %v", c.opts.Base, err),
		Fix:     "run them by hand (go test in a checkout of the base with the head's packages), or raise api.compatTimeout"}})
}

// compatPackages lists the packages public at both sides whose base has
// external test files.
func (c *comparison) compatPackages() ([]*compatPkg, error) {
	var out []*compatPkg
	for _, rel := range sortedRels(c.base, c.head) {
		bp, hp := c.base.Packages[rel], c.head.Packages[rel]
		if bp == nil || hp == nil {
			continue
		}
		if _, broken := c.head.Broken[rel]; broken {
			continue
		}
		p := &compatPkg{rel: rel, path: hp.Path, funcs: map[string]report.Location{}}
		var err error
		if p.files, err = externalTestFiles(filepath.Join(c.base.Dir, filepath.FromSlash(rel))); err != nil {
			return nil, err
		}
		if len(p.files) == 0 {
			continue
		}
		if p.head, err = externalTestFiles(filepath.Join(c.head.Dir, filepath.FromSlash(rel))); err != nil {
			return nil, err
		}
		fset := token.NewFileSet()
		for _, f := range p.files {
			af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
			if err != nil {
				continue // the go command says why
			}
			file, _ := filepath.Rel(c.base.Root, f)
			for _, d := range af.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && compatTestName.MatchString(fd.Name.Name) {
					p.funcs[fd.Name.Name] = report.Location{File: filepath.ToSlash(file), Line: fset.Position(fd.Pos()).Line}
				}
			}
		}
		if len(p.funcs) > 0 {
			out = append(out, p)
		}
	}
	return out, nil
}

// externalTestFiles lists dir's _test.go files of package x_test.
func externalTestFiles(dir string) ([]string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		f, err := parser.ParseFile(token.NewFileSet(), n, nil, parser.PackageClauseOnly)
		if err == nil && strings.HasSuffix(f.Name.Name, "_test") {
			out = append(out, n)
		}
	}
	return out, nil
}

// runCompat runs the base's external tests of pkgs in module m: at the
// base itself or, atHead, in the head's package directories instead of
// the head's own external tests, through a go build overlay so that no
// file of either tree changes.
func runCompat(ctx context.Context, m *Module, pkgs []*compatPkg, atHead bool, timeout time.Duration) (compatRun, error) {
	replace := map[string]string{}
	var paths, names []string
	for _, p := range pkgs {
		paths = append(paths, p.path)
		for name := range p.funcs {
			names = append(names, name)
		}
		if !atHead {
			continue
		}
		dir := filepath.Join(m.Dir, filepath.FromSlash(p.rel))
		for _, f := range p.head {
			replace[f] = "" // deleted
		}
		for _, f := range p.files {
			replace[filepath.Join(dir, filepath.Base(f))] = f
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	tmp, err := os.MkdirTemp("", "relcheck-compat-")
	if err != nil {
		return compatRun{}, err
	}
	defer os.RemoveAll(tmp)
	overlay := filepath.Join(tmp, "overlay.json")
	data, _ := json.Marshal(map[string]any{"Replace": replace})
	if err := os.WriteFile(overlay, data, 0o644); err != nil {
		return compatRun{}, err
	}
	var extra []string
	if !atHead {
		extra = append(extra, "-mod=mod") // a scratch copy, as when it was loaded
		if _, err := os.Stat(filepath.Join(m.Dir, "vendor", "modules.txt")); err == nil {
			extra = []string{"-mod=vendor"}
		}
	}
	env, _, cleanup, err := moduleEnv(m.Dir, extra)
	if err != nil {
		return compatRun{}, err
	}
	defer cleanup()
	// The go command's own deadline ends the tests; the context's, a
	// little later, also bounds the build.
	cctx, cancel := context.WithTimeout(ctx, timeout+time.Minute)
	defer cancel()
	args := append([]string{"test", "-count=1", "-vet=off", "-json", "-overlay=" + overlay, "-timeout=" + timeout.String(),
		"-run=^(" + strings.Join(names, "|") + ")$"}, paths...)
	cmd := exec.CommandContext(cctx, "go", args...)
	// Build errors as -json events (modules below go 1.24 would get them
	// as text on stderr).
	cmd.Dir, cmd.Env = m.Dir, append(env, "GODEBUG=gotestjsonbuildtext=0")
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return compatRun{}, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return compatRun{}, err
	}
	run := parseTestJSON(stdout, m.Path)
	err = cmd.Wait()
	for rel, why := range run.BuildFailed {
		// Whatever the go command said on stderr is the cause, when the
		// events only say "build failed".
		if !strings.Contains(why, ".go:") && strings.TrimSpace(stderr.String()) != "" {
			run.BuildFailed[rel] = strings.TrimSpace(stderr.String() + "\n" + why)
		}
	}
	if cctx.Err() != nil {
		run.Err = fmt.Sprintf("the run at %s took longer than %s (api.compatTimeout)", side(atHead), timeout)
		return run, nil
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return run, err
	}
	if err != nil && len(run.Tests) == 0 && len(run.BuildFailed) == 0 {
		run.Err = fmt.Sprintf("go test at %s: %s", side(atHead), strings.TrimSpace(stderr.String()))
	}
	return run, nil
}

func side(atHead bool) string {
	if atHead {
		return "head"
	}
	return "the base"
}

// testEvent is a line of go test -json (test2json).
type testEvent struct {
	Action     string
	Package    string
	ImportPath string
	Test       string
	Output     string
}

// parseTestJSON reads go test -json's events into a compatRun; packages
// are made relative to modPath.
func parseTestJSON(r io.Reader, modPath string) compatRun {
	run := compatRun{Tests: map[string]map[string]*compatOutcome{}, BuildFailed: map[string]string{}}
	out := map[string]*strings.Builder{}   // per package and top-level test
	build := map[string]*strings.Builder{} // per package: build and package output
	ran := map[string]bool{}
	buf := func(m map[string]*strings.Builder, k string) *strings.Builder {
		if m[k] == nil {
			m[k] = &strings.Builder{}
		}
		return m[k]
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e testEvent
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		pkg := e.Package
		if pkg == "" {
			pkg = e.ImportPath
		}
		pkg, _, _ = strings.Cut(pkg, " ")      // "p [p.test]"
		pkg = strings.TrimSuffix(pkg, "_test") // the external test package's build
		rel := relPath(modPath, pkg)
		top, _, _ := strings.Cut(e.Test, "/")
		switch {
		case e.Action == "build-output" || (e.Test == "" && e.Action == "output"):
			if b := buf(build, rel); b.Len() < 16<<10 {
				b.WriteString(e.Output)
			}
		case e.Test != "" && e.Action == "output":
			if b := buf(out, rel+"\x00"+top); b.Len() < 16<<10 {
				b.WriteString(e.Output)
			}
		case e.Test != "" && e.Test == top && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip"):
			if run.Tests[rel] == nil {
				run.Tests[rel] = map[string]*compatOutcome{}
			}
			o := &compatOutcome{Pass: e.Action == "pass", Skip: e.Action == "skip"}
			if e.Action == "fail" {
				o.Output = strings.TrimSpace(buf(out, rel+"\x00"+top).String())
			}
			run.Tests[rel][top] = o
			ran[rel] = true
		case e.Test == "" && e.Action == "fail" && !ran[rel]:
			run.BuildFailed[rel] = strings.TrimSpace(buf(build, rel).String())
		}
	}
	return run
}

// compatFindings compares the two runs: every test that passed at the
// base and does not pass at head is a finding.
func (c *comparison) compatFindings(pkgs []*compatPkg, base, head compatRun, took time.Duration, cached bool) {
	passed, failedAtBase, broke := 0, 0, 0
	for _, p := range pkgs {
		var names []string
		for name, o := range base.Tests[p.rel] {
			if _, external := p.funcs[name]; !external {
				continue // an internal test of the same name
			}
			switch {
			case o.Pass:
				names = append(names, name)
			case !o.Skip:
				failedAtBase++
			}
		}
		slices.Sort(names)
		passed += len(names)
		if why, ok := head.BuildFailed[p.rel]; ok && len(names) > 0 {
			broke += len(names)
			loc := p.funcs[names[0]]
			if l := firstCompileError(why, p.files, c.base.Root); l != nil {
				loc = *l
			}
			c.behaviourChanged(p, "", &loc, fmt.Sprintf("the external tests of package %s at %s (%d passed there: %s) do not compile against head:\n%s",
				p.path, c.opts.Base, len(names), strings.Join(names, ", "), trimOutput(why)))
			continue
		}
		for _, name := range names {
			o := head.Tests[p.rel][name]
			if o != nil && (o.Pass || o.Skip) {
				continue
			}
			broke++
			loc := p.funcs[name]
			what := "fails against head"
			output := ""
			if o == nil {
				what = "did not finish against head (an earlier test of the package stopped the run)"
			} else {
				output = ":\n" + trimOutput(o.Output)
			}
			c.behaviourChanged(p, name, &loc, fmt.Sprintf("%s.%s passed at %s and %s%s", p.path, name, c.opts.Base, what, output))
		}
	}
	how := fmt.Sprintf("in %.1f s", took.Seconds())
	if cached {
		how = "(from the cache of this pair of commits)"
	}
	note := fmt.Sprintf("compat tests: %d test(s) and example(s) of %s's external test packages (%d package(s)) that pass there were run against head %s: %d no longer pass", passed, c.opts.Base, len(pkgs), how, broke)
	if failedAtBase > 0 {
		note += fmt.Sprintf("; %d failed at the base already and were not compared", failedAtBase)
	}
	c.notes = append(c.notes, note)
	c.compat = map[string]any{"packages": len(pkgs), "tests": passed, "broken": broke, "cached": cached, "durationMs": took.Milliseconds()}
}

// behaviourChanged adds one api/behaviour-changed finding for test name of
// p (all of p's tests when name is empty).
func (c *comparison) behaviourChanged(p *compatPkg, name string, loc *report.Location, msg string) {
	if loc.File == "" {
		loc = nil
	}
	exp := c.experimental(p.rel)
	it := &item{incompatible: true, experimental: exp, f: report.Finding{Rule: RuleBehaviourChanged, Symbol: p.path + "." + name, Location: loc, Message: msg}}
	if name == "" {
		it.f.Symbol = p.path
	}
	f := &it.f
	next := fmt.Sprintf("%s/v%d", strings.TrimSuffix(c.head.Path, fmt.Sprintf("/v%d", majorOf(c.head.Path))), max(majorOf(c.head.Path), 1)+1)
	switch {
	case exp:
		f.Severity = report.SeverityNote
		f.Message += "\n(experimental package: reported, not enforced)"
	case c.breaksAllowed():
		f.Severity = report.SeverityWarning
		f.Message += "\n(allowed before v1: the next version is a minor bump)"
		f.Fix = "callers that relied on the old behaviour must change; say so in the release notes"
	default:
		f.Severity = report.SeverityError
		f.Fix = fmt.Sprintf("restore the behaviour the test relied on; if the change is intended, release it under a new major version (module path %s), or, if the test relied on something that was never promised, list it in api.compatIgnore with a reason", next)
		if name == "" {
			f.Fix = fmt.Sprintf("restore what the old tests use (the compiler's message says what); if it is gone on purpose, release it under a new major version (module path %s)", next)
		}
	}
	for _, ig := range c.opts.Config.CompatIgnore {
		if name != "" && (ig.Test == name || ig.Test == p.path+"."+name) {
			f.Suppressed = ig.Reason
		}
	}
	c.add(it)
}

// firstCompileError is where the compiler's first complaint about one of
// the base's test files points ("./kit_test.go:17:9: undefined: kit.Add"),
// as the file is in the repository.
func firstCompileError(out string, files []string, root string) *report.Location {
	for _, l := range strings.Split(out, "\n") {
		for _, f := range files {
			name := filepath.Base(f)
			i := strings.Index(l, name+":")
			if i < 0 {
				continue
			}
			line, _, _ := strings.Cut(l[i+len(name)+1:], ":")
			if n, err := strconv.Atoi(line); err == nil {
				file, _ := filepath.Rel(root, f)
				return &report.Location{File: filepath.ToSlash(file), Line: n}
			}
		}
	}
	return nil
}

// trimOutput keeps the last 20 lines of a test's output (without go
// test's "=== RUN" lines), indented.
func trimOutput(s string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if !strings.HasPrefix(l, "=== ") {
			lines = append(lines, l)
		}
	}
	if len(lines) > 20 {
		lines = append([]string{fmt.Sprintf("… (%d lines before)", len(lines)-20)}, lines[len(lines)-20:]...)
	}
	for i, l := range lines {
		lines[i] = "    " + strings.TrimRight(l, " \t")
	}
	return strings.Join(lines, "\n")
}

// compatKey is the cache key of a run: the two commits, the go version
// and the packages; "" (no cache) when the working tree has changes.
func (c *comparison) compatKey(ctx context.Context, pkgs []*compatPkg) string {
	repo := &gitx.Repo{Root: c.opts.Root}
	if !repo.IsClean(ctx, c.opts.ModDir) {
		return ""
	}
	b, err1 := repo.ResolveCommit(ctx, c.opts.Base)
	h, err2 := repo.ResolveCommit(ctx, "HEAD")
	ver, err3 := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err1 != nil || err2 != nil || err3 != nil {
		return ""
	}
	sum := sha256.New()
	fmt.Fprintf(sum, "relcheck compat 1\n%s\n%s\n%s\n%s\n", b, h, strings.TrimSpace(string(ver)), c.opts.ModDir)
	for _, p := range pkgs {
		fmt.Fprintf(sum, "%s\n", p.path)
	}
	return hex.EncodeToString(sum.Sum(nil))
}

func compatCacheFile(key string) string {
	dir, err := os.UserCacheDir()
	if err != nil || key == "" {
		return ""
	}
	return filepath.Join(dir, "relcheck", "compat", key+".json")
}

func loadCompatCache(key string) (base, head compatRun, ok bool) {
	f := compatCacheFile(key)
	if f == "" {
		return base, head, false
	}
	data, err := os.ReadFile(f)
	if err != nil {
		return base, head, false
	}
	var v struct{ Base, Head compatRun }
	if json.Unmarshal(data, &v) != nil || v.Base.Tests == nil || v.Head.Tests == nil {
		return base, head, false
	}
	return v.Base, v.Head, true
}

func saveCompatCache(key string, base, head compatRun) {
	f := compatCacheFile(key)
	if f == "" {
		return
	}
	data, _ := json.Marshal(struct{ Base, Head compatRun }{base, head})
	if os.MkdirAll(filepath.Dir(f), 0o755) != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(f), "run-*.tmp")
	if err != nil {
		return
	}
	_, err = tmp.Write(data)
	if tmp.Close() == nil && err == nil {
		os.Rename(tmp.Name(), f) // a cache: a failed write only costs a rerun
	}
	os.Remove(tmp.Name())
}
