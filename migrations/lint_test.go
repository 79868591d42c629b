package migrations

import (
	"strings"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	sql := "-- a comment; not a statement\nCREATE TABLE t (a text DEFAULT 'x;y');\n\n/* block; */ INSERT INTO t VALUES ('it''s');\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\nSELECT 2"
	got := SplitStatements(sql)
	var lines []int
	for _, s := range got {
		lines = append(lines, s.Line)
	}
	if len(got) != 4 || lines[0] != 2 || lines[1] != 4 || lines[2] != 5 || lines[3] != 6 {
		t.Fatalf("statements %+v at lines %v", got, lines)
	}
	if !strings.Contains(got[0].SQL, "'x;y'") || !strings.Contains(got[2].SQL, "SELECT 1; $$") {
		t.Errorf("quotes split: %+v", got)
	}
}

// TestParseFile: statements start at their first token, after comments
// (nested ones included); DO blocks and the functions they call are read
// inside, at their lines.
func TestParseFile(t *testing.T) {
	sql := `/* Release 2.15.0.
   /* nested */
   CREATE INDEX in a comment; */
-- users
SET lock_timeout = '2s';

DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT id FROM users LOOP
    UPDATE users SET email = lower(email) WHERE id = r.id;
  END LOOP;
  EXECUTE 'ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)';
  EXECUTE format('UPDATE %I SET n = 1', 'users');
END $$;
CREATE FUNCTION fill() RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
  DELETE FROM sessions;
END $f$;
SELECT fill();
`
	stmts, err := parseFile("postgres", sql)
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, s := range stmts {
		lines = append(lines, s.Line)
	}
	if len(stmts) != 4 || lines[0] != 5 || lines[1] != 7 || lines[2] != 16 || lines[3] != 20 {
		t.Fatalf("statements at lines %v, want [5 7 16 20]", lines)
	}
	do := stmts[1].Inner
	if len(do) != 3 || do[0].Line != 11 || !do[0].Loop || do[0].Node.GetUpdateStmt() == nil ||
		do[1].Line != 13 || do[1].Loop || do[1].Node.GetAlterTableStmt() == nil || !do[2].Dynamic || do[2].Line != 14 {
		t.Fatalf("DO block statements = %+v", do)
	}
	funcs := map[string]*function{}
	if f := definedFunction(stmts[2]); f == nil || f.name != "fill" || len(f.body) != 1 || f.body[0].Line != 18 {
		t.Fatalf("function = %+v", f)
	} else {
		funcs[f.name] = f
	}
	expandCalls(stmts, funcs)
	if in := stmts[3].Inner; len(in) != 1 || in[0].Node.GetDeleteStmt() == nil || in[0].Line != 20 || !strings.Contains(in[0].Via, "fill() (called at line 20)") {
		t.Fatalf("call = %+v", in)
	}
	// A file the parser refuses is still split, for the replay to report.
	if stmts, err := parseFile("postgres", "CREAT TABLE t (a int);\nSELECT 1;"); err == nil || len(stmts) != 2 || stmts[1].Line != 2 {
		t.Errorf("refused file: %v, %+v", err, stmts)
	}
}

func TestLint(t *testing.T) {
	populated := func(table string) bool { return table == "users" || table == "orgs" }
	large := func(table string) bool { return table == "orgs" }
	tests := []struct {
		name, sql string
		want      []string // substrings of the issues, in order; "" for none
		lines     []int
	}{
		{"index on a populated table", "CREATE INDEX users_email ON users (email);", []string{"CREATE INDEX on users takes a SHARE lock"}, []int{1}},
		{"index concurrently alone", "CREATE INDEX CONCURRENTLY users_email ON users (email);", nil, nil},
		{"index concurrently with others", "CREATE INDEX CONCURRENTLY users_email ON users (email);\nSELECT 1;", []string{"not alone in its file"}, nil},
		{"index on a new table", "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);", nil, nil},
		{"foreign key without NOT VALID", "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org) REFERENCES orgs (id);", []string{"ADD FOREIGN KEY on users checks every existing row"}, []int{2}},
		{"NOT VALID then VALIDATE in one file", "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT c CHECK (age > 0) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT c;", []string{"validated in the same file"}, []int{3}},
		{"NOT VALID alone", "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT c CHECK (age > 0) NOT VALID;", nil, nil},
		{"volatile default", "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();", []string{"rewrites all of users under an ACCESS EXCLUSIVE lock (the volatile default of token"}, nil},
		{"generated stored column", "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN s tsvector GENERATED ALWAYS AS (to_tsvector('simple', name)) STORED;", []string{"the stored generated column s"}, nil},
		{"constant default", "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN active boolean DEFAULT true;", nil, nil},
		{"retype", "SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN age TYPE bigint;", []string{"rewrites all of users under an ACCESS EXCLUSIVE lock (unless the type change of age is binary-coercible)"}, nil},
		{"set not null", "SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN email SET NOT NULL;", []string{"SET NOT NULL on users.email scans the whole table"}, nil},
		{"backfill after DDL", "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN n int;\nUPDATE users SET n = 0;", []string{"data backfill runs in the same file"}, []int{3}},
		{"delete before DDL: no backfill held by DDL, but a lock upgrade", "DELETE FROM users WHERE id < 0;\nSET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN n int;", []string{"after the file changed its rows (line 1): the transaction upgrades its lock"}, []int{3}},
		{"backfill alone", "UPDATE users SET n = 0;", nil, nil},
		{"no lock_timeout", "ALTER TABLE users ADD COLUMN n int;", []string{"ALTER TABLE users takes an ACCESS EXCLUSIVE lock without a lock_timeout"}, nil},
		{"no lock_timeout on a large table", "ALTER TABLE orgs ADD COLUMN n int;", []string{"declared large in migrations.sizes"}, nil},
		{"trigger without lock_timeout", "CREATE TRIGGER t BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION f();", []string{"CREATE TRIGGER on users takes a SHARE ROW EXCLUSIVE lock without a lock_timeout"}, nil},
		{"comment before", "/* Adds\n   an index */\n\n-- on users\nCREATE INDEX users_email ON users (email);", []string{"CREATE INDEX"}, []int{5}},
		{"DO block", "SET lock_timeout = '2s';\nDO $$\nBEGIN\n  EXECUTE 'ALTER TABLE users ADD CONSTRAINT u UNIQUE (email)';\nEND $$;", []string{"in the DO block at line 2: ADD UNIQUE on users builds its index"}, []int{4}},
		{"row by row", "DO $$\nDECLARE r record;\nBEGIN\n  FOR r IN SELECT id FROM users LOOP\n    UPDATE users SET n = 1 WHERE id = r.id;\n  END LOOP;\nEND $$;", []string{"changes users row by row in a loop"}, []int{5}},
		{"backfill in a DO block after DDL", "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN n int;\nDO $$ BEGIN UPDATE users SET n = 0; END $$;", []string{"in the DO block at line 3: a data backfill runs in the same file"}, []int{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stmts, err := parseFile("postgres", tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := lint(lintInput{stmts: stmts, populated: populated, large: large})
			if len(got) != len(tt.want) {
				t.Fatalf("issues %+v, want %d", got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i].Msg, w) || got[i].Fix == "" || got[i].Line < 1 {
					t.Errorf("issue %d = %+v, want %q with a fix and a line", i, got[i], w)
				}
				if i < len(tt.lines) && got[i].Line != tt.lines[i] {
					t.Errorf("issue %d at line %d, want %d", i, got[i].Line, tt.lines[i])
				}
			}
			if tt.name == "no lock_timeout on a large table" && got[0].Severity != "error" {
				t.Errorf("on a large table: %s, want error", got[0].Severity)
			}
		})
	}
	// A validated CHECK (col IS NOT NULL) makes SET NOT NULL safe.
	stmts, _ := parseFile("postgres", "SET lock_timeout = '1s';\nALTER TABLE users ALTER COLUMN email SET NOT NULL;")
	if got, _ := lint(lintInput{stmts: stmts, populated: populated, large: large, checks: map[string]bool{"users.email": true}}); len(got) != 0 {
		t.Errorf("issues with a validated check: %+v", got)
	}
	// Dynamic SQL is a note.
	stmts, _ = parseFile("postgres", "DO $$ BEGIN EXECUTE 'UPDATE ' || 'users SET n = 1'; END $$;")
	if _, notes := lint(lintInput{stmts: stmts, populated: populated, large: large}); len(notes) != 1 || !strings.Contains(notes[0], "built at run time") {
		t.Errorf("notes = %v", notes)
	}
}

func FuzzSplitStatements(f *testing.F) {
	f.Add("CREATE TABLE t (a text DEFAULT 'x;y'); -- c\nSELECT $$;$$;")
	f.Add("/* unterminated")
	f.Add("'unterminated")
	f.Add("$tag$ body")
	f.Fuzz(func(t *testing.T, sql string) {
		prev := 0
		for _, s := range SplitStatements(sql) {
			if s.Line < prev || s.Line < 1 || strings.TrimSpace(s.SQL) == "" {
				t.Fatalf("bad statement %+v after line %d", s, prev)
			}
			prev = s.Line
		}
	})
}

// FuzzParseFile feeds migration files to the parser and the rules: no
// panic, and every statement at a line of the file, in order.
func FuzzParseFile(f *testing.F) {
	f.Add("/* x */ SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN n int;\nUPDATE users SET n = 1;")
	f.Add("DO $$ DECLARE r record; BEGIN FOR r IN SELECT 1 LOOP EXECUTE 'DELETE FROM users'; END LOOP; END $$;")
	f.Add("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ UPDATE users SET n = 1 $$; SELECT f();")
	f.Add("CREATE INDEX CONCURRENTLY i ON users (a);")
	f.Fuzz(func(t *testing.T, sql string) {
		stmts, _ := parseFile("postgres", sql)
		lines := strings.Count(sql, "\n") + 1
		prev := 0
		for _, s := range stmts {
			if s.Line < prev || s.Line < 1 || s.Line > lines {
				t.Fatalf("statement at line %d (previous %d, file of %d lines): %+v", s.Line, prev, lines, s)
			}
			prev = s.Line
			for _, in := range s.Inner {
				if in.Line < 1 || in.Line > lines {
					t.Fatalf("inner statement at line %d of %d", in.Line, lines)
				}
			}
		}
		funcs := map[string]*function{}
		for _, st := range stmts {
			if fn := definedFunction(st); fn != nil {
				funcs[fn.name] = fn
			}
		}
		expandCalls(stmts, funcs)
		lint(lintInput{stmts: stmts, populated: func(string) bool { return true }, large: func(string) bool { return true }})
		castHints(map[uint][]Stmt{1: stmts})
	})
}

func TestFitLine(t *testing.T) {
	a, b := fitLine([]Point{{Rows: 1000, BlockedMs: 12}, {Rows: 2000, BlockedMs: 22}, {Rows: 4000, BlockedMs: 42}})
	if d := a - 2; d > 1e-9 || d < -1e-9 {
		t.Errorf("intercept = %v, want 2", a)
	}
	if d := b - 0.01; d > 1e-12 || d < -1e-12 {
		t.Errorf("slope = %v, want 0.01", b)
	}
	if a, b := fitLine([]Point{{Rows: 5, BlockedMs: 7}}); a != 7 || b != 0 {
		t.Errorf("one point: %v, %v", a, b)
	}
}

func TestSizedTables(t *testing.T) {
	sql := "SET lock_timeout = '1s';\nALTER TABLE users ADD COLUMN n int;\nCREATE INDEX CONCURRENTLY o_i ON public.orders (x);\nUPDATE users SET n = 1;\nCREATE TABLE fresh (id int);\nALTER TABLE accounts ADD COLUMN note text;"
	stmts, err := parseFile("postgres", sql)
	if err != nil {
		t.Fatal(err)
	}
	got := sizedTables(stmts, nil, func(t string) bool { return t != "fresh" })
	if strings.Join(got, ",") != "orders,users" {
		t.Errorf("sized = %v, want orders and users (a nullable column is metadata only)", got)
	}
	// A type change the trace saw rewrite nothing is metadata only.
	stmts, _ = parseFile("postgres", "ALTER TABLE users ALTER COLUMN name TYPE varchar(100);")
	tr := &quietRun{OK: true, Statements: []StatementLocks{{Line: 1}}}
	if got := sizedTables(stmts, tr, func(string) bool { return true }); len(got) != 0 {
		t.Errorf("varchar widening without a rewrite: sized %v", got)
	}
	tr.Statements[0].Rewrites = []string{"users"}
	if got := sizedTables(stmts, tr, func(string) bool { return true }); strings.Join(got, ",") != "users" {
		t.Errorf("with a rewrite: sized %v", got)
	}
}

func TestEffects(t *testing.T) {
	for sql, want := range map[string]string{
		"ALTER TABLE t VALIDATE CONSTRAINT fk":                                             "t " + shareUpdateExclusive,
		"ALTER TABLE t ALTER COLUMN n SET STATISTICS 500":                                  "t " + shareUpdateExclusive,
		"ALTER TABLE t SET (fillfactor = 70), RESET (autovacuum_enabled)":                  "t " + shareUpdateExclusive,
		"ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a, b) REFERENCES p (a, b) NOT VALID": "t " + shareRowExclusive + ", p " + shareRowExclusive,
		"ALTER TABLE t ADD COLUMN c text":                                                  "t " + accessExclusive,
		"ALTER TABLE t VALIDATE CONSTRAINT x, ADD COLUMN c text DEFAULT 'a,b'":             "t " + accessExclusive,
		"ALTER TABLE t SET TABLESPACE x":                                                   "t " + accessExclusive,
		"CREATE INDEX i ON t (a)":                                                          "t " + share,
		"CREATE TRIGGER g AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()":             "t " + shareRowExclusive,
		"DROP TABLE a, b":            "a " + accessExclusive + ", b " + accessExclusive,
		"LOCK TABLE t IN SHARE MODE": "t " + share,
		"UPDATE t SET a = 1":         "t " + rowExclusive,
		"INSERT INTO t VALUES (1)":   "t " + rowExclusive,
	} {
		stmts, err := parseFile("postgres", sql)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range effects(stmts[0].Node) {
			got = append(got, e.table+" "+e.mode)
		}
		if strings.Join(got, ", ") != want {
			t.Errorf("%s: %v, want %s", sql, got, want)
		}
	}
}

func TestCastHints(t *testing.T) {
	stmts, _ := parseFile("postgres", "ALTER TABLE users ALTER COLUMN settings TYPE jsonb USING settings::jsonb;\nUPDATE orders SET n = legacy_n::int, note = note::text;\nALTER TABLE users ALTER COLUMN name TYPE varchar(100);")
	got := castHints(map[uint][]Stmt{1: stmts})
	if len(got) != 2 || got["users.settings"] != "jsonb" || got["orders.legacy_n"] != "int4" {
		t.Errorf("hints = %v", got)
	}
}

func TestWidens(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		want     bool
	}{
		{"integer", "bigint", true},
		{"smallint", "integer", true},
		{"bigint", "integer", false},
		{"character varying(50)", "character varying(100)", true},
		{"character varying(100)", "character varying(50)", false},
		{"character varying(50)", "text", true},
		{"character varying(50)", "character varying", true},
		{"text", "character varying(50)", false},
		{"numeric(10,2)", "numeric(12,2)", true},
		{"numeric(10,2)", "numeric(12,4)", true},
		{"numeric(10,2)", "numeric(10,4)", false},
		{"numeric(10,2)", "numeric", true},
		{"text", "jsonb", false},
		{"integer", "text", false},
	} {
		if got := widens(tc.from, tc.to); got != tc.want {
			t.Errorf("widens(%s, %s) = %v", tc.from, tc.to, got)
		}
	}
}
