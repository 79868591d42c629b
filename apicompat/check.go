// Package apicompat is relcheck's API gate: it compares the public API of a Go
// module at the base release with the working tree, classifies every change
// (golang.org/x/exp/apidiff plus the type-parameter rules apidiff lacks),
// decides the next semantic version as gorelease does, enforces the project's
// deprecation policy from its tag history, and keeps an API report file.
package apicompat

import (
	"context"
	"errors"
	"fmt"
	"go/token"
	"go/types"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"golang.org/x/exp/apidiff"

	"github.com/relcheck/relcheck/internal/config"
	"github.com/relcheck/relcheck/internal/gitx"
	"github.com/relcheck/relcheck/report"
)

// Rule ids of the API gate.
const (
	RuleIncompatible        = "api/incompatible"
	RuleRemovedUndeprecated = "api/removed-without-deprecation"
	RuleDeprecationWindow   = "api/deprecation-window"
	RuleReportMismatch      = "api/report-mismatch"
	RuleDeprecationHint     = "api/deprecation-hint"
	RulePackageBroken       = "api/package-broken"
	RuleSuppressionExpired  = "api/suppression-expired"
	RuleTagVersion          = "api/tag-version"
)

// Rules lists the rule ids of the API gate.
var Rules = []string{
	RuleIncompatible, RuleRemovedUndeprecated, RuleDeprecationWindow, RuleReportMismatch,
	RuleDeprecationHint, RulePackageBroken, RuleSuppressionExpired, RuleTagVersion,
}

// Options are the inputs of Check.
type Options struct {
	// Repo is the git repository; nil for a directory outside git (then there
	// is no base and no history).
	Repo *gitx.Repo
	// Root is the directory locations are reported relative to (the
	// repository root).
	Root string
	// ModDir is the module directory in the working tree (head).
	ModDir string
	// Base is the ref to compare with; empty for a first release.
	Base string
	// BaseVersion is the release version of Base when Base is a release tag.
	BaseVersion *semver.Version
	// Tags are the release tags up to and including the base, ascending; the
	// deprecation window is counted on them.
	Tags []gitx.Tag
	// Config is the api section of relcheck.yaml; ConfigFile is its path
	// relative to Root, for locations.
	Config     config.API
	ConfigFile string
	// Now is the current time (for deprecation days and dated suppressions).
	Now time.Time
	// Tagged is the release tag on HEAD, when HEAD is a release commit: the
	// tag must be a version the changes since Base allow.
	Tagged *gitx.Tag
}

// Result is what the API gate decided.
type Result struct {
	Check   *report.Check
	Version report.Version
	// Head is the loaded API at head.
	Head *Module
}

// Check runs the API gate.
func Check(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	patterns := opts.Config.Packages
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	var (
		head, base       *Module
		headErr, baseErr error
		wg               sync.WaitGroup
		cleanup          = func() {}
	)
	var tmp string
	if opts.Base != "" {
		var err error
		if tmp, err = os.MkdirTemp("", "relcheck-base-"); err != nil {
			return nil, err
		}
		cleanup = func() { os.RemoveAll(tmp) }
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		head, headErr = LoadModule(ctx, opts.ModDir, opts.Root, patterns)
	}()
	if opts.Base != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base, baseErr = loadBase(ctx, opts, tmp, patterns)
		}()
	}
	wg.Wait()
	defer cleanup()
	if headErr != nil {
		var pe *PatternError
		if errors.As(headErr, &pe) {
			return nil, headErr
		}
		return nil, fmt.Errorf("loading the module at head: %w", headErr)
	}
	var pe *PatternError
	if errors.As(baseErr, &pe) {
		// The packages were added after the base: nothing to compare with.
		base, baseErr = &Module{Path: head.Path, Root: opts.Root, Packages: map[string]*Package{}, Broken: map[string]string{}}, nil
	}
	if baseErr != nil {
		// Name files as they are in the repository, not in the scratch copy.
		return nil, fmt.Errorf("loading the module at %s: %s", opts.Base, strings.ReplaceAll(baseErr.Error(), tmp+string(filepath.Separator), ""))
	}

	c := &comparison{opts: opts, head: head, base: base}
	res, err := c.run(ctx)
	if err != nil {
		return nil, err
	}
	res.Check.DurationMs = time.Since(start).Milliseconds()
	return res, nil
}

func loadBase(ctx context.Context, opts Options, tmp string, patterns []string) (*Module, error) {
	if err := opts.Repo.Archive(ctx, opts.Base, tmp); err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(opts.Root, opts.ModDir)
	if err != nil {
		return nil, err
	}
	modDir := filepath.Join(tmp, rel)
	synthesized := false
	if _, err := os.Stat(filepath.Join(modDir, "go.mod")); err != nil {
		// A release from before the module existed (or before go.mod):
		// load it with the head's go.mod, as gorelease does.
		if err := os.MkdirAll(modDir, 0o755); err != nil {
			return nil, err
		}
		for _, f := range []string{"go.mod", "go.sum"} {
			if data, err := os.ReadFile(filepath.Join(opts.ModDir, f)); err == nil {
				if err := os.WriteFile(filepath.Join(modDir, f), data, 0o644); err != nil {
					return nil, err
				}
			}
		}
		synthesized = true
	}
	if err := fixReplaces(modDir, tmp, opts.ModDir); err != nil {
		return nil, err
	}
	// The base is a scratch copy: let go fix up its go.sum if it must,
	// unless it vendors its dependencies.
	mode := "-mod=mod"
	if _, err := os.Stat(filepath.Join(modDir, "vendor", "modules.txt")); err == nil {
		mode = "-mod=vendor"
	}
	m, err := loadModule(ctx, modDir, tmp, patterns, []string{mode})
	if m != nil {
		m.Synthesized = synthesized
	}
	return m, err
}

// item is a finding with what the version policy needs to know about it.
type item struct {
	f            report.Finding
	incompatible bool // an incompatible API change
	compatible   bool // a compatible API change (an addition)
	experimental bool
}

type comparison struct {
	opts       Options
	head, base *Module
	items      []*item
	notes      []string
	// undecided lists packages whose API could not be compared at all.
	undecided []string
}

func (c *comparison) loc(m *Module, pos token.Pos, pkg *Package) *report.Location {
	if pkg == nil || !pos.IsValid() {
		return nil
	}
	p := pkg.Fset.Position(pos)
	if p.Filename == "" {
		return nil
	}
	file := p.Filename
	if rel, err := filepath.Rel(m.Root, file); err == nil && !strings.HasPrefix(rel, "..") {
		file = filepath.ToSlash(rel)
	}
	return &report.Location{File: file, Line: p.Line}
}

// pathMoved reports whether head's module path has the next major suffix.
func (c *comparison) pathMoved() bool {
	if c.base == nil || c.opts.BaseVersion == nil {
		return false
	}
	hm := majorOf(c.head.Path)
	return hm >= 2 && uint64(hm) > c.opts.BaseVersion.Major() && c.head.Path != c.base.Path
}

// breaksAllowed reports whether the version policy allows incompatible
// changes at all: in v0, for a first release, or with a new major path.
func (c *comparison) breaksAllowed() bool {
	if c.base == nil {
		return true
	}
	if c.opts.BaseVersion == nil {
		return majorOf(c.head.Path) < 2
	}
	return c.opts.BaseVersion.Major() == 0 || c.pathMoved()
}

func (c *comparison) experimental(rel string) bool {
	for _, p := range c.opts.Config.Experimental {
		if matchPattern(c.head.Path, rel, p) {
			return true
		}
	}
	return false
}

// matchPattern matches a package (module-relative rel) against a pattern like
// "./x/...", "x", or a full import path "example.com/m/x/...".
func matchPattern(modPath, rel, pattern string) bool {
	p := strings.TrimPrefix(pattern, "./")
	if p == "." {
		p = ""
	}
	if strings.HasPrefix(p, modPath) {
		p = strings.TrimPrefix(strings.TrimPrefix(p, modPath), "/")
	}
	if strings.HasSuffix(p, "...") {
		prefix := strings.TrimSuffix(strings.TrimSuffix(p, "..."), "/")
		return prefix == "" || rel == prefix || strings.HasPrefix(rel, prefix+"/")
	}
	return rel == p
}

func (c *comparison) run(ctx context.Context) (*Result, error) {
	hist := &History{Repo: c.opts.Repo, Tags: c.opts.Tags}
	if rel, err := filepath.Rel(c.opts.Root, c.opts.ModDir); err == nil && rel != "." {
		hist.ModDir = filepath.ToSlash(rel)
	}
	if c.base != nil && c.base.Synthesized {
		c.notes = append(c.notes, fmt.Sprintf("%s has no go.mod; it was loaded with the go.mod of the working tree", c.opts.Base))
	}
	for _, rel := range sortedRels(c.base, c.head) {
		c.comparePackage(ctx, rel, hist)
	}
	c.reportFile()
	res := &Result{Head: c.head}
	res.Version = c.version()
	c.applySuppressions(&res.Version)
	c.checkTag(&res.Version)

	chk := &report.Check{Name: "api", Metrics: c.metrics()}
	chk.Findings = []report.Finding{}
	for _, it := range c.items {
		if it.f.Rule != "" {
			chk.Findings = append(chk.Findings, it.f)
		}
	}
	chk.Notes = c.notes
	chk.Settle()
	chk.Summary = c.summary(chk)
	res.Check = chk
	return res, nil
}

func (c *comparison) pkgDisplay(rel string) string {
	if c.head != nil {
		if rel == "" {
			return c.head.Path
		}
		return c.head.Path + "/" + rel
	}
	return rel
}

func (c *comparison) comparePackage(ctx context.Context, rel string, hist *History) {
	var oldP, newP *Package
	if c.base != nil {
		oldP = c.base.Packages[rel]
	}
	newP = c.head.Packages[rel]
	exp := c.experimental(rel)
	skip := false
	for _, m := range []*Module{c.base, c.head} {
		if m == nil {
			continue
		}
		why, ok := m.Broken[rel]
		if !ok {
			continue
		}
		side := "head"
		if m == c.base {
			side = c.opts.Base
		}
		// Messages name files relative to the tree, not a temporary copy.
		why = strings.ReplaceAll(why, m.Root+string(filepath.Separator), "")
		msg := fmt.Sprintf("package %s does not type-check at %s; its API was compared as far as it is declared: %s", c.pkgDisplay(rel), side, why)
		if m.Packages[rel] == nil {
			msg = fmt.Sprintf("package %s could not be loaded at %s, so its API was not compared: %s", c.pkgDisplay(rel), side, why)
			skip = true
		}
		c.items = append(c.items, &item{f: report.Finding{
			Rule: RulePackageBroken, Severity: report.SeverityWarning,
			Message:  msg,
			Symbol:   c.pkgDisplay(rel),
			Location: errorLocation(m.Root, m.Dir, m.Broken[rel]),
			Fix:      "make the package build (go build ./...) so its API can be checked",
		}})
		if m.Packages[rel] == nil && !slices.Contains(c.undecided, c.pkgDisplay(rel)) {
			c.undecided = append(c.undecided, c.pkgDisplay(rel))
		}
	}
	if skip {
		return
	}
	if newP != nil {
		newDocIndexOnce(newP)
		c.deprecationHints(oldP, newP)
	}
	if c.base == nil {
		return
	}
	switch {
	case oldP == nil && newP != nil:
		c.add(&item{compatible: true, experimental: exp})
		c.notes = append(c.notes, fmt.Sprintf("new package %s", newP.Path))
		return
	case oldP != nil && newP == nil:
		newDocIndexOnce(oldP)
		var pos token.Pos
		if len(oldP.Files) > 0 {
			pos = oldP.Files[0].Name.Pos()
		}
		c.change(ctx, hist, rel, oldP, newP, "", "package removed", true, true, pos, exp)
		return
	}
	newDocIndexOnce(oldP)

	changes := apidiff.Changes(oldP.Types, newP.Types).Changes
	// What apidiff says something about, by symbol ("T.M") and by top-level
	// name ("T").
	mentioned, mentionedTop := map[string]bool{}, map[string]bool{}
	for _, ch := range changes {
		sym, _, _ := strings.Cut(ch.Message, ": ")
		sym, _ = splitMethodSet(sym)
		mentioned[normSym(sym)] = true
		mentionedTop[topSym(normSym(sym))] = true
	}
	// Rules apidiff lacks. For a symbol they cover, their message replaces
	// apidiff's, which is less precise or (for a widened constraint of a
	// generic type) wrong.
	extra := map[string]extraChange{}
	var extraOrder []string
	for _, g := range append(genericChanges(oldP.Types, newP.Types, mentionedTop), interfaceRemovals(oldP.Types, newP.Types, mentioned)...) {
		if _, dup := extra[g.symbol]; !dup {
			extra[g.symbol] = g
			extraOrder = append(extraOrder, g.symbol)
		}
	}
	done := map[string]bool{}
	// Direct changes first, then the ones apidiff repeats for the method set
	// of a type that embeds the changed one.
	for pass := 0; pass < 2; pass++ {
		for _, ch := range changes {
			sym, msg, _ := strings.Cut(ch.Message, ": ")
			sym, via := splitMethodSet(sym)
			if (via != "") != (pass == 1) {
				continue
			}
			n := normSym(sym)
			if g, ok := extra[n]; ok {
				if !done[n] {
					done[n] = true
					c.extraItem(rel, oldP, newP, g, exp)
				}
				continue
			}
			if via != "" {
				if done[n] {
					continue // the same change, seen through embedding
				}
				msg += " (in the method set of " + via + ")"
			}
			done[n] = true
			removal := msg == "removed"
			incompatible := !ch.Compatible
			if incompatible && stringConstValueChange(oldP.Types, newP.Types, sym, msg) {
				// A string constant's value (a version string, a default
				// name) cannot break a caller's build the way a changed
				// numeric constant can (overflow, array bounds); apidiff and
				// gorelease count it as a break on every release of grpc.
				// It is not new API either: a patch release may carry it.
				c.notes = append(c.notes, fmt.Sprintf("%s.%s: %s (a string constant's value is not a compile-time contract)", c.pkgDisplay(rel), n, msg))
				continue
			}
			if strings.Contains(msg, "invalid type") && (c.head.Broken[rel] != "" || c.base.Broken[rel] != "") {
				// A type error, not an API decision: the package-broken
				// warning already says so.
				c.notes = append(c.notes, fmt.Sprintf("%s.%s: %s (not judged: the package does not type-check)", c.pkgDisplay(rel), n, msg))
				continue
			}
			pos, side := c.position(oldP, newP, n, removal)
			c.change(ctx, hist, rel, oldP, newP, n, msg, incompatible, removal, pos, exp, side)
		}
	}
	for _, sym := range extraOrder {
		if !done[sym] {
			done[sym] = true
			c.extraItem(rel, oldP, newP, extra[sym], exp)
		}
	}
}

// splitMethodSet splits apidiff's "T.M, method set of *U" into "T.M" and "*U".
func splitMethodSet(sym string) (string, string) {
	if i := strings.Index(sym, ", method set of "); i >= 0 {
		return sym[:i], sym[i+len(", method set of "):]
	}
	return sym, ""
}

func (c *comparison) extraItem(rel string, oldP, newP *Package, g extraChange, exp bool) {
	pos, side := c.position(oldP, newP, g.symbol, g.removal)
	c.change(context.Background(), nil, rel, oldP, newP, g.symbol, g.msg, g.incompatible, g.removal, pos, exp, side)
}

// removalLocation anchors a removed symbol in the working tree, where
// annotations are shown: at the type it belonged to if that still exists, else
// at the package clause of the package, else at go.mod. It also says where the
// symbol stood at the base.
func (c *comparison) removalLocation(oldP, newP *Package, sym string) (*report.Location, string) {
	wasAt := ""
	if oldP != nil {
		if pos, p := c.position(oldP, nil, sym, true); p != nil {
			if l := c.loc(c.base, pos, p); l != nil {
				wasAt = fmt.Sprintf("%s:%d in %s", l.File, l.Line, c.opts.Base)
			}
		}
	}
	if newP != nil {
		newDocIndexOnce(newP)
		if i := strings.IndexByte(sym, '.'); i >= 0 {
			if e, ok := newP.docs.docs[sym[:i]]; ok {
				return c.loc(c.head, e.pos, newP), wasAt
			}
		}
		if len(newP.Files) > 0 {
			return c.loc(c.head, newP.Files[0].Name.Pos(), newP), wasAt
		}
	}
	file := "go.mod"
	if rel, err := filepath.Rel(c.opts.Root, filepath.Join(c.opts.ModDir, "go.mod")); err == nil {
		file = filepath.ToSlash(rel)
	}
	return &report.Location{File: file, Line: 1}, wasAt
}

// position finds where a symbol stands: at head, or at base for removals.
func (c *comparison) position(oldP, newP *Package, sym string, removal bool) (token.Pos, *Package) {
	if !removal && newP != nil {
		if e, ok := newP.docs.docs[sym]; ok {
			return e.pos, newP
		}
		if i := strings.IndexByte(sym, '.'); i >= 0 {
			if e, ok := newP.docs.docs[sym[:i]]; ok {
				return e.pos, newP
			}
		}
	}
	if oldP != nil {
		if e, ok := oldP.docs.docs[sym]; ok {
			return e.pos, oldP
		}
		if i := strings.IndexByte(sym, '.'); i >= 0 {
			if e, ok := oldP.docs.docs[sym[:i]]; ok {
				return e.pos, oldP
			}
		}
	}
	return token.NoPos, nil
}

func (c *comparison) add(it *item) { c.items = append(c.items, it) }

// change turns one API change into a finding (incompatible) or a note
// (compatible), applying the version and deprecation policies.
func (c *comparison) change(ctx context.Context, hist *History, rel string, oldP, newP *Package, sym, msg string, incompatible, removal bool, pos token.Pos, exp bool, where ...*Package) {
	pkgPath := c.pkgDisplay(rel)
	full := pkgPath
	if sym != "" {
		full = pkgPath + "." + sym
	}
	what := sym
	if what == "" {
		what = "package " + pkgPath
	}
	if !incompatible {
		c.add(&item{compatible: true, experimental: exp})
		if msg != "added" { // additions are listed as newly exported
			c.notes = append(c.notes, fmt.Sprintf("%s: %s", full, msg))
		}
		return
	}
	at := oldP
	if len(where) > 0 && where[0] != nil {
		at = where[0]
	}
	var loc *report.Location
	wasAt := ""
	switch {
	case removal:
		loc, wasAt = c.removalLocation(oldP, newP, sym)
	case at == oldP && c.base != nil:
		loc = c.loc(c.base, pos, at)
	default:
		loc = c.loc(c.head, pos, at)
	}
	it := &item{incompatible: true, experimental: exp, f: report.Finding{
		Rule: RuleIncompatible, Symbol: full, Location: loc,
	}}
	c.add(it)
	f := &it.f
	defer func() {
		if wasAt != "" {
			f.Message += " (it was at " + wasAt + ")"
		}
	}()
	switch {
	case exp:
		f.Severity = report.SeverityNote
		f.Message = fmt.Sprintf("%s: %s (experimental package: reported, not enforced)", what, msg)
		f.Fix = "nothing to do for the gate; tell users of the experimental package in the release notes"
	case removal && c.breaksAllowed():
		note, deprecated := oldP.docs.deprecated(sym)
		if !deprecated {
			f.Rule, f.Severity = RuleRemovedUndeprecated, report.SeverityError
			f.Message = fmt.Sprintf("%s removed; it was never marked Deprecated", what)
			f.Fix = fmt.Sprintf("restore %s and mark it // Deprecated: (saying what to use instead) first; remove it after the deprecation has been released", what)
			return
		}
		since := hist.DeprecatedSince(ctx, rel, sym)
		min := c.opts.Config.Deprecation
		ok, releases, days := windowMet(since, min.MinReleases, min.MinDays, c.opts.Now)
		if !ok {
			f.Rule, f.Severity = RuleDeprecationWindow, report.SeverityError
			first := "no release yet"
			if len(since) > 0 {
				first = fmt.Sprintf("since %s, %d release(s), %d day(s) ago", since[0].Name, releases, days)
			}
			f.Message = fmt.Sprintf("%s removed too early: deprecated %s; the policy asks for %d release(s) and %d day(s)", what, first, min.MinReleases, min.MinDays)
			f.Fix = fmt.Sprintf("keep %s until its deprecation has been released for %d release(s) and %d day(s) (api.deprecation)", what, min.MinReleases, min.MinDays)
			return
		}
		f.Severity = report.SeverityNote
		f.Fix = "nothing to do: the deprecation policy was kept; list the removal in the release notes"
		if len(since) > 0 {
			f.Message = fmt.Sprintf("%s removed after its deprecation (since %s, %d release(s), %d day(s)): %s", what, since[0].Name, releases, days, note)
		} else {
			f.Message = fmt.Sprintf("%s removed after its deprecation (the policy asks for no released deprecation): %s", what, note)
		}
	case c.breaksAllowed():
		f.Severity = report.SeverityWarning
		f.Message = fmt.Sprintf("%s: %s", what, msg)
		if c.pathMoved() {
			f.Severity = report.SeverityNote
			f.Message += " (allowed: new major version " + c.head.Path + ")"
			f.Fix = "nothing to do: list the change in the upgrade notes for " + c.head.Path
		} else {
			f.Message += " (allowed before v1: the next version is a minor bump)"
			f.Fix = "callers must change their code; say so in the release notes"
		}
	default:
		f.Severity = report.SeverityError
		f.Message = fmt.Sprintf("%s: %s; incompatible changes are not allowed at v%s without a new major version path", what, msg, c.opts.BaseVersion)
		if removal {
			f.Fix = fmt.Sprintf("restore %s and mark it // Deprecated: instead; remove it in the next major version (module path /v%d)", what, c.opts.BaseVersion.Major()+1)
		} else if msg == "added" {
			f.Fix = "a method added to an interface breaks every implementation outside the package: define a new interface (embedding the old one) and check for it with a type assertion"
		} else {
			f.Fix = fmt.Sprintf("keep the old form and add the new one beside it, or release a new major version with module path /v%d", c.opts.BaseVersion.Major()+1)
		}
	}
}

// deprecationHints warns about deprecation notes new at head that do not say
// what to use instead.
func (c *comparison) deprecationHints(oldP, newP *Package) {
	for _, s := range slices.Sorted(maps.Keys(newP.docs.docs)) {
		if !exportedSym(s) {
			continue
		}
		note, ok := deprecation(newP.docs.docs[s].doc)
		if !ok || hasReplacementHint(note) {
			continue
		}
		if oldP != nil {
			if _, was := deprecation(newDocIndexOnce(oldP).docs[s].doc); was {
				continue
			}
		}
		c.add(&item{f: report.Finding{
			Rule: RuleDeprecationHint, Severity: report.SeverityWarning,
			Message:  fmt.Sprintf("%s is newly deprecated without saying what to use instead", s),
			Symbol:   newP.Path + "." + s,
			Location: c.loc(c.head, newP.docs.docs[s].pos, newP),
			Fix:      fmt.Sprintf("write it as \"Deprecated: Use X instead.\" so callers know how to migrate off %s", s),
		}})
	}
}

func newDocIndexOnce(p *Package) *docIndex {
	if p.docs == nil {
		p.docs = newDocIndex(p.Files)
	}
	return p.docs
}

func exportedSym(s string) bool {
	for _, part := range strings.Split(s, ".") {
		if !token.IsExported(part) {
			return false
		}
	}
	return true
}

// version applies gorelease's version policy.
func (c *comparison) version() report.Version {
	v := report.Version{}
	// A suppressed or experimental incompatible change is still a change:
	// it cannot ask for a new major version, but it is at least a minor one.
	var breaking, added, tolerated int
	for _, it := range c.items {
		switch {
		case it.incompatible && !it.experimental && it.f.Suppressed == "":
			breaking++
		case it.incompatible:
			tolerated++
		case it.compatible:
			added++
		}
	}
	headMajor := majorOf(c.head.Path)
	if c.opts.Base == "" {
		v.Bump = "initial"
		if headMajor >= 2 {
			v.Next = fmt.Sprintf("v%d.0.0", headMajor)
		} else {
			v.Next = "v0.1.0"
		}
		v.Reasons = append(v.Reasons, "no release tag yet: this is the first release")
		return v
	}
	v.Base = c.opts.Base
	bv := c.opts.BaseVersion
	switch {
	case bv == nil:
		v.Reasons = append(v.Reasons, fmt.Sprintf("base %s is not a release tag: no version can be derived", c.opts.Base))
	case c.pathMoved():
		v.Bump = "major"
		v.Next = fmt.Sprintf("v%d.0.0", headMajor)
		v.Reasons = append(v.Reasons, fmt.Sprintf("module path moved to %s", c.head.Path))
	case breaking > 0 && bv.Major() == 0:
		v.Bump = "minor"
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d incompatible change(s), allowed before v1 as a minor bump", breaking))
	case breaking > 0:
		// Under this module path there is no valid next version: v%d.0.0
		// needs the path to end in /v%d.
		v.Bump = "major"
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d incompatible change(s): no release is possible under %s; v%d.0.0 needs module path %s/v%d",
			breaking, c.head.Path, bv.Major()+1, strings.TrimSuffix(c.head.Path, fmt.Sprintf("/v%d", bv.Major())), bv.Major()+1))
	case added > 0 || tolerated > 0:
		v.Bump = "minor"
		if added > 0 {
			v.Reasons = append(v.Reasons, fmt.Sprintf("%d compatible change(s)", added))
		}
		if tolerated > 0 {
			v.Reasons = append(v.Reasons, fmt.Sprintf("%d incompatible change(s) suppressed or in experimental packages", tolerated))
		}
	default:
		v.Bump = "patch"
		v.Reasons = append(v.Reasons, "no API change")
	}
	if len(c.undecided) > 0 {
		// The changes of a package that could not be loaded are unknown:
		// no version can be promised.
		v.Reasons = append(v.Reasons, fmt.Sprintf("not compared: %s (could not be loaded), so no version can be derived", strings.Join(c.undecided, ", ")))
		v.Next = ""
		return v
	}
	if bv != nil && v.Next == "" && v.Bump != "major" {
		n := *bv
		switch v.Bump {
		case "minor":
			n = bv.IncMinor()
		case "patch":
			n = bv.IncPatch()
		}
		v.Next = "v" + n.String()
	}
	return v
}

// applySuppressions marks findings matched by api.ignore entries and reports
// expired entries. A suppression's "until" version is compared with the next
// version as it is with the suppressions in force: an entry that allowed a
// break "until v2.0.0" holds while the next version stays below v2.0.0.
func (c *comparison) applySuppressions(v *report.Version) {
	if len(c.opts.Config.Ignore) == 0 {
		return
	}
	type entry struct {
		ig      config.Ignore
		until   config.Until
		matched []*item
	}
	var entries []*entry
	for _, ig := range c.opts.Config.Ignore {
		e := &entry{ig: ig}
		e.until, _ = config.ParseUntil(ig.Until)
		entries = append(entries, e)
		if ig.Until != "" && e.until.Version == nil && e.until.Expired(nil, c.opts.Now) {
			continue // expired by date: never applied
		}
		for _, it := range c.items {
			if it.f.Rule == ig.Rule && (ig.Symbol == "" || ig.Symbol == it.f.Symbol) && it.f.Suppressed == "" {
				it.f.Suppressed = ig.Reason
				e.matched = append(e.matched, it)
			}
		}
	}
	*v = c.version()
	var next *semver.Version
	if v.Next != "" {
		next, _ = semver.NewVersion(v.Next)
	}
	for _, e := range entries {
		ig := e.ig
		if ig.Until != "" && e.until.Expired(next, c.opts.Now) {
			for _, it := range e.matched {
				it.f.Suppressed = ""
			}
			c.add(&item{f: report.Finding{
				Rule: RuleSuppressionExpired, Severity: report.SeverityError,
				Message:  fmt.Sprintf("suppression of %s for %s expired (until %s); its reason was: %s", ig.Rule, orAll(ig.Symbol), ig.Until, ig.Reason),
				Symbol:   ig.Symbol,
				Location: &report.Location{File: c.opts.ConfigFile, Line: ig.Line},
				Fix:      "fix what it suppressed, or extend until with a new reason",
			}})
			continue
		}
		if len(e.matched) == 0 {
			c.notes = append(c.notes, fmt.Sprintf("suppression of %s for %s (%s:%d) matched nothing; remove it", ig.Rule, orAll(ig.Symbol), c.opts.ConfigFile, ig.Line))
		}
	}
	*v = c.version()
}

func orAll(s string) string {
	if s == "" {
		return "every symbol"
	}
	return s
}

type pkgCount struct {
	Base int `json:"base"`
	Head int `json:"head"`
}

// metrics counts exported identifiers per package (API minimisation) and lists
// the newly exported ones in the notes.
func (c *comparison) metrics() map[string]any {
	per := map[string]pkgCount{}
	baseSyms := map[string]bool{}
	total, baseTotal := 0, 0
	for _, side := range []*Module{c.base, c.head} {
		if side == nil {
			continue
		}
		for rel, p := range side.Packages {
			n := countIdentifiers(p)
			pc := per[p.Path]
			if side == c.base {
				pc.Base = n
				baseTotal += n
				for _, f := range p.Features() {
					baseSyms[strings.TrimPrefix(rel+"/", "/")+f.Symbol] = true
				}
			} else {
				pc.Head = n
				total += n
			}
			per[p.Path] = pc
		}
	}
	m := map[string]any{"exportedIdentifiers": total, "packages": len(c.head.Packages), "exportedByPackage": per}
	if c.base != nil {
		m["exportedIdentifiersBase"] = baseTotal
		var added []string
		for _, rel := range sortedRels(nil, c.head) {
			p := c.head.Packages[rel]
			if p == nil {
				continue
			}
			seen := map[string]bool{}
			for _, f := range p.Features() {
				key := strings.TrimPrefix(rel+"/", "/") + f.Symbol
				if !baseSyms[key] && !seen[f.Symbol] {
					seen[f.Symbol] = true
					added = append(added, p.Path+"."+f.Symbol)
				}
			}
		}
		m["newlyExported"] = len(added)
		if total != baseTotal || len(added) > 0 {
			line := fmt.Sprintf("exported identifiers: %d → %d (%+d)", baseTotal, total, total-baseTotal)
			if len(added) > 0 {
				shown := added
				if len(shown) > 20 {
					shown = append(shown[:20:20], fmt.Sprintf("and %d more", len(added)-20))
				}
				line += "; newly exported: " + strings.Join(shown, ", ")
			}
			c.notes = append([]string{line}, c.notes...)
		}
	}
	return m
}

// countIdentifiers counts a package's exported package-level identifiers,
// exported methods of exported types and exported struct fields.
func countIdentifiers(p *Package) int {
	n := 0
	scope := p.Types.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		n++
		tn, ok := obj.(*types.TypeName)
		if !ok || tn.IsAlias() {
			continue
		}
		named, ok := tn.Type().(*types.Named)
		if !ok {
			continue
		}
		for i := 0; i < named.NumMethods(); i++ {
			if named.Method(i).Exported() {
				n++
			}
		}
		switch u := named.Underlying().(type) {
		case *types.Struct:
			for i := 0; i < u.NumFields(); i++ {
				if u.Field(i).Exported() {
					n++
				}
			}
		case *types.Interface:
			for i := 0; i < u.NumExplicitMethods(); i++ {
				if u.ExplicitMethod(i).Exported() {
					n++
				}
			}
		}
	}
	return n
}

func (c *comparison) summary(chk *report.Check) string {
	var incompatible, added int
	for _, it := range c.items {
		if it.f.Suppressed != "" {
			continue
		}
		if it.incompatible {
			incompatible++
		}
		if it.compatible {
			added++
		}
	}
	var parts []string
	switch incompatible {
	case 0:
	case 1:
		parts = append(parts, "1 incompatible change")
	default:
		parts = append(parts, fmt.Sprintf("%d incompatible changes", incompatible))
	}
	switch added {
	case 0:
	case 1:
		parts = append(parts, "1 compatible change")
	default:
		parts = append(parts, fmt.Sprintf("%d compatible changes", added))
	}
	if len(c.undecided) > 0 {
		parts = append(parts, "not compared: "+strings.Join(c.undecided, ", "))
	} else if incompatible == 0 && added == 0 {
		if c.base == nil {
			parts = append(parts, fmt.Sprintf("first release: %s, %s", plural(len(c.head.Packages), "package"), plural(chk.Metrics["exportedIdentifiers"].(int), "exported identifier")))
		} else {
			parts = append(parts, "no API change")
		}
	}
	// The renderers add the finding counts.
	return strings.Join(parts, ", ")
}

func plural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return fmt.Sprintf("%d %ss", n, s)
}

// stringConstValueChange reports whether an apidiff message is only the value
// change of a string constant whose type stayed the same.
func stringConstValueChange(oldP, newP *types.Package, sym, msg string) bool {
	if !strings.HasPrefix(msg, "value changed from ") {
		return false
	}
	oc, ok1 := oldP.Scope().Lookup(sym).(*types.Const)
	nc, ok2 := newP.Scope().Lookup(sym).(*types.Const)
	if !ok1 || !ok2 {
		return false
	}
	ob, ok1 := oc.Type().Underlying().(*types.Basic)
	nb, ok2 := nc.Type().Underlying().(*types.Basic)
	return ok1 && ok2 && ob.Info()&types.IsString != 0 && nb.Info()&types.IsString != 0 &&
		types.TypeString(oc.Type(), qualifier) == types.TypeString(nc.Type(), qualifier)
}

var errPos = regexp.MustCompile(`^([^:;]+\.go):(\d+)(?::\d+)?: `)

// errorLocation extracts the file and line of the first error of a package
// that does not type-check ("file.go:12:3: message; ..."; absolute, or
// relative to the module directory dir), relative to root.
func errorLocation(root, dir, errs string) *report.Location {
	m := errPos.FindStringSubmatch(errs)
	if m == nil {
		return nil
	}
	file := m[1]
	if !filepath.IsAbs(file) {
		file = filepath.Join(dir, file)
	}
	rel, err := filepath.Rel(root, file)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil
	}
	line, _ := strconv.Atoi(m[2])
	return &report.Location{File: filepath.ToSlash(rel), Line: line}
}

// checkTag checks the release tag on HEAD against the version the changes
// allow: it must not be lower than the next version (a patch tag on new API,
// a minor tag on a break).
func (c *comparison) checkTag(v *report.Version) {
	t := c.opts.Tagged
	if t == nil {
		return
	}
	loc := &report.Location{File: "go.mod", Line: 1}
	if rel, err := filepath.Rel(c.opts.Root, filepath.Join(c.opts.ModDir, "go.mod")); err == nil {
		loc.File = filepath.ToSlash(rel)
	}
	prefix := strings.TrimSuffix(t.Name, "v"+t.Version.String())
	switch {
	case c.opts.Base == "":
		// A first release may start at any version of its major.
		v.Reasons = append(v.Reasons, fmt.Sprintf("HEAD is tagged %s, the first release", t.Name))
		v.Next = "v" + t.Version.String()
	case v.Next == "":
		c.add(&item{f: report.Finding{
			Rule: RuleTagVersion, Severity: report.SeverityError, Location: loc,
			Message: fmt.Sprintf("HEAD is tagged %s, but no version under %s allows the changes since %s", t.Name, c.head.Path, orNone(c.opts.Base)),
			Fix:     "delete the tag, fix the findings above, and tag again",
		}})
	default:
		next, err := semver.NewVersion(v.Next)
		if err == nil && t.Version.LessThan(next) {
			c.add(&item{f: report.Finding{
				Rule: RuleTagVersion, Severity: report.SeverityError, Location: loc,
				Message: fmt.Sprintf("HEAD is tagged %s, but the changes since %s need at least %s (%s)", t.Name, orNone(c.opts.Base), v.Next, v.Bump),
				Fix:     fmt.Sprintf("tag %s%s instead (git tag -d %s && git tag %s%s)", prefix, v.Next, t.Name, prefix, v.Next),
			}})
		} else {
			v.Reasons = append(v.Reasons, fmt.Sprintf("HEAD is tagged %s, which the changes since %s allow", t.Name, orNone(c.opts.Base)))
			v.Next = "v" + t.Version.String()
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "the first release"
	}
	return s
}
