package apicompat

import (
	"context"
	"fmt"
	"go/token"
	"go/types"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/exp/apidiff"

	"github.com/relcheck/relcheck/report"
)

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
	// deprecated lists the identifiers of the base marked Deprecated at
	// head: a minor change (SemVer 2.0.0, item 7).
	deprecated []string
	// compat are the compat tests' figures, when they ran (compat.go).
	compat map[string]any
	// http are the head's HTTP API report lines (openapi.go).
	http []Feature
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

func (c *comparison) run(ctx context.Context) (*Result, error) {
	hist := &History{Root: c.opts.Root, Tags: c.opts.Tags}
	if rel, err := filepath.Rel(c.opts.Root, c.opts.ModDir); err == nil && rel != "." {
		hist.ModDir = filepath.ToSlash(rel)
	}
	c.notes = append(c.notes, c.head.Notes...)
	if c.base != nil {
		// The base's copy says the same of the same module (with its
		// replace made absolute): once is enough.
		same := func(n string) bool {
			_, tail, _ := strings.Cut(n, " does not exist here, so ")
			return slices.ContainsFunc(c.head.Notes, func(h string) bool { return strings.HasSuffix(h, " does not exist here, so "+tail) })
		}
		for _, n := range c.base.Notes {
			if !same(n) {
				c.notes = append(c.notes, "at the base: "+n)
			}
		}
	}
	if c.base != nil && c.base.Synthesized {
		c.notes = append(c.notes, fmt.Sprintf("%s has no go.mod; it was loaded with the go.mod of the working tree", c.opts.Base))
	}
	for _, rel := range sortedRels(c.base, c.head) {
		c.comparePackage(ctx, rel, hist)
	}
	if err := c.compareOpenAPI(ctx, hist); err != nil {
		return nil, err
	}
	c.reportFile()
	if c.opts.Config.CompatTests && c.base != nil && c.opts.Base != "" {
		c.compatTests(ctx)
	}
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
		if oldP != nil && !exp {
			c.newlyDeprecated(oldP, newP)
		}
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
			f.Fix = fmt.Sprintf("restore %s: %s (api.deprecation asks for %d release(s) and %d day(s) after the deprecation is released)", what, remaining(releases, days, min.MinReleases, min.MinDays, c.opts.Now, since), min.MinReleases, min.MinDays)
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
			next := fmt.Sprintf("%s/v%d", strings.TrimSuffix(c.head.Path, fmt.Sprintf("/v%d", c.opts.BaseVersion.Major())), c.opts.BaseVersion.Major()+1)
			if _, deprecated := oldP.docs.deprecated(sym); deprecated {
				f.Fix = fmt.Sprintf("restore %s: it is deprecated already, and at v1 and later a deprecated identifier stays until the next major version; remove it there (module path %s)", what, next)
			} else {
				f.Fix = fmt.Sprintf("restore %s and mark it // Deprecated: instead; remove it in the next major version (module path %s)", what, next)
			}
		} else if msg == "added" {
			f.Fix = "a method added to an interface breaks every implementation outside the package: define a new interface (embedding the old one) and check for it with a type assertion"
		} else {
			f.Fix = fmt.Sprintf("keep the old form and add the new one beside it, or release a new major version with module path /v%d", c.opts.BaseVersion.Major()+1)
		}
	}
}

// newlyDeprecated records the identifiers that existed at the base, not
// deprecated, and are marked Deprecated at head.
func (c *comparison) newlyDeprecated(oldP, newP *Package) {
	old := newDocIndexOnce(oldP)
	for _, s := range slices.Sorted(maps.Keys(newP.docs.docs)) {
		if !exportedSym(s) {
			continue
		}
		if _, ok := deprecation(newP.docs.docs[s].doc); !ok {
			continue
		}
		prev, existed := old.docs[s]
		if !existed {
			continue // new and deprecated at once: an addition
		}
		if _, was := deprecation(prev.doc); was {
			continue
		}
		c.deprecated = append(c.deprecated, newP.Path+"."+s)
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
