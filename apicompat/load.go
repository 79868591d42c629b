package apicompat

import (
	"context"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
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
}

// Package is one public package of a module.
type Package struct {
	Path  string // import path
	Rel   string // path relative to the module path
	Types *types.Package
	Fset  *token.FileSet
	Files []*ast.File
	docs  *docIndex
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
	fset := token.NewFileSet()
	cfg := &packages.Config{
		Context: ctx,
		Dir:     dir,
		Mode:    packages.NeedName | packages.NeedFiles | packages.NeedTypes | packages.NeedSyntax | packages.NeedModule,
		Fset:    fset,
		Env:     append(append(os.Environ(), "GOWORK=off"), extraEnv...),
		Tests:   false,
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		return nil, fmt.Errorf("loading packages in %s: %w", dir, err)
	}
	for _, p := range pkgs {
		if p.Module != nil && p.Module.Path != modPath {
			continue // a package of another (nested or required) module
		}
		if p.PkgPath != modPath && !strings.HasPrefix(p.PkgPath, modPath+"/") {
			continue
		}
		rel := relPath(modPath, p.PkgPath)
		if isInternal(rel) || p.Name == "main" {
			continue
		}
		if len(p.Errors) > 0 || p.Types == nil {
			var msgs []string
			for _, e := range p.Errors {
				msgs = append(msgs, e.Error())
			}
			if len(msgs) == 0 {
				msgs = append(msgs, "no type information")
			}
			if len(msgs) > 3 {
				msgs = append(msgs[:3], fmt.Sprintf("and %d more", len(msgs)-3))
			}
			m.Broken[rel] = strings.Join(msgs, "; ")
			continue
		}
		m.Packages[rel] = &Package{Path: p.PkgPath, Rel: rel, Types: p.Types, Fset: fset, Files: p.Syntax}
	}
	if len(m.Packages) == 0 && len(m.Broken) == 0 && len(pkgs) > 0 {
		// Patterns that matched nothing come back as a package with an error.
		for _, p := range pkgs {
			for _, e := range p.Errors {
				return nil, fmt.Errorf("loading packages in %s: %v", dir, e)
			}
		}
	}
	return m, nil
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
