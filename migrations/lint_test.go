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

func TestLintLocks(t *testing.T) {
	populated := func(table string) bool { return table == "users" }
	tests := []struct {
		name, sql string
		want      []string // substrings of the issues, in order; "" for none
	}{
		{"index on a populated table", "CREATE INDEX users_email ON users (email);", []string{"CREATE INDEX on users takes a SHARE lock"}},
		{"index concurrently alone", "CREATE INDEX CONCURRENTLY users_email ON users (email);", nil},
		{"index concurrently with others", "CREATE INDEX CONCURRENTLY users_email ON users (email);\nSELECT 1;", []string{"not alone in its file"}},
		{"index on a new table", "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);", nil},
		{"foreign key without NOT VALID", "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org) REFERENCES orgs (id);", []string{"ADD FOREIGN KEY on users checks every existing row"}},
		{"NOT VALID then VALIDATE in one file", "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT c CHECK (age > 0) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT c;", []string{"validated in the same file"}},
		{"NOT VALID alone", "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT c CHECK (age > 0) NOT VALID;", nil},
		{"volatile default", "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();", []string{"volatile default gen_random_uuid() rewrites all of users"}},
		{"constant default", "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN active boolean DEFAULT true;", nil},
		{"retype", "SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN age TYPE bigint;", []string{"changing the type of users.age rewrites"}},
		{"set not null", "SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN email SET NOT NULL;", []string{"SET NOT NULL on users.email scans the whole table"}},
		{"backfill with DDL", "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN n int;\nUPDATE users SET n = 0;", []string{"data backfill runs in the same file"}},
		{"backfill alone", "UPDATE users SET n = 0;", nil},
		{"no lock_timeout", "ALTER TABLE users ADD COLUMN n int;", []string{"without a lock_timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := LintLocks(tt.sql, populated, nil)
			if len(got) != len(tt.want) {
				t.Fatalf("issues %+v, want %d", got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i].Msg, w) || got[i].Fix == "" || got[i].Line < 1 {
					t.Errorf("issue %d = %+v, want %q with a fix and a line", i, got[i], w)
				}
			}
		})
	}
	// A validated CHECK (col IS NOT NULL) makes SET NOT NULL safe.
	if got := LintLocks("SET lock_timeout = '1s';\nALTER TABLE users ALTER COLUMN email SET NOT NULL;", populated, map[string]bool{"users.email": true}); len(got) != 0 {
		t.Errorf("issues with a validated check: %+v", got)
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
		LintLocks(sql, func(string) bool { return true }, nil)
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

func TestTouchedTables(t *testing.T) {
	sql := "SET lock_timeout = '1s';\nALTER TABLE users ADD COLUMN n int;\nCREATE INDEX CONCURRENTLY o_i ON public.orders (x);\nUPDATE users SET n = 1;\nCREATE TABLE fresh (id int);"
	got := touchedTables(sql, func(t string) bool { return t != "fresh" })
	if strings.Join(got, ",") != "orders,users" {
		t.Errorf("touched = %v", got)
	}
}

func TestAlterTableLock(t *testing.T) {
	for rest, want := range map[string]string{
		"VALIDATE CONSTRAINT fk":                                             "SHARE UPDATE EXCLUSIVE",
		"ALTER COLUMN n SET STATISTICS 500":                                  "SHARE UPDATE EXCLUSIVE",
		"SET (fillfactor = 70), RESET (autovacuum_enabled)":                  "SHARE UPDATE EXCLUSIVE",
		"ADD CONSTRAINT fk FOREIGN KEY (a, b) REFERENCES p (a, b) NOT VALID": "SHARE ROW EXCLUSIVE",
		"ADD FOREIGN KEY (a) REFERENCES p, VALIDATE CONSTRAINT x":            "SHARE ROW EXCLUSIVE",
		"ADD COLUMN c text":                                                  "ACCESS EXCLUSIVE",
		"VALIDATE CONSTRAINT x, ADD COLUMN c text DEFAULT 'a,b'":             "ACCESS EXCLUSIVE",
		"SET TABLESPACE t":                                                   "ACCESS EXCLUSIVE",
	} {
		if got := alterTableLock(rest); got != want {
			t.Errorf("alterTableLock(%q) = %s, want %s", rest, got, want)
		}
	}
}
