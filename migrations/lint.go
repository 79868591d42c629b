package migrations

import (
	"fmt"
	"regexp"
	"strings"
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

// LockIssue is a statement that takes a blocking lock (or rewrites a table)
// on a table that already holds data, where a safe form exists.
type LockIssue struct {
	Line     int
	Table    string
	Severity string // "error" or "warning"
	Msg      string
	Fix      string
}

var (
	reCreateIndex  = regexp.MustCompile(`(?is)^CREATE\s+(UNIQUE\s+)?INDEX\s+(CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?:"?\w+"?\s+)?ON\s+(?:ONLY\s+)?"?([\w.]+)"?`)
	reAlterTable   = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?"?([\w.]+)"?\s+(.*)$`)
	reAddCons      = regexp.MustCompile(`(?is)\bADD\s+(?:CONSTRAINT\s+"?(\w+)"?\s+)?(FOREIGN\s+KEY|CHECK|UNIQUE|PRIMARY\s+KEY)\b`)
	reNotValid     = regexp.MustCompile(`(?i)\bNOT\s+VALID\b`)
	reValidate     = regexp.MustCompile(`(?i)\bVALIDATE\s+CONSTRAINT\s+"?(\w+)"?`)
	reVolatileDef  = regexp.MustCompile(`(?is)\bADD\s+(?:COLUMN\s+)?.*\bDEFAULT\s+[^,]*\b(random|clock_timestamp|gen_random_uuid|uuid_generate_v[14]|timeofday|nextval)\s*\(`)
	reAlterType    = regexp.MustCompile(`(?is)\bALTER\s+(?:COLUMN\s+)?"?(\w+)"?\s+(?:SET\s+DATA\s+)?TYPE\b`)
	reSetNotNull   = regexp.MustCompile(`(?is)\bALTER\s+(?:COLUMN\s+)?"?(\w+)"?\s+SET\s+NOT\s+NULL\b`)
	reDML          = regexp.MustCompile(`(?is)^(UPDATE|DELETE\s+FROM|INSERT\s+INTO)\s+(?:ONLY\s+)?"?([\w.]+)"?`)
	reLockTimeout  = regexp.MustCompile(`(?i)^SET\s+(?:LOCAL\s+)?lock_timeout\b`)
	reNotNullCheck = regexp.MustCompile(`(?is)CHECK\s*\(\s*"?(\w+)"?\s+IS\s+NOT\s+NULL\s*\)`)
)

// LintLocks finds the statements of one migration file (run by
// golang-migrate as one transaction) that block reads or writes of tables
// that already held rows (populated reports whether a table existed at the
// base), each with the safe multi-step form. validatedChecks lists columns
// ("table.col") that have a validated CHECK (col IS NOT NULL) at the base.
func LintLocks(sql string, populated func(table string) bool, validatedChecks map[string]bool) []LockIssue {
	stmts := SplitStatements(sql)
	var out []LockIssue
	hasDDL, lockTimeout := false, false
	var dml []Statement
	notValid := map[string]bool{}
	for _, st := range stmts {
		s := st.SQL
		if reLockTimeout.MatchString(s) {
			lockTimeout = true
			continue
		}
		if m := reCreateIndex.FindStringSubmatch(s); m != nil {
			table := unqualify(m[3])
			if !populated(table) {
				continue
			}
			if m[2] == "" {
				out = append(out, LockIssue{Line: st.Line, Table: table, Severity: "error",
					Msg: fmt.Sprintf("CREATE INDEX on %s takes a SHARE lock: every write to the table waits until the whole index is built", table),
					Fix: "use CREATE INDEX CONCURRENTLY, alone in its own migration file (it cannot run inside golang-migrate's transaction with other statements)"})
			} else if len(stmts) > 1 {
				out = append(out, LockIssue{Line: st.Line, Table: table, Severity: "error",
					Msg: "CREATE INDEX CONCURRENTLY is not alone in its file: golang-migrate runs the file as one transaction, where CONCURRENTLY cannot run",
					Fix: "move it into a migration file of its own"})
			}
			continue
		}
		if m := reDML.FindStringSubmatch(s); m != nil {
			if populated(unqualify(m[2])) {
				dml = append(dml, st)
			}
			continue
		}
		m := reAlterTable.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		table, rest := unqualify(m[1]), m[2]
		if !populated(table) {
			continue
		}
		// Under SHARE UPDATE EXCLUSIVE reads and writes go on: nothing
		// queues behind it.
		mode := alterTableLock(rest)
		blocking := mode != "SHARE UPDATE EXCLUSIVE"
		hasDDL = hasDDL || blocking
		if blocking && !lockTimeout {
			out = append(out, LockIssue{Line: st.Line, Table: table, Severity: "warning",
				Msg: fmt.Sprintf("ALTER TABLE %s takes %s %s lock without a lock_timeout: if a long query holds the table, the migration queues behind it and every other query queues behind the migration", table, article(mode), mode),
				Fix: "start the file with SET lock_timeout = '2s' (and retry the deploy) so a busy table cannot stall the application"})
		}
		if c := reAddCons.FindStringSubmatch(rest); c != nil {
			kind := strings.ToUpper(strings.Join(strings.Fields(c[2]), " "))
			switch {
			case (kind == "FOREIGN KEY" || kind == "CHECK") && !reNotValid.MatchString(rest):
				out = append(out, LockIssue{Line: st.Line, Table: table, Severity: "error",
					Msg: fmt.Sprintf("ADD %s on %s checks every existing row while holding a lock that blocks writes", kind, table),
					Fix: "add it NOT VALID in this migration, and VALIDATE CONSTRAINT in a separate migration (validation then takes only a SHARE UPDATE EXCLUSIVE lock)"})
			case kind == "UNIQUE" || kind == "PRIMARY KEY":
				if !regexp.MustCompile(`(?i)\bUSING\s+INDEX\b`).MatchString(rest) {
					out = append(out, LockIssue{Line: st.Line, Table: table, Severity: "error",
						Msg: fmt.Sprintf("ADD %s on %s builds its index under an ACCESS EXCLUSIVE lock", kind, table),
						Fix: "CREATE UNIQUE INDEX CONCURRENTLY in its own migration, then ADD CONSTRAINT … USING INDEX"})
				}
			}
			if c[1] != "" && reNotValid.MatchString(rest) {
				notValid[strings.ToLower(c[1])] = true
			}
		}
		if v := reValidate.FindStringSubmatch(rest); v != nil && notValid[strings.ToLower(v[1])] {
			out = append(out, LockIssue{Line: st.Line, Table: table, Severity: "error",
				Msg: fmt.Sprintf("constraint %s is added NOT VALID and validated in the same file: the validation runs while the transaction still holds the ACCESS EXCLUSIVE lock of the ADD", v[1]),
				Fix: "move VALIDATE CONSTRAINT into a separate, later migration"})
		}
		if v := reVolatileDef.FindStringSubmatch(rest); v != nil {
			out = append(out, LockIssue{Line: st.Line, Table: table, Severity: "error",
				Msg: fmt.Sprintf("a column with the volatile default %s() rewrites all of %s under an ACCESS EXCLUSIVE lock", v[1], table),
				Fix: "add the column without a default (or with a constant one), set the default in a second statement, and backfill existing rows in batches in a later migration"})
		}
		if v := reAlterType.FindStringSubmatch(rest); v != nil {
			out = append(out, LockIssue{Line: st.Line, Table: table, Severity: "error",
				Msg: fmt.Sprintf("changing the type of %s.%s rewrites the table (unless the types are binary-coercible) under an ACCESS EXCLUSIVE lock", table, v[1]),
				Fix: "add a new column of the new type, backfill it in batches, switch the application, and drop the old column later"})
		}
		if v := reSetNotNull.FindStringSubmatch(rest); v != nil && !validatedChecks[table+"."+strings.ToLower(v[1])] {
			out = append(out, LockIssue{Line: st.Line, Table: table, Severity: "error",
				Msg: fmt.Sprintf("SET NOT NULL on %s.%s scans the whole table under an ACCESS EXCLUSIVE lock", table, v[1]),
				Fix: fmt.Sprintf("first ADD CONSTRAINT … CHECK (%s IS NOT NULL) NOT VALID, VALIDATE it in a later migration; then SET NOT NULL uses the check and does not scan", v[1])})
		}
	}
	if hasDDL {
		for _, st := range dml {
			out = append(out, LockIssue{Line: st.Line, Table: unqualify(reDML.FindStringSubmatch(st.SQL)[2]), Severity: "error",
				Msg: "a data backfill runs in the same file (one transaction) as DDL: the DDL's lock is held until the backfill ends",
				Fix: "move the backfill into a migration of its own and update in batches (e.g. 10,000 rows per statement)"})
		}
	}
	return out
}

// alterTableLock is the table lock PostgreSQL takes for an ALTER TABLE with
// these subcommands: the strongest any of them needs.
func alterTableLock(rest string) string {
	strongest := "SHARE UPDATE EXCLUSIVE"
	for _, sub := range splitTopLevel(rest, ',') {
		sub = strings.TrimSpace(sub)
		switch {
		case reWeakAlter.MatchString(sub):
		case reAddFK.MatchString(sub) || reTrigger.MatchString(sub):
			strongest = "SHARE ROW EXCLUSIVE"
		default:
			return "ACCESS EXCLUSIVE"
		}
	}
	return strongest
}

var (
	reWeakAlter = regexp.MustCompile(`(?is)^(VALIDATE\s+CONSTRAINT|SET\s+STATISTICS|ALTER\s+(COLUMN\s+)?"?\w+"?\s+SET\s+STATISTICS|SET\s*\(|RESET\s*\(|CLUSTER\s+ON|SET\s+WITHOUT\s+CLUSTER|ATTACH\s+PARTITION|DETACH\s+PARTITION\s+.*\bCONCURRENTLY)\b?`)
	reAddFK     = regexp.MustCompile(`(?is)^ADD\s+(CONSTRAINT\s+"?\w+"?\s+)?FOREIGN\s+KEY\b`)
	reTrigger   = regexp.MustCompile(`(?is)^(ENABLE|DISABLE)\s+(ALWAYS\s+|REPLICA\s+)?TRIGGER\b`)
)

// splitTopLevel splits s at sep outside parentheses and quotes.
func splitTopLevel(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func article(mode string) string {
	if strings.HasPrefix(mode, "ACCESS") {
		return "an"
	}
	return "a"
}

func unqualify(t string) string {
	t = strings.Trim(strings.ToLower(t), `"`)
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		return t[i+1:]
	}
	return t
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
