package migrations

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/golang-migrate/migrate/v4"
)

// Provision gives a database of eng as production has it: every
// migration of set applied, the tables of sizes seeded to those row
// counts with the migrations gate's seeder (constraints, keys and
// foreign keys kept), and ANALYZEd. It is what a realistic load test
// runs on (the perf gate's scenarios with a database). problems says
// which tables could not be filled, and why.
func Provision(ctx context.Context, eng Engine, set *Set, sizes map[string]int64) (db DB, problems []string, err error) {
	db, err = eng.NewDB(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	if len(set.Versions()) > 0 {
		m, err := newMigrate(ctx, db, set, 0)
		if err != nil {
			return nil, nil, err
		}
		err = m.Up()
		m.Close()
		if err != nil && !errors.Is(err, migrate.ErrNoChange) {
			return nil, nil, fmt.Errorf("the migrations do not apply on %s: %w", eng.Name(), unwrapDBError(err))
		}
	}
	schema, err := db.Schema(ctx)
	if err != nil {
		return nil, nil, err
	}
	s := newSeeder(eng.Name(), schema)
	for _, t := range slices.Sorted(maps.Keys(sizes)) {
		if schema.Tables[t] == nil {
			problems = append(problems, fmt.Sprintf("%s: no such table after the migrations", t))
			continue
		}
		if err := s.seed(ctx, db.SQL(), t, sizes[t]); err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			problems = append(problems, err.Error())
		}
	}
	if _, err := db.SQL().ExecContext(ctx, "ANALYZE"); err != nil {
		return nil, nil, err
	}
	return db, problems, nil
}

// Clone copies a provisioned database for one use: PostgreSQL creates it
// from db as a template (a copy of its files, seconds where seeding took
// minutes; db's own connections are closed for it, as PostgreSQL asks),
// SQLite copies the file. The clone is dropped by its Close.
func Clone(ctx context.Context, db DB) (DB, error) {
	switch d := db.(type) {
	case *pgDB:
		d.db.Close() // a template may have no other sessions
		name := d.name + "_" + randomSuffix()
		if _, err := d.p.admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE "+d.name); err != nil {
			return nil, fmt.Errorf("copying the database: %w", err)
		}
		c, err := d.p.open(name)
		if err != nil {
			return nil, err
		}
		return c, nil
	case *sqliteDB:
		path := strings.TrimSuffix(d.path, ".sqlite") + "_" + randomSuffix() + ".sqlite"
		if err := copyFile(d.path, path); err != nil {
			return nil, err
		}
		c, err := openSQLite(path)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	return nil, fmt.Errorf("cannot copy a %T", db)
}

// URL is how a program reaches db: a postgres:// URL, or the SQLite
// file's path.
func URL(db DB) string {
	switch d := db.(type) {
	case *pgDB:
		return d.url
	case *sqliteDB:
		return d.path
	}
	return ""
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
