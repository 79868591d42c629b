package apicompat

import (
	"go/ast"
	"go/token"
	"regexp"
	"strings"
)

// docIndex maps a symbol within a package ("F", "T", "T.M", "T.Field") to
// its doc comment and position, from the syntax trees. It works without type
// information, so it can also read packages at older release tags.
type docIndex struct {
	docs map[string]docEntry
	// pkgDoc is the package comment.
	pkgDoc string
}

type docEntry struct {
	doc string
	pos token.Pos
}

func newDocIndex(files []*ast.File) *docIndex {
	ix := &docIndex{docs: map[string]docEntry{}}
	add := func(sym string, pos token.Pos, groups ...*ast.CommentGroup) {
		var b strings.Builder
		for _, g := range groups {
			if g != nil {
				b.WriteString(g.Text())
				b.WriteString("\n")
			}
		}
		ix.docs[sym] = docEntry{doc: b.String(), pos: pos}
	}
	for _, f := range files {
		if f.Doc != nil && ix.pkgDoc == "" {
			ix.pkgDoc = f.Doc.Text()
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				name := d.Name.Name
				if d.Recv != nil && len(d.Recv.List) == 1 {
					name = recvName(d.Recv.List[0].Type) + "." + name
				}
				add(name, d.Name.Pos(), d.Doc)
			case *ast.GenDecl:
				for _, s := range d.Specs {
					// A lone spec without parentheses carries the doc on the decl.
					var outer *ast.CommentGroup
					if !d.Lparen.IsValid() {
						outer = d.Doc
					}
					switch s := s.(type) {
					case *ast.TypeSpec:
						add(s.Name.Name, s.Name.Pos(), outer, s.Doc)
						addMembers(ix, s.Name.Name, s.Type, add)
					case *ast.ValueSpec:
						for _, n := range s.Names {
							add(n.Name, n.Pos(), outer, s.Doc)
						}
					}
				}
			}
		}
	}
	return ix
}

func addMembers(ix *docIndex, typ string, t ast.Expr, add func(string, token.Pos, ...*ast.CommentGroup)) {
	var fields *ast.FieldList
	switch t := t.(type) {
	case *ast.StructType:
		fields = t.Fields
	case *ast.InterfaceType:
		fields = t.Methods
	default:
		return
	}
	for _, f := range fields.List {
		for _, n := range f.Names {
			add(typ+"."+n.Name, n.Pos(), f.Doc, f.Comment)
		}
		if len(f.Names) == 0 { // embedded
			name := recvName(f.Type)
			if i := strings.LastIndexByte(name, '.'); i >= 0 {
				name = name[i+1:]
			}
			add(typ+"."+name, f.Type.Pos(), f.Doc, f.Comment)
		}
	}
}

// recvName returns the base type name of a receiver or embedded type expression.
func recvName(e ast.Expr) string {
	for {
		switch t := e.(type) {
		case *ast.StarExpr:
			e = t.X
		case *ast.ParenExpr:
			e = t.X
		case *ast.IndexExpr:
			e = t.X
		case *ast.IndexListExpr:
			e = t.X
		case *ast.SelectorExpr:
			return recvName(t.X) + "." + t.Sel.Name
		case *ast.Ident:
			return t.Name
		default:
			return ""
		}
	}
}

var deprecatedPara = regexp.MustCompile(`(?m)(?:\A|\n\n)Deprecated: ?(.*(?:\n.+)*)`)

// deprecation returns the text of a "Deprecated:" paragraph in a doc comment.
func deprecation(doc string) (string, bool) {
	m := deprecatedPara.FindStringSubmatch(doc)
	if m == nil {
		return "", false
	}
	return strings.TrimSpace(strings.ReplaceAll(m[1], "\n", " ")), true
}

// deprecated reports whether sym is marked deprecated, directly or through
// the type it belongs to, and gives the note.
func (ix *docIndex) deprecated(sym string) (string, bool) {
	if ix == nil {
		return "", false
	}
	for s := sym; s != ""; {
		if note, ok := deprecation(ix.docs[s].doc); ok {
			return note, true
		}
		i := strings.LastIndexByte(s, '.')
		if i < 0 {
			break
		}
		s = s[:i]
	}
	if note, ok := deprecation(ix.pkgDoc); ok {
		return note, true
	}
	return "", false
}

func (ix *docIndex) has(sym string) bool {
	_, ok := ix.docs[sym]
	return ok
}

var hintWords = regexp.MustCompile(`(?i)\b(use|using|instead|replaced|replacement|prefer|see|call|switch|migrate|moved)\b|\[[^\]]+\]`)

// hasReplacementHint reports whether a deprecation note tells callers what to
// do instead.
func hasReplacementHint(note string) bool {
	return hintWords.MatchString(negations.ReplaceAllString(note, ""))
}

// negations are the phrases that forbid rather than point somewhere: "do
// not use.", "should not be used", "never call it".
var negations = regexp.MustCompile(`(?i)\b(do not|don't|dont|never|should not|shouldn't|must not|no longer|not to)\s+(be\s+)?(use|used|using|call|called)\b`)

// normSym turns apidiff's object names ("(*T).M", "T.M", "F") into the
// docIndex form ("T.M", "F").
func normSym(s string) string {
	s = strings.TrimPrefix(s, "(*")
	s = strings.Replace(s, ")", "", 1)
	// Receivers of generic types: "Box[T].Get" → "Box.Get".
	for {
		i := strings.IndexByte(s, '[')
		if i < 0 {
			return s
		}
		depth, j := 0, i
		for ; j < len(s); j++ {
			if s[j] == '[' {
				depth++
			} else if s[j] == ']' {
				depth--
				if depth == 0 {
					break
				}
			}
		}
		if j >= len(s) {
			return s
		}
		s = s[:i] + s[j+1:]
	}
}

// topSym returns the package-level name of a symbol ("T" for "T.M").
func topSym(s string) string {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i]
	}
	return s
}
