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
	db, err := openSQLite(filepath.Join(e.dir, fmt.Sprintf("db%d.sqlite", e.n)))
	if err != nil {
		return nil, err
	}
	return db, nil
}

func openSQLite(path string) (*sqliteDB, error) {
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
		if err := d.foreignKeys(ctx, tn, s); err != nil {
			return nil, err
		}
		if t.Unique, err = d.uniqueKeys(ctx, tn); err != nil {
			return nil, err
		}
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

// uniqueKeys lists the columns of tn's unique indexes (primary key and
// UNIQUE constraints included; columns of expressions are not told).
func (d *sqliteDB) uniqueKeys(ctx context.Context, tn string) ([][]string, error) {
	rows, err := d.db.QueryContext(ctx, fmt.Sprintf(`SELECT name FROM pragma_index_list(%s) WHERE "unique"`, sqliteString(tn)))
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	var out [][]string
	for _, n := range names {
		cols, err := d.db.QueryContext(ctx, fmt.Sprintf(`SELECT coalesce(name, '') FROM pragma_index_info(%s) ORDER BY seqno`, sqliteString(n)))
		if err != nil {
			return nil, err
		}
		var key []string
		for cols.Next() {
			var c string
			if err := cols.Scan(&c); err != nil {
				cols.Close()
				return nil, err
			}
			if c != "" {
				key = append(key, c)
			}
		}
		cols.Close()
		if len(key) > 0 {
			out = append(out, key)
		}
	}
	// An INTEGER PRIMARY KEY is the rowid, not an index.
	pk, err := d.db.QueryContext(ctx, fmt.Sprintf(`SELECT name FROM pragma_table_info(%s) WHERE pk > 0 ORDER BY pk`, sqliteString(tn)))
	if err != nil {
		return nil, err
	}
	defer pk.Close()
	var key []string
	for pk.Next() {
		var c string
		if err := pk.Scan(&c); err != nil {
			return nil, err
		}
		key = append(key, c)
	}
	if len(key) > 0 {
		out = append(out, key)
	}
	return out, pk.Err()
}

func sqliteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (d *sqliteDB) dialect() string { return "sqlite" }

func (d *sqliteDB) probePool() (*sql.DB, error) { return sql.Open("sqlite", d.waiting()) }

// sqliteWriteLock is what every SQLite migration holds: golang-migrate runs
// a file in one transaction, and a writing transaction holds the database's
// single write lock until it commits.
const sqliteWriteLock = "database write lock (RESERVED until commit)"

// waitQueued: SQLite has no lock queue to wait in (its writers fail with
// SQLITE_BUSY instead).
func (d *sqliteDB) waitQueued(ctx context.Context) error { return nil }

func (d *sqliteDB) watchLocks(ctx context.Context, tables []string, found func(string)) {
	found(sqliteWriteLock)
	<-ctx.Done()
}

// foreignKeys adds table tn's foreign keys to s, named and written as
// PostgreSQL would.
func (d *sqliteDB) foreignKeys(ctx context.Context, tn string, s *Schema) error {
	rows, err := d.db.QueryContext(ctx, fmt.Sprintf("PRAGMA foreign_key_list(%q)", tn))
	if err != nil {
		return err
	}
	defer rows.Close()
	type fk struct {
		table    string
		from, to []string
	}
	fks := map[int]*fk{}
	for rows.Next() {
		var (
			id, seq                          int
			table, from, onUpd, onDel, match string
			to                               sql.NullString
		)
		if err := rows.Scan(&id, &seq, &table, &from, &to, &onUpd, &onDel, &match); err != nil {
			return err
		}
		if fks[id] == nil {
			fks[id] = &fk{table: table}
		}
		fks[id].from = append(fks[id].from, from)
		fks[id].to = append(fks[id].to, to.String) // empty: the referenced primary key
	}
	for _, k := range fks {
		name := tn + "_" + strings.Join(k.from, "_") + "_fkey"
		to := strings.Join(k.to, ", ")
		if to == "" {
			to = "rowid"
		}
		s.Constraints[name] = Constraint{Table: tn, Kind: "foreign key",
			Def: fmt.Sprintf("FOREIGN KEY (%s) REFERENCES %s(%s)", strings.Join(k.from, ", "), k.table, to)}
	}
	return rows.Err()
}

// quietRun runs a migration's statements in a rolled-back transaction,
// noting the tables and indexes whose root page changed: a rebuild.
func (d *sqliteDB) quietRun(ctx context.Context, stmts []Stmt) (quietRun, error) {
	return runQuietly(ctx, d.db, stmts, catalogProbe{
		relations: relationsQuery(`SELECT name, type = 'index', rootpage, tbl_name FROM sqlite_master WHERE type IN ('table', 'index') AND rootpage > 0`),
	})
}
