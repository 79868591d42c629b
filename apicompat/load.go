package apicompat

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/tools/go/gcexportdata"
	"golang.org/x/tools/go/packages"
)

// Module is the public API of one Go module at one revision.
type Module struct {
	// Path is the module path from go.mod.
	Path string
	// Dir is the module root on disk.
	Dir string
	// Root is the directory file locations are made relative to (the
	// repository root, or the root of an extracted base tree).
	Root string
	// Packages by path relative to the module ("" for the root package,
	// "sub/pkg" otherwise).
	Packages map[string]*Package
	// Broken lists packages that could not be loaded or type-checked, with why.
	Broken map[string]string
	// Synthesized is set when the tree had no go.mod and was loaded with
	// another one (the head's).
	Synthesized bool
	// Notes say how the module was loaded when it differs from a plain
	// go build (replace targets that do not exist).
	Notes []string
}

// Package is one public package of a module.
type Package struct {
	Path  string // import path
	Rel   string // path relative to the module path
	Types *types.Package
	Fset  *token.FileSet
	Files []*ast.File
	docs  *docIndex

	features []Feature // computed once by Features
}

// tidyGoError keeps what the go command said from a go/packages error
// ("err: exit status 1: stderr: go: ...").
func tidyGoError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "stderr: "); i >= 0 {
		msg = msg[i+len("stderr: "):]
	}
	return strings.TrimSpace(msg)
}

// invalidFeatures lists API lines of p that mention an invalid type.
func invalidFeatures(p *Package) []string {
	var out []string
	for _, f := range p.Features() {
		if strings.Contains(f.Line, "invalid type") {
			out = append(out, strings.TrimPrefix(f.Line, "pkg "+p.Path+", "))
			if len(out) == 3 {
				break
			}
		}
	}
	return out
}

// PatternError says that package patterns (api.packages) match nothing.
type PatternError struct {
	Dir      string
	Patterns []string
	Msgs     []string
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("package patterns %q match no package in %s: %s", e.Patterns, e.Dir, strings.Join(e.Msgs, "; "))
}

// ReadModulePath returns the module path declared in dir/go.mod.
func ReadModulePath(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	p := modfile.ModulePath(data)
	if p == "" {
		return "", fmt.Errorf("%s: no module directive", filepath.Join(dir, "go.mod"))
	}
	return p, nil
}

// relPath returns pkgPath relative to modPath ("" for the module root).
func relPath(modPath, pkgPath string) string {
	if pkgPath == modPath {
		return ""
	}
	return strings.TrimPrefix(pkgPath, modPath+"/")
}

// isInternal reports whether rel is an internal package (or below one).
func isInternal(rel string) bool {
	for _, el := range strings.Split(rel, "/") {
		if el == "internal" {
			return true
		}
	}
	return false
}

// LoadModule type-checks the packages of the module in dir that match
// patterns, keeping the public ones: not internal, not main, not in testdata
// or nested modules (go list already leaves those out of "./..."). It never
// changes the module's go.mod or go.sum: that is only allowed for scratch
// copies (see loadBase).
func LoadModule(ctx context.Context, dir, root string, patterns []string) (*Module, error) {
	return loadModule(ctx, dir, root, patterns, nil)
}

func loadModule(ctx context.Context, dir, root string, patterns []string, extraEnv []string) (*Module, error) {
	modPath, err := ReadModulePath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading go.mod: %w", err)
	}
	m := &Module{Path: modPath, Dir: dir, Root: root, Packages: map[string]*Package{}, Broken: map[string]string{}}
	env, dropped, cleanup, err := moduleEnv(dir, extraEnv)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	for _, d := range dropped {
		m.Notes = append(m.Notes, fmt.Sprintf("go.mod: %s: the directory does not exist here, so %s was loaded at its required version from the module cache or proxy instead", d.directive, d.module))
	}

	// The package graph, without building anything.
	graph, err := packages.Load(&packages.Config{
		Context: ctx, Dir: dir, Env: env,
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedImports | packages.NeedDeps | packages.NeedModule,
	}, patterns...)
	if err != nil {
		return nil, fmt.Errorf("listing packages: %s%s", tidyGoError(err), replaceHint(dropped))
	}
	l := &loader{fset: token.NewFileSet(), modPath: modPath, local: map[string]*localPkg{}, exports: map[string]string{}, depErrs: map[string]string{}, imported: map[string]*types.Package{}}
	// A pattern that matches nothing comes back as a package without files
	// and with an error: that is a configuration mistake, not a broken package.
	var roots []*packages.Package
	var unmatched []string
	for _, p := range graph {
		if len(p.GoFiles) == 0 && len(p.Errors) > 0 && !l.isLocal(p) {
			unmatched = append(unmatched, p.Errors[0].Msg)
			continue
		}
		roots = append(roots, p)
	}
	if len(unmatched) > 0 {
		return nil, &PatternError{Dir: dir, Patterns: patterns, Msgs: unmatched}
	}
	// Packages checked from source: the module's own; any dependency that
	// imports the module back (go-control-plane imports grpc), because its
	// export data would refer to another copy of the module's types and
	// building it would compile the module; and dependencies whose export
	// data is not in the build cache, since type-checking from source is
	// several times cheaper than compiling. Everything else, usually nearly
	// all dependencies, comes from export data in the build cache.
	stale := staleSet(ctx, dir, env, patterns)
	reachesOwn := map[string]bool{}
	var visit func(p *packages.Package) bool
	visit = func(p *packages.Package) bool {
		if r, ok := reachesOwn[p.ID]; ok {
			return r
		}
		reachesOwn[p.ID] = false // no cycles in a package graph; guards anyway
		r := l.isLocal(p) || stale[p.ID]
		for _, imp := range p.Imports {
			if visit(imp) {
				r = true
			}
		}
		reachesOwn[p.ID] = r
		if r {
			l.local[p.ID] = &localPkg{pkg: p, done: make(chan struct{})}
		}
		return r
	}
	for _, p := range graph {
		visit(p)
	}
	var external []string
	seenExt := map[string]bool{}
	for _, lp := range l.local {
		for _, imp := range lp.pkg.Imports {
			if dep, ok := l.local[imp.ID]; ok {
				lp.reach = append(lp.reach, dep)
			} else if !seenExt[imp.PkgPath] && imp.PkgPath != "unsafe" && imp.PkgPath != "C" {
				seenExt[imp.PkgPath] = true
				external = append(external, imp.PkgPath)
			}
		}
	}

	// Export data for the other dependencies imported directly: builds that
	// live in the build cache, shared with the user's own builds and by both
	// sides of a comparison. Nothing of the module itself is ever compiled.
	if len(external) > 0 {
		sort.Strings(external)
		ext, err := packages.Load(&packages.Config{
			Context: ctx, Dir: dir, Env: env,
			Mode: packages.NeedName | packages.NeedExportFile,
		}, external...)
		if err != nil {
			return nil, fmt.Errorf("building dependencies of %s: %s%s", modPath, tidyGoError(err), replaceHint(dropped))
		}
		for _, p := range ext {
			l.exports[p.PkgPath] = p.ExportFile
			if p.ExportFile == "" && len(p.Errors) > 0 {
				l.depErrs[p.PkgPath] = p.Errors[0].Msg
			}
		}
	}

	// Type-check the module's packages from source, in parallel, each after
	// the local packages it imports.
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for _, lp := range l.local {
		wg.Add(1)
		go func(lp *localPkg) {
			defer wg.Done()
			l.check(ctx, lp, sem)
		}(lp)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	for _, p := range roots {
		if !l.isLocal(p) {
			continue
		}
		rel := relPath(modPath, p.PkgPath)
		if isInternal(rel) || p.Name == "main" {
			continue
		}
		lp := l.local[p.ID]
		errs := lp.errs
		if lp.types != nil && !lp.syntaxErr {
			pkg := &Package{Path: p.PkgPath, Rel: rel, Types: lp.types, Fset: l.fset, Files: lp.files}
			m.Packages[rel] = pkg
			if inv := invalidFeatures(pkg); len(inv) > 0 && len(errs) == 0 {
				errs = append(errs, fmt.Sprintf("its API refers to types that could not be resolved (cgo, or a missing dependency): %s", strings.Join(inv, "; ")))
			}
		}
		if len(errs) > 0 || lp.types == nil {
			if len(errs) == 0 {
				errs = []string{"no type information"}
			}
			if len(errs) > 3 {
				errs = append(errs[:3:3], fmt.Sprintf("and %d more", len(errs)-3))
			}
			m.Broken[rel] = strings.Join(errs, "; ")
		}
	}
	if len(m.Packages) == 0 && len(m.Broken) == 0 {
		for _, p := range roots {
			for _, e := range p.Errors {
				return nil, fmt.Errorf("loading packages in %s: %v", dir, e)
			}
		}
		return nil, &PatternError{Dir: dir, Patterns: patterns, Msgs: []string{"no public package of module " + modPath + " among them"}}
	}
	// A package that does not build for want of a replaced module says
	// which directive is at fault.
	if hint := replaceHint(dropped); hint != "" {
		for rel, why := range m.Broken {
			if strings.Contains(why, "could not import") || strings.Contains(why, "cannot find") || strings.Contains(why, "no required module") {
				m.Broken[rel] = why + hint
			}
		}
	}
	return m, nil
}

// staleSet lists the packages (by import path) among patterns and their
// dependencies whose build is not cached. On any error it returns nothing,
// and everything is taken from export data.
func staleSet(ctx context.Context, dir string, env []string, patterns []string) map[string]bool {
	args := append([]string{"list", "-e", "-deps", "-f", "{{if .Stale}}{{.ImportPath}}{{end}}", "--"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.Output()
	if err != nil {
		return nil
	}
	stale := map[string]bool{}
	for _, l := range strings.Fields(string(out)) {
		stale[l] = true
	}
	return stale
}

// goEnv returns the environment for the go command: workspaces off, and
// extra flags added to GOFLAGS. The user's flags (build tags, -mod=vendor)
// are kept, so export data of dependencies comes from the same build cache
// entries as the user's own builds.
// moduleEnv is the go command's environment for the module in dir with
// extraFlags. A module copied out of a monorepo keeps replace directives
// whose directories are not there: those modules are loaded at their
// required versions instead, through a copy of go.mod without the
// directives (dropped), which cleanup removes.
func moduleEnv(dir string, extraFlags []string) (env []string, dropped []droppedReplace, cleanup func(), err error) {
	alt, dropped, err := withoutMissingReplaces(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	cleanup = func() {}
	if alt != "" {
		cleanup = func() { os.RemoveAll(filepath.Dir(alt)) }
		extraFlags = append(slices.Clip(extraFlags), "-modfile="+alt, "-mod=mod")
	}
	return goEnv(os.Environ(), extraFlags...), dropped, cleanup, nil
}

func goEnv(environ []string, extraFlags ...string) []string {
	flags := ""
	out := make([]string, 0, len(environ)+2)
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			flags = v
			continue
		}
		out = append(out, kv)
	}
	for _, f := range extraFlags {
		if !strings.Contains(" "+flags+" ", " "+f+" ") {
			flags = strings.TrimSpace(flags + " " + f)
		}
	}
	out = append(out, "GOWORK=off")
	if flags != "" {
		out = append(out, "GOFLAGS="+flags)
	}
	return out
}

// loader type-checks a module's packages from source against export data of
// their external dependencies.
type loader struct {
	fset    *token.FileSet
	modPath string
	local   map[string]*localPkg // by package ID

	exportMu sync.Mutex
	exports  map[string]string         // package path → export data file
	depErrs  map[string]string         // package path → why it has no export data
	imported map[string]*types.Package // shared view for gcexportdata
}

type localPkg struct {
	pkg *packages.Package
	// reach lists the packages checked from source that this one imports.
	reach []*localPkg
	once  sync.Once
	done  chan struct{}
	types *types.Package
	files []*ast.File
	errs  []string
	// syntaxErr is set when a file did not parse: the package's API is
	// then unknown, not smaller.
	syntaxErr bool
}

func (l *loader) isLocal(p *packages.Package) bool {
	if p.Module != nil {
		return p.Module.Path == l.modPath && p.Module.Main
	}
	return p.PkgPath == l.modPath || strings.HasPrefix(p.PkgPath, l.modPath+"/")
}

// check type-checks lp once; concurrent callers wait for the result.
func (l *loader) check(ctx context.Context, lp *localPkg, sem chan struct{}) {
	lp.once.Do(func() {
		defer close(lp.done)
		// Local dependencies first (a DAG: go list rejects import cycles).
		for _, dep := range lp.reach {
			l.check(ctx, dep, sem)
		}
		if ctx.Err() != nil {
			return
		}
		sem <- struct{}{}
		defer func() { <-sem }()
		own := l.isLocal(lp.pkg)
		for _, name := range lp.pkg.GoFiles {
			mode := parser.SkipObjectResolution
			if own {
				mode |= parser.ParseComments // doc comments: deprecations, positions
			}
			f, err := parser.ParseFile(l.fset, name, nil, mode)
			if err != nil {
				lp.errs = append(lp.errs, err.Error())
				// Declarations after a syntax error are lost: the API
				// cannot be told from what is left.
				lp.syntaxErr = true
			}
			if f != nil {
				lp.files = append(lp.files, f)
			}
		}
		if !lp.syntaxErr {
			// go list's own errors repeat syntax errors; keep the others.
			for _, e := range lp.pkg.Errors {
				lp.errs = append(lp.errs, e.Error())
			}
		}
		conf := types.Config{
			// A dependency's API is all that matters; its function bodies
			// only cost time and memory.
			IgnoreFuncBodies: !own,
			Importer:         importerFunc(func(path string) (*types.Package, error) { return l.importFor(lp, path) }),
			FakeImportC:      true,
			Error: func(err error) {
				if len(lp.errs) < 10 {
					lp.errs = append(lp.errs, err.Error())
				}
			},
			GoVersion: goVersion(lp.pkg),
		}
		tp, _ := conf.Check(lp.pkg.PkgPath, l.fset, lp.files, nil)
		lp.types = tp
		if !own {
			lp.files = nil // only the module's own syntax is needed later
		}
	})
	<-lp.done
}

func goVersion(p *packages.Package) string {
	if p.Module != nil && p.Module.GoVersion != "" {
		return "go" + p.Module.GoVersion
	}
	return ""
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// importFor resolves an import of lp: a local package from source, anything
// else from export data.
func (l *loader) importFor(lp *localPkg, path string) (*types.Package, error) {
	if path == "unsafe" {
		return types.Unsafe, nil
	}
	imp, ok := lp.pkg.Imports[path]
	if !ok {
		return nil, fmt.Errorf("package %s not found among the imports of %s", path, lp.pkg.PkgPath)
	}
	if dep, ok := l.local[imp.ID]; ok {
		<-dep.done
		if dep.types == nil {
			return nil, fmt.Errorf("package %s could not be type-checked", path)
		}
		return dep.types, nil
	}
	l.exportMu.Lock()
	defer l.exportMu.Unlock()
	if p := l.imported[imp.PkgPath]; p != nil && p.Complete() {
		return p, nil
	}
	file := l.exports[imp.PkgPath]
	if file == "" {
		if why := l.depErrs[imp.PkgPath]; why != "" {
			return nil, fmt.Errorf("dependency %s: %s", imp.PkgPath, why)
		}
		for _, e := range imp.Errors {
			return nil, fmt.Errorf("dependency %s: %s", imp.PkgPath, e.Msg)
		}
		return nil, fmt.Errorf("no export data for %s (does it build?)", imp.PkgPath)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := gcexportdata.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("reading export data of %s: %w", imp.PkgPath, err)
	}
	return gcexportdata.Read(r, l.fset, l.imported, imp.PkgPath)
}

// sortedRels returns the relative package paths of a and b, sorted.
func sortedRels(a, b *Module) []string {
	seen := map[string]bool{}
	var rels []string
	for _, m := range []*Module{a, b} {
		if m == nil {
			continue
		}
		for r := range m.Packages {
			if !seen[r] {
				seen[r] = true
				rels = append(rels, r)
			}
		}
		for r := range m.Broken {
			if !seen[r] {
				seen[r] = true
				rels = append(rels, r)
			}
		}
	}
	sort.Strings(rels)
	return rels
}

// majorOf returns the major version a module path implies: N for a /vN
// suffix, otherwise 0 (meaning v0 or v1).
func majorOf(modPath string) int {
	_, pathMajor, ok := module.SplitPathVersion(modPath)
	if !ok || pathMajor == "" {
		return 0
	}
	var n int
	fmt.Sscanf(strings.TrimLeft(pathMajor, "/."), "v%d", &n)
	return n
}

// droppedReplace is a replace directive whose directory does not exist.
type droppedReplace struct{ directive, module string }

// withoutMissingReplaces writes a copy of dir's go.mod (and go.sum) without
// the replace directives whose target directories do not exist, for
// -modfile; "" when there are none.
func withoutMissingReplaces(dir string) (string, []droppedReplace, error) {
	gomod := filepath.Join(dir, "go.mod")
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", nil, err
	}
	f, err := modfile.Parse(gomod, data, nil)
	if err != nil {
		return "", nil, fmt.Errorf("parsing go.mod: %w", err)
	}
	var dropped []droppedReplace
	for _, r := range slices.Clone(f.Replace) {
		if r.New.Version != "" || !modfile.IsDirectoryPath(r.New.Path) {
			continue
		}
		target := r.New.Path
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		if st, err := os.Stat(target); err == nil && st.IsDir() {
			continue
		}
		required := r.Old.Path
		for _, req := range f.Require {
			if req.Mod.Path == r.Old.Path {
				required += " " + req.Mod.Version
			}
		}
		old := r.Old.Path
		if r.Old.Version != "" {
			old += " " + r.Old.Version
		}
		dropped = append(dropped, droppedReplace{directive: "replace " + old + " => " + r.New.Path, module: required})
		if err := f.DropReplace(r.Old.Path, r.Old.Version); err != nil {
			return "", nil, err
		}
	}
	if len(dropped) == 0 {
		return "", nil, nil
	}
	f.Cleanup()
	out, err := f.Format()
	if err != nil {
		return "", nil, err
	}
	tmp, err := os.MkdirTemp("", "relcheck-modfile-")
	if err != nil {
		return "", nil, err
	}
	alt := filepath.Join(tmp, "go.mod")
	if err := os.WriteFile(alt, out, 0o644); err != nil {
		os.RemoveAll(tmp)
		return "", nil, err
	}
	if sum, err := os.ReadFile(filepath.Join(dir, "go.sum")); err == nil {
		if err := os.WriteFile(filepath.Join(tmp, "go.sum"), sum, 0o644); err != nil {
			os.RemoveAll(tmp)
			return "", nil, err
		}
	}
	return alt, dropped, nil
}

// replaceHint names the replace directives that were dropped, for an
// error of loading without them.
func replaceHint(dropped []droppedReplace) string {
	if len(dropped) == 0 {
		return ""
	}
	var ds []string
	for _, d := range dropped {
		ds = append(ds, d.directive)
	}
	return fmt.Sprintf(" (go.mod's %s points at a directory that does not exist; relcheck tried the required version from the module cache or proxy instead: restore the directory, or require a published version)", strings.Join(ds, ", "))
}

// fixReplaces rewrites relative replace directives in an extracted base
// tree's go.mod so they still resolve: paths that stay inside the extracted
// tree are kept, others are made absolute against the head module directory.
func fixReplaces(baseModDir, baseRoot, headModDir string) error {
	gomod := filepath.Join(baseModDir, "go.mod")
	data, err := os.ReadFile(gomod)
	if err != nil {
		return err
	}
	f, err := modfile.Parse(gomod, data, nil)
	if err != nil {
		return fmt.Errorf("parsing base go.mod: %w", err)
	}
	changed := false
	for _, r := range f.Replace {
		if r.New.Version != "" || !modfile.IsDirectoryPath(r.New.Path) || filepath.IsAbs(r.New.Path) {
			continue
		}
		inTree := filepath.Join(baseModDir, r.New.Path)
		if rel, err := filepath.Rel(baseRoot, inTree); err == nil && !strings.HasPrefix(rel, "..") {
			if _, err := os.Stat(inTree); err == nil {
				continue
			}
		}
		abs := filepath.Join(headModDir, r.New.Path)
		if err := f.AddReplace(r.Old.Path, r.Old.Version, abs, ""); err != nil {
			return err
		}
		changed = true
	}
	if !changed {
		return nil
	}
	out, err := f.Format()
	if err != nil {
		return err
	}
	return os.WriteFile(gomod, out, 0o644)
}

// PublicPackages lists the packages among patterns in the module in dir
// that form an exported Go API: the module's own, neither internal nor
// main. It only lists packages (go list), without type-checking, so the
// pipeline can tell an application (only main packages) from a library
// before it decides to run the api gate.
func PublicPackages(ctx context.Context, dir string, patterns []string) ([]string, error) {
	modPath, err := ReadModulePath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading go.mod: %w", err)
	}
	pkgs, err := packages.Load(&packages.Config{
		Context: ctx, Dir: dir, Env: goEnv(os.Environ()),
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedModule,
	}, patterns...)
	if err != nil {
		return nil, fmt.Errorf("listing packages: %s", tidyGoError(err))
	}
	l := &loader{modPath: modPath}
	var out, unmatched []string
	for _, p := range pkgs {
		if len(p.GoFiles) == 0 && len(p.Errors) > 0 && !l.isLocal(p) {
			unmatched = append(unmatched, p.Errors[0].Msg)
			continue
		}
		if !l.isLocal(p) || p.Name == "main" {
			continue
		}
		if rel := relPath(modPath, p.PkgPath); !isInternal(rel) {
			out = append(out, p.PkgPath)
		}
	}
	if len(unmatched) > 0 {
		return nil, &PatternError{Dir: dir, Patterns: patterns, Msgs: unmatched}
	}
	return out, nil
}
