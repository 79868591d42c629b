package migrations

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/golang-migrate/migrate/v4/database"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// SQLite is the embedded engine: each database is a file in a temporary
// directory, driven in-process by modernc.org/sqlite.
type SQLite struct {
	dir string
	n   int
}

// NewSQLite returns the SQLite engine.
func NewSQLite() (*SQLite, error) {
	dir, err := os.MkdirTemp("", "relcheck-sqlite-")
	if err != nil {
		return nil, err
	}
	return &SQLite{dir: dir}, nil
}

func (e *SQLite) Name() string { return "sqlite" }

func (e *SQLite) Close() error { return os.RemoveAll(e.dir) }

func (e *SQLite) NewDB(ctx context.Context) (DB, error) {
	e.n++
	path := filepath.Join(e.dir, fmt.Sprintf("db%d.sqlite", e.n))
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return nil, err
	}
	return &sqliteDB{path: path, db: db}, nil
}

type sqliteDB struct {
	path string
	db   *sql.DB
}

func (d *sqliteDB) SQL() *sql.DB { return d.db }

// waiting is the DSN of a connection that waits for the database's locks
// (as applications configure it) instead of failing with SQLITE_BUSY.
func (d *sqliteDB) waiting() string {
	return "file:" + d.path + "?_pragma=busy_timeout(60000)"
}

func (d *sqliteDB) Driver(ctx context.Context) (database.Driver, error) {
	db, err := sql.Open("sqlite", d.waiting())
	if err != nil {
		return nil, err
	}
	return migratesqlite.WithInstance(db, &migratesqlite.Config{})
}

func (d *sqliteDB) Close() error {
	err := d.db.Close()
	os.Remove(d.path)
	return err
}

func (d *sqliteDB) tables(ctx context.Context) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

func (d *sqliteDB) Schema(ctx context.Context) (*Schema, error) {
	s := newSchema()
	names, err := d.tables(ctx)
	if err != nil {
		return nil, err
	}
	for _, tn := range names {
		t := &Table{Name: tn, Columns: map[string]*Column{}}
		rows, err := d.db.QueryContext(ctx, fmt.Sprintf("PRAGMA table_info(%q)", tn))
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var (
				cid, notnull, pk int
				name, typ        string
				dflt             sql.NullString
			)
			if err := rows.Scan(&cid, &name, &typ, &notnull, &dflt, &pk); err != nil {
				rows.Close()
				return nil, err
			}
			t.Columns[name] = &Column{Name: name, Type: normType(typ), NotNull: notnull == 1 || pk == 1, Default: dflt.String}
		}
		rows.Close()
		s.Tables[tn] = t
	}
	rows, err := d.db.QueryContext(ctx, `SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master WHERE type IN ('index', 'view') AND name NOT LIKE 'sqlite_%' AND tbl_name != 'schema_migrations'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var typ, name, tbl, def string
		if err := rows.Scan(&typ, &name, &tbl, &def); err != nil {
			return nil, err
		}
		def = strings.Join(strings.Fields(def), " ")
		if typ == "index" {
			s.Indexes[name] = def
		} else {
			s.Views[name] = def
		}
	}
	return s, rows.Err()
}

// Seed inserts rows with values that fit each column's type affinity.
func (d *sqliteDB) Seed(ctx context.Context, n int) error {
	s, err := d.Schema(ctx)
	if err != nil {
		return err
	}
	for _, t := range s.Tables {
		var cols []string
		for c := range t.Columns {
			cols = append(cols, c)
		}
		for i := 1; i <= n; i++ {
			var vals []string
			for _, c := range cols {
				vals = append(vals, seedValue(t.Columns[c].Type, i))
			}
			q := fmt.Sprintf("INSERT INTO %q (%s) VALUES (%s)", t.Name, quoteAll(cols), strings.Join(vals, ", "))
			// A row a constraint refuses is simply not seeded.
			d.db.ExecContext(ctx, q)
		}
	}
	return nil
}

func quoteAll(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = fmt.Sprintf("%q", c)
	}
	return strings.Join(q, ", ")
}

// seedValue returns a SQL literal for row i of a column of type t.
func seedValue(t string, i int) string {
	t = strings.ToLower(t)
	switch {
	case strings.Contains(t, "int") || strings.Contains(t, "serial"):
		return fmt.Sprint(i)
	case strings.Contains(t, "bool"):
		return "true"
	case strings.Contains(t, "real") || strings.Contains(t, "float") || strings.Contains(t, "double") || strings.Contains(t, "numeric") || strings.Contains(t, "decimal"):
		return fmt.Sprintf("%d.5", i)
	case strings.Contains(t, "timestamp") || strings.Contains(t, "date"):
		return fmt.Sprintf("'2026-01-%02d'", 1+i%28)
	case strings.Contains(t, "uuid"):
		return fmt.Sprintf("'00000000-0000-0000-0000-%012d'", i)
	case strings.Contains(t, "json"):
		return "'{}'"
	case strings.Contains(t, "blob") || strings.Contains(t, "bytea"):
		return "X'00'"
	}
	return fmt.Sprintf("'seed %d'", i)
}

func (d *sqliteDB) dialect() string { return "sqlite" }

func (d *sqliteDB) probePool() (*sql.DB, error) { return sql.Open("sqlite", d.waiting()) }

func (d *sqliteDB) storage(ctx context.Context, table string) int64 {
	var n int64
	d.db.QueryRowContext(ctx, "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", table).Scan(&n)
	return n
}

// sqliteWriteLock is what every SQLite migration holds: golang-migrate runs
// a file in one transaction, and a writing transaction holds the database's
// single write lock until it commits.
const sqliteWriteLock = "database write lock (RESERVED until commit)"

func (d *sqliteDB) watchLocks(ctx context.Context, tables []string, found func(string)) {
	found(sqliteWriteLock)
	<-ctx.Done()
}
