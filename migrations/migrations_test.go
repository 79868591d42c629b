package migrations

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"m/001_users.up.sql":   {Data: []byte("CREATE TABLE users (id int);")},
		"m/001_users.down.sql": {Data: []byte("DROP TABLE users;")},
		"m/002_a.up.sql":       {Data: []byte("SELECT 1;")},
		"m/002_b.down.sql":     {Data: []byte("SELECT 1;")},
		"m/003_x.down.sql":     {Data: []byte("SELECT 1;")},
		"m/README.md":          {Data: []byte("notes")},
	}
	s, err := Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Versions(); len(got) != 3 || got[0] != 1 {
		t.Errorf("versions = %v", got)
	}
	if s.Migrations[1].Up == nil || s.Migrations[1].Down == nil {
		t.Error("001 lacks a file")
	}
	var msgs []string
	for _, p := range s.Problems {
		msgs = append(msgs, p.File+": "+p.Msg)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"m/002_b.down.sql: version 2 is used by", "m/003_x.down.sql: version 3 has a down file but no up file"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	fsys["m/4-bad.sql"] = &fstest.MapFile{Data: []byte("x")}
	var ne *NameError
	if _, err := Load(fsys, "m"); !errors.As(err, &ne) || ne.File != "m/4-bad.sql" {
		t.Errorf("err = %v, want a NameError for m/4-bad.sql", err)
	}
	if s, err := Load(fsys, "missing"); err != nil || len(s.Migrations) != 0 {
		t.Errorf("a missing directory: %v, %v", s, err)
	}
}

func TestRenames(t *testing.T) {
	sql := "ALTER TABLE users RENAME COLUMN name TO full_name;\n-- x\nALTER TABLE IF EXISTS \"orders\" RENAME TO purchases;\n"
	for _, dialect := range []string{"postgres", "sqlite"} {
		stmts, err := parseFile(dialect, sql)
		if err != nil {
			t.Fatal(err)
		}
		got := renames(stmts)
		if len(got) != 2 || got[0].from != "users.name" || got[0].to != "users.full_name" || got[0].line != 1 ||
			got[1].from != "orders" || got[1].to != "purchases" || got[1].line != 3 {
			t.Errorf("%s: renames = %+v", dialect, got)
		}
	}
}

// parseSet parses the up files of a set, by version.
func parseSet(t *testing.T, dialect string, s *Set) map[uint][]Stmt {
	t.Helper()
	out := map[uint][]Stmt{}
	for v, m := range s.Migrations {
		if m.Up != nil {
			out[v], _ = parseFile(dialect, string(m.Up.Data))
		}
	}
	return out
}

func TestDiff(t *testing.T) {
	col := func(name, typ string, notnull bool, def string) *Column {
		return &Column{Name: name, Type: typ, NotNull: notnull, Default: def}
	}
	base := newSchema()
	base.Tables["users"] = &Table{Name: "users", Columns: map[string]*Column{
		"id": col("id", "bigint", true, ""), "name": col("name", "text", false, ""), "age": col("age", "integer", false, ""),
	}}
	base.Tables["old"] = &Table{Name: "old", Columns: map[string]*Column{"id": col("id", "int", false, "")}}
	head := newSchema()
	head.Tables["users"] = &Table{Name: "users", Columns: map[string]*Column{
		"id": col("id", "bigint", true, ""), "name": col("name", "text", true, ""), "age": col("age", "text", false, ""),
		"email": col("email", "text", true, ""), "nick": col("nick", "text", true, "'x'::text"),
	}}
	head.Constraints["users_age_check"] = Constraint{Table: "users", Kind: "check", Def: "CHECK (age > 0)"}
	var got []string
	for _, c := range Diff(base, head) {
		got = append(got, c.Msg)
	}
	want := []string{
		"table old dropped",
		"column users.age changes type from integer to text",
		"column users.name becomes NOT NULL",
		"new column users.email is NOT NULL without a default",
		"new check constraint users_age_check on existing table users",
	}
	if len(got) != len(want) {
		t.Fatalf("changes:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("change %d = %q, want %q…", i, got[i], want[i])
		}
	}
	if same, _ := head.Equal(head); !same {
		t.Error("a schema differs from itself")
	}
	if same, diff := base.Equal(head); same || diff == "" {
		t.Error("different schemas compare equal")
	}
}

// engines returns every engine that can run here: the shared contract below
// runs against each (SQLite always, PostgreSQL when its binaries exist).
func engines(t *testing.T) map[string]Engine {
	t.Helper()
	out := map[string]Engine{}
	s, err := NewSQLite()
	if err != nil {
		t.Fatal(err)
	}
	out["sqlite"] = s
	if _, err := FindPostgresBin(); err == nil && !testing.Short() {
		p, err := NewPostgres(context.Background(), "")
		if err != nil {
			t.Fatalf("starting PostgreSQL: %v", err)
		}
		out["postgres"] = p
	} else {
		t.Log("PostgreSQL not tested: ", err)
	}
	t.Cleanup(func() {
		for _, e := range out {
			e.Close()
		}
	})
	return out
}

// TestEngineContract is the conformance suite of the Engine interface.
func TestEngineContract(t *testing.T) {
	ctx := context.Background()
	for name, eng := range engines(t) {
		t.Run(name, func(t *testing.T) {
			if eng.Name() != name {
				t.Errorf("Name() = %q", eng.Name())
			}
			a, err := eng.NewDB(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := eng.NewDB(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if _, err := a.SQL().ExecContext(ctx, "CREATE TABLE t (id integer NOT NULL, note text DEFAULT 'n', n integer)"); err != nil {
				t.Fatal(err)
			}
			sa, err := a.Schema(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tb := sa.Tables["t"]
			if tb == nil || !tb.Columns["id"].NotNull || tb.Columns["n"].NotNull || tb.Columns["note"].Default == "" || tb.Columns["id"].Type != "integer" {
				t.Errorf("schema of t = %+v", tb)
			}
			sb, _ := b.Schema(ctx)
			if len(sb.Tables) != 0 {
				t.Errorf("databases are not isolated: %v", sb.Tables)
			}
			if problems, err := seedAll(ctx, a, sa, 3, nil); err != nil || len(problems) > 0 {
				t.Fatal(err, problems)
			}
			var n int
			a.SQL().QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n)
			if n != 3 {
				t.Errorf("seeded %d rows, want 3", n)
			}
			// A golang-migrate driver on the same database.
			drv, err := a.Driver(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v, dirty, err := drv.Version(); err != nil || dirty || v != -1 {
				t.Errorf("fresh version = %d, %v, %v", v, dirty, err)
			}
		})
	}
}

// TestReplay runs base then head with a failure that only shows on a
// populated table, on every engine.
func TestReplay(t *testing.T) {
	ctx := context.Background()
	base, _ := Load(fstest.MapFS{
		"1_t.up.sql":   {Data: []byte("CREATE TABLE t (id integer);")},
		"1_t.down.sql": {Data: []byte("DROP TABLE t;")},
	}, ".")
	ok, _ := Load(fstest.MapFS{
		"1_t.up.sql":   {Data: []byte("CREATE TABLE t (id integer);")},
		"1_t.down.sql": {Data: []byte("DROP TABLE t;")},
		"2_c.up.sql":   {Data: []byte("ALTER TABLE t ADD COLUMN c text;")},
		"2_c.down.sql": {Data: []byte("ALTER TABLE t DROP COLUMN c;")},
	}, ".")
	bad, _ := Load(fstest.MapFS{
		"1_t.up.sql":   {Data: []byte("CREATE TABLE t (id integer);")},
		"1_t.down.sql": {Data: []byte("DROP TABLE t;")},
		"2_c.up.sql":   {Data: []byte("ALTER TABLE t ADD COLUMN c text NOT NULL;")},
		"2_c.down.sql": {Data: []byte("ALTER TABLE t DROP COLUMN c;")},
	}, ".")
	for name, eng := range engines(t) {
		t.Run(name, func(t *testing.T) {
			r, err := replay(ctx, eng, base, ok, replayOptions{seedRows: 3, stmts: parseSet(t, name, ok), reverse: true})
			if err != nil {
				t.Fatal(err)
			}
			if r.failedErr != nil || r.reverseErr != nil || r.head.Tables["t"].Columns["c"] == nil {
				t.Errorf("good replay: failed %v, reverse %v", r.failedErr, r.reverseErr)
			}
			r, err = replay(ctx, eng, base, bad, replayOptions{seedRows: 3, stmts: parseSet(t, name, bad), reverse: true})
			if err != nil {
				t.Fatal(err)
			}
			if r.failed != 2 || r.failedErr == nil {
				t.Errorf("NOT NULL on a populated table: failed %d, %v", r.failed, r.failedErr)
			}
		})
	}
}

// TestLoadBackupFiles: golang-migrate reads files whatever their extension
// once the name parses; an editor's backup is a problem, not ignored.
func TestLoadBackupFiles(t *testing.T) {
	s, err := Load(fstest.MapFS{
		"m/0071_x.up.sql":     {Data: []byte("SELECT 1;")},
		"m/0071_x.up.sql~":    {Data: []byte("SELECT 2;")},
		"m/0072_y.up.sql.bak": {Data: []byte("SELECT 3;")},
		"m/notes.txt":         {Data: []byte("x")},
	}, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Migrations) != 1 || s.Migrations[71] == nil || string(s.Migrations[71].Up.Data) != "SELECT 1;" {
		t.Errorf("migrations = %v", s.Migrations)
	}
	var files []string
	for _, p := range s.Problems {
		files = append(files, p.File)
		if !strings.Contains(p.Msg, "golang-migrate reads") {
			t.Errorf("problem %q", p.Msg)
		}
	}
	if strings.Join(files, ",") != "m/0071_x.up.sql~,m/0072_y.up.sql.bak" {
		t.Errorf("problems on %v", files)
	}
}
