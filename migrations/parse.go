package migrations

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	pg "github.com/pganalyze/pg_query_go/v6"
	pgquery "github.com/wasilibs/go-pgquery"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The PostgreSQL parser is libpg_query, PostgreSQL's own grammar, run as
// WebAssembly (github.com/wasilibs/go-pgquery) so that relcheck keeps
// building without cgo. Its first use compiles the module (about two
// seconds on a small machine); warmParser starts that early, beside the
// database start.

var parserReady = sync.OnceFunc(func() { pgquery.Parse("SELECT 1") })

// warmParser compiles the parser in the background.
func warmParser() { go parserReady() }

// Stmt is one statement of a migration file.
type Stmt struct {
	// Line is the line of the statement's first token (comments before it
	// are not the statement).
	Line int
	// SQL is the statement's text.
	SQL string
	// Node is its parse tree: nil for SQLite files, and for files the
	// parser refused (the replay reports those).
	Node *pg.Node
	// Inner are the statements that run inside this one: the SQL of a DO
	// block's body, and of the PL/pgSQL or SQL functions it calls that the
	// migrations define.
	Inner []Stmt
	// Via says where an inner statement runs, for messages: "in the DO
	// block at line 12", "in function backfill() (called at line 30)".
	Via string
	// Loop is set on an inner statement that runs once per iteration of
	// a loop of its body.
	Loop bool
	// Dynamic is set on an EXECUTE of SQL built at run time, which cannot
	// be read before it runs (its locks are still traced).
	Dynamic bool
}

// parseFile splits a migration file into statements. PostgreSQL files are
// parsed with PostgreSQL's grammar; a file it refuses, and SQLite files, are
// split at top-level semicolons without parse trees.
func parseFile(dialect, text string) ([]Stmt, error) {
	if dialect != "postgres" {
		return splitOnly(text), nil
	}
	parserReady()
	res, err := pgquery.Parse(text)
	if err != nil {
		return splitOnly(text), err
	}
	var out []Stmt
	for _, raw := range res.Stmts {
		start, end := int(raw.StmtLocation), len(text)
		if raw.StmtLen > 0 {
			end = start + int(raw.StmtLen)
		}
		if start < 0 || start > len(text) || end > len(text) || start > end {
			continue
		}
		off := skipBlank(text, start)
		if off >= end {
			continue
		}
		st := Stmt{Line: lineAt(text, off), SQL: strings.TrimSpace(text[off:end]), Node: raw.Stmt}
		st.Inner = innerStatements(&st)
		out = append(out, st)
	}
	return out, nil
}

func splitOnly(text string) []Stmt {
	var out []Stmt
	for _, s := range SplitStatements(text) {
		out = append(out, Stmt{Line: s.Line, SQL: s.SQL})
	}
	return out
}

// skipBlank returns the offset of the first character at or after i that
// is neither white space nor inside a comment.
func skipBlank(s string, i int) int {
	for i < len(s) {
		switch {
		case s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f':
			i++
		case strings.HasPrefix(s[i:], "--"):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.HasPrefix(s[i:], "/*"):
			// PostgreSQL's block comments nest.
			depth := 0
			for i < len(s) {
				if strings.HasPrefix(s[i:], "/*") {
					depth++
					i += 2
				} else if strings.HasPrefix(s[i:], "*/") {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		default:
			return i
		}
	}
	return i
}

// lineAt is the 1-based line of byte offset off in s.
func lineAt(s string, off int) int { return 1 + strings.Count(s[:min(off, len(s))], "\n") }

// innerStatements finds the statements a DO block runs: its PL/pgSQL
// body's SQL statements, at their lines in the file.
func innerStatements(st *Stmt) []Stmt {
	do := st.Node.GetDoStmt()
	if do == nil {
		return nil
	}
	body, lang := "", "plpgsql"
	for _, a := range do.Args {
		d := a.GetDefElem()
		if d == nil {
			continue
		}
		switch d.Defname {
		case "as":
			body = d.Arg.GetString_().GetSval()
		case "language":
			lang = strings.ToLower(d.Arg.GetString_().GetSval())
		}
	}
	if lang != "plpgsql" || body == "" {
		return nil
	}
	line := st.Line
	if i := strings.Index(st.SQL, body); i >= 0 {
		line += strings.Count(st.SQL[:i], "\n")
	}
	return plpgsqlStatements(body, line, fmt.Sprintf("in the DO block at line %d", st.Line))
}

// plpgsqlStatements parses a PL/pgSQL body whose first line is file line
// first and returns the SQL statements it runs, each at its file line.
func plpgsqlStatements(body string, first int, via string) []Stmt {
	tag := "$relcheck$"
	for strings.Contains(body, tag) {
		tag = "$relcheck" + tag[1:]
	}
	js, err := pgquery.ParsePlPgSqlToJSON("CREATE FUNCTION relcheck_body() RETURNS void LANGUAGE plpgsql AS " + tag + body + tag)
	if err != nil {
		return nil
	}
	var tree any
	if json.Unmarshal([]byte(js), &tree) != nil {
		return nil
	}
	var out []Stmt
	var walk func(v any, loop bool)
	walk = func(v any, loop bool) {
		switch v := v.(type) {
		case []any:
			for _, x := range v {
				walk(x, loop)
			}
		case map[string]any:
			for k, x := range v {
				m, _ := x.(map[string]any)
				switch k {
				case "PLpgSQL_stmt_execsql", "PLpgSQL_stmt_perform", "PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_return_query":
					line := first + jsonInt(m["lineno"]) - 1
					q := exprQuery(m["sqlstmt"])
					if q == "" {
						q = exprQuery(m["expr"])
					}
					if q == "" {
						q = exprQuery(m["query"])
					}
					dynamic := k == "PLpgSQL_stmt_dynexecute"
					if dynamic {
						if lit, ok := sqlStringLiteral(q); ok {
							q, dynamic = lit, false
						}
					}
					if dynamic {
						out = append(out, Stmt{Line: line, SQL: q, Via: via, Loop: loop, Dynamic: true})
						continue
					}
					for _, in := range parseInner(q) {
						in.Line, in.Via, in.Loop = line, via, loop
						out = append(out, in)
					}
				case "PLpgSQL_stmt_loop", "PLpgSQL_stmt_while", "PLpgSQL_stmt_fori", "PLpgSQL_stmt_fors", "PLpgSQL_stmt_forc", "PLpgSQL_stmt_foreach_a", "PLpgSQL_stmt_dynfors":
					walk(m["body"], true)
				default:
					walk(x, loop)
				}
			}
		}
	}
	walk(tree, false)
	// The JSON's object keys come unordered: keep the body's order.
	sortStmts(out)
	return out
}

func sortStmts(s []Stmt) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Line < s[j-1].Line; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// parseInner parses the SQL of one statement of a function body.
func parseInner(q string) []Stmt {
	res, err := pgquery.Parse(q)
	if err != nil {
		return nil
	}
	var out []Stmt
	for _, raw := range res.Stmts {
		out = append(out, Stmt{SQL: q, Node: raw.Stmt})
	}
	return out
}

func exprQuery(v any) string {
	m, _ := v.(map[string]any)
	e, _ := m["PLpgSQL_expr"].(map[string]any)
	q, _ := e["query"].(string)
	return q
}

func jsonInt(v any) int {
	f, _ := v.(float64)
	return max(1, int(f))
}

// sqlStringLiteral returns the value of a string constant written in SQL
// ('…' with doubled quotes, or $tag$…$tag$).
func sqlStringLiteral(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		inner := s[1 : len(s)-1]
		if strings.Contains(strings.ReplaceAll(inner, "''", ""), "'") {
			return "", false // 'a' || 'b'
		}
		return strings.ReplaceAll(inner, "''", "'"), true
	}
	if m := dollarTag.FindString(s); m != "" && len(s) >= 2*len(m) && strings.HasSuffix(s, m) {
		inner := s[len(m) : len(s)-len(m)]
		if !strings.Contains(inner, m) {
			return inner, true
		}
	}
	return "", false
}

// function is a function or procedure defined by a migration.
type function struct {
	name string
	// body holds the statements it runs, lines relative to its body.
	body []Stmt
}

// definedFunction returns the function a CREATE FUNCTION/PROCEDURE
// statement defines, with the statements of its body (PL/pgSQL or SQL) at
// their lines in the file.
func definedFunction(st Stmt) *function {
	cf := st.Node.GetCreateFunctionStmt()
	if cf == nil || len(cf.Funcname) == 0 {
		return nil
	}
	name := strings.ToLower(cf.Funcname[len(cf.Funcname)-1].GetString_().GetSval())
	body, lang := "", ""
	for _, o := range cf.Options {
		d := o.GetDefElem()
		if d == nil {
			continue
		}
		switch d.Defname {
		case "as":
			if l := d.Arg.GetList(); l != nil && len(l.Items) > 0 {
				body = l.Items[0].GetString_().GetSval()
			}
		case "language":
			lang = strings.ToLower(d.Arg.GetString_().GetSval())
		}
	}
	f := &function{name: name}
	line := st.Line
	if i := strings.Index(st.SQL, body); i >= 0 && body != "" {
		line += strings.Count(st.SQL[:i], "\n")
	}
	via := fmt.Sprintf("in function %s()", name)
	switch lang {
	case "plpgsql":
		f.body = plpgsqlStatements(body, line, via)
	case "sql":
		if res, err := pgquery.Parse(body); err == nil {
			for _, raw := range res.Stmts {
				off := skipBlank(body, int(raw.StmtLocation))
				f.body = append(f.body, Stmt{Line: line + strings.Count(body[:min(off, len(body))], "\n"), SQL: body, Node: raw.Stmt, Via: via})
			}
		}
	}
	return f
}

// calledFunctions returns the names of the functions a statement calls
// (SELECT f(), PERFORM f(), CALL p(), f() in an expression).
func calledFunctions(n *pg.Node) []string {
	var out []string
	walkTree(n, func(m proto.Message) bool {
		var name []*pg.Node
		switch x := m.(type) {
		case *pg.FuncCall:
			name = x.Funcname
		case *pg.CallStmt:
			if x.Funccall != nil {
				name = x.Funccall.Funcname
			}
		}
		if len(name) > 0 {
			out = append(out, strings.ToLower(name[len(name)-1].GetString_().GetSval()))
		}
		return true
	})
	return out
}

// expandCalls adds to each statement (and the statements of DO blocks) the
// body statements of the functions it calls that migrations define, as
// inner statements at the call's line. Calls nest up to a few levels.
func expandCalls(stmts []Stmt, funcs map[string]*function) {
	var expand func(st *Stmt, depth int) []Stmt
	expand = func(st *Stmt, depth int) []Stmt {
		if st.Node == nil || depth > 3 {
			return nil
		}
		var out []Stmt
		for _, name := range calledFunctions(st.Node) {
			f := funcs[name]
			if f == nil {
				continue
			}
			for _, b := range f.body {
				in := b
				in.Line = st.Line
				in.Via = fmt.Sprintf("in function %s() (called at line %d)", f.name, st.Line)
				in.Loop = in.Loop || st.Loop
				out = append(out, in)
				out = append(out, expand(&in, depth+1)...)
			}
		}
		return out
	}
	for i := range stmts {
		st := &stmts[i]
		var extra []Stmt
		for j := range st.Inner {
			extra = append(extra, st.Inner[j])
			extra = append(extra, expand(&st.Inner[j], 1)...)
		}
		extra = append(extra, expand(st, 1)...)
		st.Inner = extra
	}
}

// walkTree calls fn for every message of a parse tree, depth first, until
// fn returns false for a message (its children are then skipped).
func walkTree(root proto.Message, fn func(proto.Message) bool) {
	if root == nil {
		return
	}
	var visit func(m protoreflect.Message)
	visit = func(m protoreflect.Message) {
		if !m.IsValid() || !fn(m.Interface()) {
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					visit(l.Get(i).Message())
				}
			case fd.IsMap():
			case fd.Message() != nil:
				visit(v.Message())
			}
			return true
		})
	}
	visit(root.ProtoReflect())
}

// relName is the table a RangeVar names, without its schema, lower case
// as PostgreSQL folds unquoted names.
func relName(rv *pg.RangeVar) string {
	if rv == nil {
		return ""
	}
	return rv.Relname
}
