package migrations

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// Statement is one SQL statement of a migration file.
type Statement struct {
	SQL  string
	Line int // line of its first non-blank character
}

// SplitStatements splits SQL text at semicolons that are outside quotes,
// dollar quotes and comments, keeping each statement's line.
func SplitStatements(sql string) []Statement {
	var out []Statement
	var cur strings.Builder
	line, start := 1, 0
	flush := func() {
		s := strings.TrimSpace(cur.String())
		if s != "" {
			out = append(out, Statement{SQL: s, Line: start})
		}
		cur.Reset()
		start = 0
	}
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		mark := func() {
			if start == 0 && c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				start = line
			}
		}
		switch {
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			if i < len(sql) {
				line++
				cur.WriteByte('\n')
			}
			continue
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			i += 2
			for i+1 < len(sql) && !(sql[i] == '*' && sql[i+1] == '/') {
				if sql[i] == '\n' {
					line++
				}
				i++
			}
			i++
			continue
		case c == '\'' || c == '"':
			mark()
			q := c
			cur.WriteByte(c)
			for i++; i < len(sql); i++ {
				cur.WriteByte(sql[i])
				if sql[i] == '\n' {
					line++
				}
				if sql[i] == q {
					if i+1 < len(sql) && sql[i+1] == q { // doubled quote
						i++
						cur.WriteByte(q)
						continue
					}
					break
				}
			}
			continue
		case c == '$':
			if m := dollarTag.FindString(sql[i:]); m != "" {
				mark()
				body := sql[i:]
				if end := strings.Index(sql[i+len(m):], m); end >= 0 {
					body = sql[i : i+len(m)+end+len(m)]
				}
				cur.WriteString(body)
				line += strings.Count(body, "\n")
				i += len(body) - 1
				continue
			}
		case c == ';':
			flush()
			continue
		case c == '\n':
			line++
		}
		mark()
		cur.WriteByte(c)
	}
	flush()
	return out
}

var dollarTag = regexp.MustCompile(`^\$[A-Za-z_]*\$`)

// LockIssue is what the rules say about one statement of a migration file
// (run by golang-migrate as one transaction) that blocks reads or writes
// of tables that already held rows, or holds them for long, where a safe
// multi-step form exists.
type LockIssue struct {
	Line     int
	Table    string
	Severity string // "error" or "warning"
	Msg      string
	Fix      string
}

// lintInput is what the rules read about one new migration file.
type lintInput struct {
	stmts []Stmt
	// populated reports whether a table existed at the base (it holds
	// rows in production); large whether migrations.sizes declares it
	// big enough that some transaction always holds it.
	populated, large func(table string) bool
	// checks lists "table.col" with a validated CHECK (col IS NOT NULL)
	// at the base.
	checks map[string]bool
	// trace is the file run statement by statement (locks, rewrites);
	// nil when it could not be.
	trace *quietRun
}

// largeRows is the declared size (migrations.sizes) from which a table is
// busy enough that a strong lock taken without a lock_timeout is an
// error: some transaction always holds such a table, and the migration
// and every query after it queue behind that transaction.
const largeRows = 10_000

// lint applies the locking rules to one file's statements, in order, with
// the statements inside DO blocks and called functions where they run. It
// returns the issues and notes about what could not be read.
func lint(in lintInput) ([]LockIssue, []string) {
	var out []LockIssue
	var notes []string
	timeout := false
	locked := map[string]bool{}   // tables this transaction holds with a lock that blocks the application
	notValid := map[string]bool{} // constraints added NOT VALID in this file
	strong := false               // such a lock is held: later data changes keep it held
	changed := map[string]int{}   // tables whose rows this file changed, at the line of the first change
	populated := func(t string) bool { return t != "" && in.populated(t) }
	add := func(li LockIssue) { out = append(out, li) }
	lockIssue := func(line int, what, table, mode string) {
		li := LockIssue{Line: line, Table: table, Severity: "warning",
			Msg: fmt.Sprintf("%s takes %s %s lock without a lock_timeout: if a long query holds the table, the migration queues behind it and every other query queues behind the migration", what, article(mode), modeName(mode)),
			Fix: "start the file with SET lock_timeout = '2s' (and retry the deploy) so a busy table cannot stall the application"}
		if in.large(table) {
			li.Severity = "error"
			li.Msg += fmt.Sprintf(" (%s is declared large in migrations.sizes: on a table that busy, some transaction always holds it)", table)
		}
		add(li)
	}
	for _, st := range in.stmts {
		if d, ok, isSet := lockTimeoutSet(st); isSet {
			timeout = ok && d > 0
			continue
		}
		explained := map[string]bool{} // tables whose blocking lock this statement's own finding explains
		for i, u := range append([]Stmt{st}, st.Inner...) {
			line, pre := st.Line, ""
			if i > 0 {
				line, pre = u.Line, u.Via+": "
			}
			if u.Dynamic {
				notes = append(notes, fmt.Sprintf("line %d: %sEXECUTE of SQL built at run time (%s) cannot be read before it runs; the locks it takes are traced when the migration runs", line, pre, abbreviate(u.SQL, 60)))
				continue
			}
			n := u.Node
			if ix := n.GetIndexStmt(); ix != nil && populated(relName(ix.Relation)) {
				t := relName(ix.Relation)
				if !ix.Concurrent {
					explained[t] = true
					add(LockIssue{Line: line, Table: t, Severity: "error",
						Msg: fmt.Sprintf("%sCREATE INDEX on %s takes a SHARE lock: every write to the table waits until the whole index is built", pre, t),
						Fix: "use CREATE INDEX CONCURRENTLY, alone in its own migration file (it cannot run inside golang-migrate's transaction with other statements)"})
				} else if len(in.stmts) > 1 {
					add(LockIssue{Line: line, Table: t, Severity: "error",
						Msg: "CREATE INDEX CONCURRENTLY is not alone in its file: golang-migrate runs the file as one transaction, where CONCURRENTLY cannot run",
						Fix: "move it into a migration file of its own"})
				}
			}
			if at := n.GetAlterTableStmt(); at != nil && populated(relName(at.Relation)) {
				t := relName(at.Relation)
				for _, c := range at.Cmds {
					cmd := c.GetAlterTableCmd()
					switch cmd.GetSubtype() {
					case pg.AlterTableType_AT_AddConstraint:
						con := cmd.GetDef().GetConstraint()
						kind := constraintKinds[con.GetContype()]
						switch con.GetContype() {
						case pg.ConstrType_CONSTR_FOREIGN, pg.ConstrType_CONSTR_CHECK:
							if con.GetSkipValidation() {
								notValid[con.GetConname()] = true
								continue
							}
							add(LockIssue{Line: line, Table: t, Severity: "error",
								Msg: fmt.Sprintf("%sADD %s on %s checks every existing row while holding a lock that blocks writes", pre, kind, t),
								Fix: "add it NOT VALID in this migration, and VALIDATE CONSTRAINT in a separate migration (validation then takes only a SHARE UPDATE EXCLUSIVE lock)"})
						case pg.ConstrType_CONSTR_UNIQUE, pg.ConstrType_CONSTR_PRIMARY:
							if con.GetIndexname() == "" {
								add(LockIssue{Line: line, Table: t, Severity: "error",
									Msg: fmt.Sprintf("%sADD %s on %s builds its index under an ACCESS EXCLUSIVE lock", pre, kind, t),
									Fix: "CREATE UNIQUE INDEX CONCURRENTLY in its own migration, then ADD CONSTRAINT … USING INDEX"})
							}
						}
					case pg.AlterTableType_AT_ValidateConstraint:
						if notValid[cmd.Name] {
							add(LockIssue{Line: line, Table: t, Severity: "error",
								Msg: fmt.Sprintf("%sconstraint %s is added NOT VALID and validated in the same file: the validation runs while the transaction still holds the lock of the ADD", pre, cmd.Name),
								Fix: "move VALIDATE CONSTRAINT into a separate, later migration"})
						}
					case pg.AlterTableType_AT_SetNotNull:
						if !in.checks[t+"."+cmd.Name] {
							add(LockIssue{Line: line, Table: t, Severity: "error",
								Msg: fmt.Sprintf("%sSET NOT NULL on %s.%s scans the whole table under an ACCESS EXCLUSIVE lock", pre, t, cmd.Name),
								Fix: fmt.Sprintf("first ADD CONSTRAINT … CHECK (%s IS NOT NULL) NOT VALID, VALIDATE it in a later migration; then SET NOT NULL uses the check and does not scan", cmd.Name)})
						}
					}
				}
			}
			for _, e := range effects(n) {
				if !populated(e.table) {
					continue
				}
				if e.dml {
					switch {
					case strong:
						add(LockIssue{Line: line, Table: e.table, Severity: "error",
							Msg: pre + "a data backfill runs in the same file (one transaction) as DDL before it: the DDL's lock is held until the backfill ends",
							Fix: "move the backfill into a migration of its own and update in batches (e.g. 10,000 rows per statement)"})
					case u.Loop:
						add(LockIssue{Line: line, Table: e.table, Severity: "warning",
							Msg: fmt.Sprintf("%schanges %s row by row in a loop, all in the file's one transaction: every row it touched stays locked until the end, and a statement per row is slow on a big table", pre, e.table),
							Fix: "change the rows with one set-based statement per batch (e.g. UPDATE … WHERE id BETWEEN …), each batch in its own migration or done by the application"})
					}
				}
				if conflictsWithApp(e.mode) && !locked[e.table] {
					locked[e.table] = true
					if !timeout && !explained[e.table] {
						lockIssue(line, pre+stmtLabel(u, e.table), e.table, e.mode)
					}
					if at, ok := changed[e.table]; ok {
						add(LockIssue{Line: line, Table: e.table, Severity: "warning",
							Msg: fmt.Sprintf("%s%s takes %s %s lock on %s after the file changed its rows (line %d): the transaction upgrades its lock, and the application's writes to %s can deadlock with it (PostgreSQL then aborts one side)", pre, stmtLabel(u, e.table), article(e.mode), modeName(e.mode), e.table, at, e.table),
							Fix: "take the strong lock first (LOCK TABLE … at the start of the file, after SET lock_timeout), or change the rows in a migration of their own"})
					}
				}
				if e.dml {
					if _, ok := changed[e.table]; !ok {
						changed[e.table] = line
					}
				}
			}
			for _, e := range effects(n) {
				if populated(e.table) && conflictsWithApp(e.mode) {
					strong = true
				}
			}
		}
		// What the trace saw beyond what the statements say: locks taken
		// by the functions and triggers they run.
		if sl := in.trace.statement(st.Line); sl != nil {
			for _, tl := range sl.Locks {
				if !populated(tl.Table) || !conflictsWithApp(tl.Mode) || locked[tl.Table] {
					continue
				}
				locked[tl.Table], strong = true, true
				if !timeout {
					lockIssue(st.Line, fmt.Sprintf("%s (traced: on %s)", stmtLabel(st, ""), tl.Table), tl.Table, tl.Mode)
				}
			}
			for _, t := range sl.Rewrites {
				if populated(t) {
					add(rewriteIssue(st, t, sl))
				}
			}
		} else {
			for _, t := range staticRewrites(st) {
				if populated(t) {
					cause := rewriteCause(st)
					if strings.Contains(cause, "not binary-coercible") {
						cause = strings.Replace(strings.Replace(cause, "is not binary-coercible", "is binary-coercible", 1), " (the", " (unless the", 1)
					}
					add(LockIssue{Line: st.Line, Table: t, Severity: "error",
						Msg: fmt.Sprintf("%s rewrites all of %s under an ACCESS EXCLUSIVE lock%s", stmtLabel(st, t), t, cause),
						Fix: rewriteFix(st)})
				}
			}
		}
	}
	return out, notes
}

// constraintKinds name constraint types as SQL writes them.
var constraintKinds = map[pg.ConstrType]string{pg.ConstrType_CONSTR_CHECK: "CHECK", pg.ConstrType_CONSTR_FOREIGN: "FOREIGN KEY",
	pg.ConstrType_CONSTR_UNIQUE: "UNIQUE", pg.ConstrType_CONSTR_PRIMARY: "PRIMARY KEY"}

// stmtLabel names a statement for a message: "ALTER TABLE users",
// "CREATE TRIGGER on users", "the DO block".
func stmtLabel(st Stmt, table string) string {
	n := st.Node
	switch {
	case n.GetAlterTableStmt() != nil:
		return "ALTER TABLE " + relName(n.GetAlterTableStmt().Relation)
	case n.GetDoStmt() != nil:
		return "the DO block"
	}
	words := strings.Fields(strings.ToUpper(st.SQL))
	if len(words) > 2 {
		words = words[:2]
	}
	label := strings.Join(words, " ")
	if table != "" {
		label += " on " + table
	}
	return label
}

// rewriteIssue is the finding about a statement the trace saw rewrite a
// populated table.
func rewriteIssue(st Stmt, t string, sl *StatementLocks) LockIssue {
	what := fmt.Sprintf("rewrote all of %s", t)
	var idx []string
	for _, i := range sl.Rebuilt {
		idx = append(idx, i)
	}
	if len(idx) > 0 {
		what += fmt.Sprintf(" and rebuilt %s", strings.Join(idx, ", "))
	}
	return LockIssue{Line: st.Line, Table: t, Severity: "error",
		Msg: fmt.Sprintf("%s %s (measured: its storage changed) under an ACCESS EXCLUSIVE lock: reads and writes wait for the whole rewrite%s", stmtLabel(st, t), what, rewriteCause(st)),
		Fix: rewriteFix(st)}
}

// rewriteCause says, from the statement, why PostgreSQL rewrote the table.
func rewriteCause(st Stmt) string {
	at := st.Node.GetAlterTableStmt()
	for _, c := range at.GetCmds() {
		cmd := c.GetAlterTableCmd()
		switch cmd.GetSubtype() {
		case pg.AlterTableType_AT_AlterColumnType:
			return fmt.Sprintf(" (the type change of %s is not binary-coercible)", cmd.Name)
		case pg.AlterTableType_AT_AddColumn:
			cd := cmd.GetDef().GetColumnDef()
			for _, k := range cd.GetConstraints() {
				switch k.GetConstraint().GetContype() {
				case pg.ConstrType_CONSTR_GENERATED:
					return fmt.Sprintf(" (the stored generated column %s is computed for every row)", cd.Colname)
				case pg.ConstrType_CONSTR_IDENTITY:
					return fmt.Sprintf(" (the identity column %s is filled for every row)", cd.Colname)
				case pg.ConstrType_CONSTR_DEFAULT:
					if volatile(k.GetConstraint().RawExpr) {
						return fmt.Sprintf(" (the volatile default of %s is computed for every row)", cd.Colname)
					}
				}
			}
		}
	}
	return ""
}

// rewriteFix is the multi-step form of a rewriting statement.
func rewriteFix(st Stmt) string {
	at := st.Node.GetAlterTableStmt()
	for _, c := range at.GetCmds() {
		cmd := c.GetAlterTableCmd()
		switch cmd.GetSubtype() {
		case pg.AlterTableType_AT_AlterColumnType:
			return "add a new column of the new type, backfill it in batches, switch the application, and drop the old column later"
		case pg.AlterTableType_AT_AddColumn:
			for _, k := range cmd.GetDef().GetColumnDef().GetConstraints() {
				if k.GetConstraint().GetContype() == pg.ConstrType_CONSTR_GENERATED {
					return "add a plain nullable column, fill it in batches in later migrations, and keep it current with a trigger (or from the application); or index the expression itself with CREATE INDEX CONCURRENTLY"
				}
			}
			return "add the column without a default (or with a constant one), set the default in a second statement, and backfill existing rows in batches in a later migration"
		}
	}
	return "do it in steps that hold no ACCESS EXCLUSIVE lock for the whole table: a new table or column filled in batches, then a switch"
}

// staticRewrites returns the tables a statement rewrites, as far as its
// parse tree tells (when it could not be traced).
func staticRewrites(st Stmt) []string {
	at := st.Node.GetAlterTableStmt()
	if at == nil {
		return nil
	}
	for _, c := range at.Cmds {
		cmd := c.GetAlterTableCmd()
		switch cmd.GetSubtype() {
		case pg.AlterTableType_AT_AlterColumnType, pg.AlterTableType_AT_SetTableSpace, pg.AlterTableType_AT_SetLogged, pg.AlterTableType_AT_SetUnLogged:
			return []string{relName(at.Relation)}
		case pg.AlterTableType_AT_AddColumn:
			if addsRewritingColumn(cmd.GetDef().GetColumnDef()) {
				return []string{relName(at.Relation)}
			}
		}
	}
	return nil
}

func article(mode string) string {
	if strings.HasPrefix(modeName(mode), "ACCESS") {
		return "an"
	}
	return "a"
}

// lockTimeoutSet reads a statement that sets lock_timeout (SET, SET LOCAL,
// or SELECT set_config('lock_timeout', '2s', …)): isSet says whether it is
// one, ok whether its value was understood.
func lockTimeoutSet(st Stmt) (d time.Duration, ok, isSet bool) {
	if vs := st.Node.GetVariableSetStmt(); vs != nil && strings.EqualFold(vs.Name, "lock_timeout") {
		d, ok = setLockTimeout(vs)
		return d, ok, true
	}
	sel := st.Node.GetSelectStmt()
	if sel == nil || len(sel.TargetList) != 1 || len(sel.FromClause) > 0 {
		return 0, false, false
	}
	fc := sel.TargetList[0].GetResTarget().GetVal().GetFuncCall()
	if fc == nil || len(fc.Funcname) == 0 || !strings.EqualFold(fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval(), "set_config") || len(fc.Args) < 2 {
		return 0, false, false
	}
	name := fc.Args[0].GetAConst().GetSval().GetSval()
	if !strings.EqualFold(name, "lock_timeout") {
		return 0, false, false
	}
	if v := fc.Args[1].GetAConst().GetSval(); v != nil {
		d, ok = parseTimeout(v.Sval)
	}
	return d, ok, true
}

// setLockTimeout is the lock_timeout a SET statement sets.
func setLockTimeout(vs *pg.VariableSetStmt) (time.Duration, bool) {
	if vs.Kind != pg.VariableSetKind_VAR_SET_VALUE || len(vs.Args) != 1 {
		return 0, false
	}
	c := vs.Args[0].GetAConst()
	switch {
	case c == nil:
		return 0, false
	case c.GetSval() != nil:
		return parseTimeout(c.GetSval().Sval)
	case c.GetIval() != nil:
		return time.Duration(c.GetIval().Ival) * time.Millisecond, true
	case c.GetFval() != nil:
		return parseTimeout(c.GetFval().Fval)
	}
	return 0, false
}

var reTimeoutValue = regexp.MustCompile(`(?i)^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$`)

// parseTimeout reads a timeout setting as PostgreSQL does (a bare number is
// milliseconds).
func parseTimeout(s string) (time.Duration, bool) {
	m := reTimeoutValue.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	unit := map[string]time.Duration{"us": time.Microsecond, "": time.Millisecond, "ms": time.Millisecond, "s": time.Second, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[strings.ToLower(m[2])]
	return time.Duration(v * float64(unit)), true
}

// fileLockTimeout returns the lock_timeout a migration file sets before
// its first statement that takes a table lock.
func fileLockTimeout(stmts []Stmt) (time.Duration, bool) {
	for _, st := range stmts {
		if d, ok, isSet := lockTimeoutSet(st); isSet {
			return d, ok && d > 0
		}
		if len(allEffects(st)) > 0 {
			return 0, false
		}
	}
	return 0, false
}

// notNullChecks returns "table.col" for every validated CHECK (col IS NOT
// NULL) constraint of a schema.
func notNullChecks(s *Schema) map[string]bool {
	out := map[string]bool{}
	for _, c := range s.Constraints {
		if c.Kind != "check" || strings.Contains(strings.ToUpper(c.Def), "NOT VALID") {
			continue
		}
		if m := reNotNullCheck.FindStringSubmatch(c.Def); m != nil {
			out[c.Table+"."+strings.ToLower(m[1])] = true
		}
	}
	return out
}

var reNotNullCheck = regexp.MustCompile(`(?is)CHECK\s*\(\s*\(?\s*"?(\w+)"?\s+IS\s+NOT\s+NULL\s*\)?\s*\)`)

// addNotNullChecks adds to checks the CHECK (col IS NOT NULL) constraints a
// migration's statements leave validated: added without NOT VALID, or
// added NOT VALID and validated (in this file or, through pending, in an
// earlier one), so that a SET NOT NULL in a later file uses them.
func addNotNullChecks(stmts []Stmt, checks map[string]bool) {
	for _, st := range stmts {
		for _, u := range append([]Stmt{st}, st.Inner...) {
			at := u.Node.GetAlterTableStmt()
			if at == nil {
				continue
			}
			t := relName(at.Relation)
			for _, c := range at.Cmds {
				cmd := c.GetAlterTableCmd()
				switch cmd.GetSubtype() {
				case pg.AlterTableType_AT_AddConstraint:
					con := cmd.GetDef().GetConstraint()
					nt := con.GetRawExpr().GetNullTest()
					if con.GetContype() != pg.ConstrType_CONSTR_CHECK || nt == nil || nt.Nulltesttype != pg.NullTestType_IS_NOT_NULL {
						continue
					}
					f := nt.Arg.GetColumnRef().GetFields()
					if len(f) == 0 {
						continue
					}
					col := f[len(f)-1].GetString_().GetSval()
					if con.GetSkipValidation() {
						checks["pending:"+con.Conname] = true
						checks["pending:"+con.Conname+":"+t+"."+col] = true
					} else {
						checks[t+"."+col] = true
					}
				case pg.AlterTableType_AT_ValidateConstraint:
					for k := range checks {
						if rest, ok := strings.CutPrefix(k, "pending:"+cmd.Name+":"); ok {
							checks[rest] = true
						}
					}
				}
			}
		}
	}
}
