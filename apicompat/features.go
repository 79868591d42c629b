package apicompat

import (
	"bufio"
	"bytes"
	"fmt"
	"go/token"
	"go/types"
	"sort"
	"strings"

	"github.com/relcheck/relcheck/report"
)

// Feature is one exported element of a package's API, one line of the API
// report file.
type Feature struct {
	Pkg        string // import path
	Symbol     string // "F", "T", "T.M", "T.Field"
	Line       string // the report line, e.g. "pkg example.com/lib, func Parse(string) (*T, error)"
	Deprecated bool
	Pos        token.Pos
	// Loc is where a feature outside Go is declared (an operation of an
	// OpenAPI document).
	Loc *report.Location
}

// String is the feature's line in the API report file.
func (f Feature) String() string {
	if f.Deprecated {
		return f.Line + " //deprecated"
	}
	return f.Line
}

// Features lists the exported API of a package in a stable order. Struct
// headers ("type T struct") are features too, so that the file shows every
// type.
func (p *Package) Features() []Feature {
	if p.features == nil {
		p.features = p.computeFeatures()
	}
	return p.features
}

func (p *Package) computeFeatures() []Feature {
	if p.docs == nil {
		p.docs = newDocIndex(p.Files)
	}
	qual := types.RelativeTo(p.Types)
	var out []Feature
	add := func(sym, line string, pos token.Pos) {
		_, dep := p.docs.deprecated(sym)
		out = append(out, Feature{Pkg: p.Path, Symbol: sym, Line: "pkg " + p.Path + ", " + line, Deprecated: dep, Pos: pos})
	}
	scope := p.Types.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		switch o := obj.(type) {
		case *types.Const:
			add(name, fmt.Sprintf("const %s %s", name, types.TypeString(o.Type(), qual)), o.Pos())
		case *types.Var:
			add(name, fmt.Sprintf("var %s %s", name, types.TypeString(o.Type(), qual)), o.Pos())
		case *types.Func:
			sig := o.Type().(*types.Signature)
			add(name, "func "+name+tparamString(sig.TypeParams(), qual)+sigString(sig, qual), o.Pos())
		case *types.TypeName:
			typeFeatures(o, qual, add)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

func typeFeatures(o *types.TypeName, qual types.Qualifier, add func(sym, line string, pos token.Pos)) {
	name := o.Name()
	if o.IsAlias() {
		rhs := types.Unalias(o.Type())
		if a, ok := o.Type().(*types.Alias); ok {
			rhs = a.Rhs()
		}
		add(name, fmt.Sprintf("type %s = %s", name, types.TypeString(rhs, qual)), o.Pos())
		return
	}
	named, ok := o.Type().(*types.Named)
	if !ok {
		return
	}
	head := name + tparamString(named.TypeParams(), qual)
	switch u := named.Underlying().(type) {
	case *types.Struct:
		add(name, "type "+head+" struct", o.Pos())
		for i := 0; i < u.NumFields(); i++ {
			f := u.Field(i)
			if !f.Exported() {
				continue
			}
			line := fmt.Sprintf("type %s struct, %s %s", head, f.Name(), types.TypeString(f.Type(), qual))
			if f.Embedded() {
				line = fmt.Sprintf("type %s struct, embedded %s", head, types.TypeString(f.Type(), qual))
			}
			add(name+"."+f.Name(), line, f.Pos())
		}
	case *types.Interface:
		var names []string
		for i := 0; i < u.NumMethods(); i++ {
			m := u.Method(i)
			if m.Exported() {
				names = append(names, m.Name())
			} else {
				names = append(names, "unexported methods")
			}
		}
		sort.Strings(names)
		names = dedup(names)
		add(name, fmt.Sprintf("type %s interface { %s }", head, strings.Join(names, ", ")), o.Pos())
		for i := 0; i < u.NumExplicitMethods(); i++ {
			m := u.ExplicitMethod(i)
			if !m.Exported() {
				continue
			}
			add(name+"."+m.Name(), fmt.Sprintf("type %s interface, %s%s", head, m.Name(), sigString(m.Type().(*types.Signature), qual)), m.Pos())
		}
		if u.NumEmbeddeds() > 0 {
			for i := 0; i < u.NumEmbeddeds(); i++ {
				add(name, fmt.Sprintf("type %s interface, embedded %s", head, types.TypeString(u.EmbeddedType(i), qual)), o.Pos())
			}
		}
	default:
		add(name, fmt.Sprintf("type %s %s", head, types.TypeString(u, qual)), o.Pos())
	}
	for i := 0; i < named.NumMethods(); i++ {
		m := named.Method(i)
		if !m.Exported() {
			continue
		}
		sig := m.Type().(*types.Signature)
		recv := name
		if rt := sig.Recv(); rt != nil {
			if _, ptr := rt.Type().(*types.Pointer); ptr {
				recv = "*" + name
			}
		}
		add(name+"."+m.Name(), fmt.Sprintf("method (%s) %s%s", recv, m.Name(), sigString(sig, qual)), m.Pos())
	}
}

func dedup(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// tparamString renders a type parameter list, "[K comparable, V any]".
func tparamString(tps *types.TypeParamList, qual types.Qualifier) string {
	if tps == nil || tps.Len() == 0 {
		return ""
	}
	parts := make([]string, tps.Len())
	for i := 0; i < tps.Len(); i++ {
		tp := tps.At(i)
		parts[i] = tp.Obj().Name() + " " + types.TypeString(tp.Constraint(), qual)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// sigString renders a signature without parameter names, like Go's api files:
// "(string, ...int) (*T, error)".
func sigString(sig *types.Signature, qual types.Qualifier) string {
	var b strings.Builder
	b.WriteString("(")
	for i := 0; i < sig.Params().Len(); i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		t := sig.Params().At(i).Type()
		if sig.Variadic() && i == sig.Params().Len()-1 {
			if s, ok := t.(*types.Slice); ok {
				b.WriteString("..." + types.TypeString(s.Elem(), qual))
				continue
			}
		}
		b.WriteString(types.TypeString(t, qual))
	}
	b.WriteString(")")
	switch n := sig.Results().Len(); n {
	case 0:
	case 1:
		b.WriteString(" " + types.TypeString(sig.Results().At(0).Type(), qual))
	default:
		b.WriteString(" (")
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(types.TypeString(sig.Results().At(i).Type(), qual))
		}
		b.WriteString(")")
	}
	return b.String()
}

// FormatReport renders features as the API report file: a header comment and
// one sorted line per feature.
func FormatReport(modPath string, features []Feature) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# API of %s, one line per exported feature.\n", modPath)
	b.WriteString("# Written by `relcheck api update`; `relcheck check api` fails when the code differs.\n")
	lines := make([]string, 0, len(features))
	for _, f := range features {
		lines = append(lines, f.String())
	}
	sort.Strings(lines)
	for i, l := range lines {
		if i > 0 && l == lines[i-1] {
			continue
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ReportLine is one feature line read from an API report file.
type ReportLine struct {
	Text string
	Line int
}

// ParseReport reads an API report file: blank lines and lines starting with
// "#" are ignored; every other line must be a feature line "pkg PATH, ...".
func ParseReport(data []byte) ([]ReportLine, error) {
	var out []ReportLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		l := strings.TrimRight(sc.Text(), " \t\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		rest, ok := strings.CutPrefix(l, "pkg ")
		if !ok {
			rest, ok = strings.CutPrefix(l, "http ") // an api.openapi document's line
		}
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not a feature line (want \"pkg PATH, ...\" or \"http DOCUMENT, ...\")", n, l)
		}
		path, feature, ok := strings.Cut(rest, ", ")
		if !ok || path == "" || strings.ContainsAny(path, " \t") || strings.TrimSpace(feature) == "" {
			return nil, fmt.Errorf("line %d: %q is not a feature line (want \"pkg PATH, ...\" or \"http DOCUMENT, ...\")", n, l)
		}
		out = append(out, ReportLine{Text: l, Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return out, nil
}
