package apicompat

import (
	"fmt"
	"go/types"
	"slices"
	"sort"
	"strings"
)

// Type parameter rules: what apidiff does not see. apidiff drops the type
// parameters of function signatures before comparing them, so
// F[T any] → F[T comparable] passes although every caller instantiating F
// with a slice or map breaks; and it calls any constraint change of a generic
// type incompatible, also one that only widens the type set.

// typeSet is a comparable description of a constraint's type set, built from
// strings so that it works across two separately loaded packages.
type typeSet struct {
	comparable bool
	methods    map[string]string // name → signature
	terms      []term            // nil: every type (no type terms)
}

type term struct {
	tilde bool
	typ   string // the type, qualified by package path
	under string // its underlying type
}

func qualifier(p *types.Package) string { return p.Path() }

func constraintSet(t types.Type) typeSet {
	ts := typeSet{methods: map[string]string{}}
	iface, ok := t.Underlying().(*types.Interface)
	if !ok {
		ts.terms = []term{{typ: types.TypeString(t, qualifier), under: types.TypeString(t.Underlying(), qualifier)}}
		ts.comparable = types.Comparable(t)
		return ts
	}
	ts.comparable = iface.IsComparable()
	for i := 0; i < iface.NumMethods(); i++ {
		m := iface.Method(i)
		ts.methods[m.Id()] = types.TypeString(m.Type(), qualifier)
	}
	for i := 0; i < iface.NumEmbeddeds(); i++ {
		ts.terms = intersect(ts.terms, embeddedTerms(iface.EmbeddedType(i)))
	}
	return ts
}

// embeddedTerms returns the terms an embedded constraint element allows (nil:
// all types).
func embeddedTerms(t types.Type) []term {
	switch e := t.(type) {
	case *types.Union:
		var out []term
		for i := 0; i < e.Len(); i++ {
			tm := e.Term(i)
			if _, isIface := tm.Type().Underlying().(*types.Interface); isIface {
				sub := constraintSet(tm.Type()).terms
				if sub == nil {
					return nil
				}
				out = append(out, sub...)
				continue
			}
			out = append(out, term{tilde: tm.Tilde(), typ: types.TypeString(tm.Type(), qualifier), under: types.TypeString(tm.Type().Underlying(), qualifier)})
		}
		return out
	default:
		if _, isIface := t.Underlying().(*types.Interface); isIface {
			return constraintSet(t).terms
		}
		return []term{{typ: types.TypeString(t, qualifier), under: types.TypeString(t.Underlying(), qualifier)}}
	}
}

// covers reports whether term a admits every type term b admits.
func (a term) covers(b term) bool {
	if a.tilde {
		if b.tilde {
			return a.typ == b.typ
		}
		return a.typ == b.under
	}
	return !b.tilde && a.typ == b.typ
}

func intersect(a, b []term) []term {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	var out []term
	for _, x := range a {
		for _, y := range b {
			switch {
			case y.covers(x):
				out = append(out, x)
			case x.covers(y):
				out = append(out, y)
			}
		}
	}
	if out == nil {
		out = []term{} // empty type set, but not "all types"
	}
	return out
}

// subset reports whether every type in a is also in b.
func (a typeSet) subset(b typeSet) bool {
	if b.comparable && !a.comparable {
		return false
	}
	for id, sig := range b.methods {
		if a.methods[id] != sig {
			return false
		}
	}
	if b.terms == nil {
		return true
	}
	if a.terms == nil {
		return false
	}
	for _, x := range a.terms {
		ok := false
		for _, y := range b.terms {
			if y.covers(x) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// lost says what a admits that b does not: type-set terms b drops, a
// comparable requirement or methods b adds ("~float64, method String()
// string"); empty when a is a subset of b.
func (a typeSet) lost(b typeSet) []string {
	var out []string
	if b.comparable && !a.comparable {
		out = append(out, "now comparable only")
	}
	var ids []string
	for id := range b.methods {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if a.methods[id] != b.methods[id] {
			out = append(out, fmt.Sprintf("method %s%s now required", id, strings.TrimPrefix(b.methods[id], "func")))
		}
	}
	switch {
	case b.terms == nil:
	case a.terms == nil:
		out = append(out, "no longer any type: only "+termList(b.terms))
	default:
		var gone []term
		for _, x := range a.terms {
			switch {
			case slices.ContainsFunc(b.terms, func(y term) bool { return y.covers(x) }):
			case x.tilde && slices.ContainsFunc(b.terms, func(y term) bool { return !y.tilde && y.typ == x.typ }):
				out = append(out, fmt.Sprintf("~%s narrowed to %s (other types whose underlying type is %s dropped)", x.typ, x.typ, x.typ))
			default:
				gone = append(gone, x)
			}
		}
		if len(gone) > 0 {
			out = append(out, termList(gone)+" dropped")
		}
	}
	return out
}

// gained says what b admits that a does not, for a widened constraint.
func (a typeSet) gained(b typeSet) []string {
	var out []string
	if a.comparable && !b.comparable {
		out = append(out, "no longer comparable only")
	}
	var ids []string
	for id := range a.methods {
		if b.methods[id] != a.methods[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		out = append(out, fmt.Sprintf("method %s no longer required", id))
	}
	switch {
	case a.terms == nil:
	case b.terms == nil:
		out = append(out, "any type admitted")
	default:
		var added []term
		for _, y := range b.terms {
			if !slices.ContainsFunc(a.terms, func(x term) bool { return x.covers(y) }) {
				added = append(added, y)
			}
		}
		if len(added) > 0 {
			out = append(out, termList(added)+" admitted")
		}
	}
	return out
}

func termList(ts []term) string {
	var out []string
	for _, t := range ts {
		s := t.typ
		if t.tilde {
			s = "~" + s
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return "no type"
	}
	return strings.Join(out, " | ")
}

// tparamChange is what changed in a type parameter list.
type tparamChange struct {
	incompatible bool
	msg          string
}

// compareTypeParams compares the type parameter lists of an old and a new
// declaration by position (names do not matter to callers). It returns nil
// when nothing changed that matters. sigChanged says whether apidiff saw the
// declaration's signature or type change, which a reordering shows up as.
func compareTypeParams(oldT, newT *types.TypeParamList, sigChanged bool) *tparamChange {
	on, nn := oldT.Len(), newT.Len()
	if on == 0 && nn == 0 {
		return nil
	}
	qual := func(p *types.Package) string { return p.Name() }
	if on != nn {
		return &tparamChange{true, fmt.Sprintf("type parameters changed from %s to %s: the number changed, so explicit instantiations break",
			listOrNone(tparamString(oldT, qual)), listOrNone(tparamString(newT, qual)))}
	}
	// Same names in another order: explicit instantiations now bind the
	// arguments to different parameters.
	var oldNames, newNames []string
	for i := 0; i < on; i++ {
		oldNames = append(oldNames, oldT.At(i).Obj().Name())
		newNames = append(newNames, newT.At(i).Obj().Name())
	}
	if sigChanged && strings.Join(oldNames, ",") != strings.Join(newNames, ",") && sameSet(oldNames, newNames) {
		return &tparamChange{true, fmt.Sprintf("type parameters reordered from %s to %s: explicit instantiations bind their arguments to different parameters",
			tparamString(oldT, qual), tparamString(newT, qual))}
	}
	var shrunk, widened []string
	for i := 0; i < on; i++ {
		os, ns := constraintSet(oldT.At(i).Constraint()), constraintSet(newT.At(i).Constraint())
		oc := types.TypeString(oldT.At(i).Constraint(), qual)
		nc := types.TypeString(newT.At(i).Constraint(), qual)
		switch {
		case !os.subset(ns):
			shrunk = append(shrunk, fmt.Sprintf("%s from %s to %s: %s", newT.At(i).Obj().Name(), oc, nc, strings.Join(os.lost(ns), ", ")))
		case !ns.subset(os):
			widened = append(widened, fmt.Sprintf("%s from %s to %s: %s", newT.At(i).Obj().Name(), oc, nc, strings.Join(os.gained(ns), ", ")))
		}
	}
	if len(shrunk) > 0 {
		return &tparamChange{true, fmt.Sprintf("type parameter constraint tightened (%s): its type set shrank, so instantiations with types it no longer admits break",
			strings.Join(shrunk, "; "))}
	}
	if len(widened) > 0 {
		return &tparamChange{false, fmt.Sprintf("type parameter constraint widened (%s)", strings.Join(widened, "; "))}
	}
	return nil
}

func listOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func sameSet(a, b []string) bool {
	x := append([]string(nil), a...)
	y := append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	return strings.Join(x, ",") == strings.Join(y, ",")
}

// extraChange is a change found by one of relcheck's own rules.
type extraChange struct {
	symbol       string
	incompatible bool
	removal      bool
	msg          string
}

// genericChanges compares the type parameters of the generic functions,
// types and aliases two versions of a package have in common. mentioned holds
// the top-level names apidiff reported a change for.
func genericChanges(oldP, newP *types.Package, mentioned map[string]bool) []extraChange {
	var out []extraChange
	add := func(name string, o, n *types.TypeParamList) {
		if c := compareTypeParams(o, n, mentioned[name]); c != nil {
			out = append(out, extraChange{symbol: name, incompatible: c.incompatible, msg: c.msg})
		}
	}
	for _, name := range oldP.Scope().Names() {
		oo := oldP.Scope().Lookup(name)
		no := newP.Scope().Lookup(name)
		if !oo.Exported() || no == nil {
			continue
		}
		switch o := oo.(type) {
		case *types.Func:
			if n, ok := no.(*types.Func); ok {
				add(name, o.Type().(*types.Signature).TypeParams(), n.Type().(*types.Signature).TypeParams())
			}
		case *types.TypeName:
			n, ok := no.(*types.TypeName)
			if !ok {
				continue
			}
			if oa, ok := o.Type().(*types.Alias); ok {
				if na, ok := n.Type().(*types.Alias); ok {
					add(name, oa.TypeParams(), na.TypeParams())
				}
				continue
			}
			on, ok1 := o.Type().(*types.Named)
			nn, ok2 := n.Type().(*types.Named)
			if ok1 && ok2 && !n.IsAlias() {
				add(name, on.TypeParams(), nn.TypeParams())
			}
		}
	}
	return out
}

// interfaceRemovals finds methods an exported interface lost that apidiff
// does not report: apidiff misses methods that came from an embedded
// interface of another package (interface{ io.Reader; io.Writer } losing
// io.Writer), so code calling them breaks silently.
func interfaceRemovals(oldP, newP *types.Package, mentioned map[string]bool) []extraChange {
	var out []extraChange
	for _, name := range oldP.Scope().Names() {
		ot, ok1 := oldP.Scope().Lookup(name).(*types.TypeName)
		nt, ok2 := newP.Scope().Lookup(name).(*types.TypeName)
		if !ok1 || !ok2 || !ot.Exported() || mentioned[name] {
			continue
		}
		oi, ok1 := ot.Type().Underlying().(*types.Interface)
		ni, ok2 := nt.Type().Underlying().(*types.Interface)
		if !ok1 || !ok2 {
			continue
		}
		have := map[string]bool{}
		for i := 0; i < ni.NumMethods(); i++ {
			have[ni.Method(i).Name()] = true
		}
		for i := 0; i < oi.NumMethods(); i++ {
			m := oi.Method(i)
			sym := name + "." + m.Name()
			if m.Exported() && !have[m.Name()] && !mentioned[sym] {
				out = append(out, extraChange{symbol: sym, incompatible: true, removal: true,
					msg: "removed (it came from an embedded interface, which apidiff does not check)"})
			}
		}
	}
	return out
}
