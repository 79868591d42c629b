package telemetry

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store keeps reports and their aggregates: SQLite for a single collector,
// PostgreSQL for scale. Both pass the same conformance suite.
type Store struct {
	db      *sql.DB
	dialect string
}

// OpenStore opens (and migrates) a store: a postgres:// or postgresql://
// URL, or a SQLite file.
func OpenStore(ctx context.Context, dsn string) (*Store, error) {
	s := &Store{dialect: "sqlite"}
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		s.dialect = "postgres"
		s.db, err = sql.Open("pgx", dsn)
		if err == nil {
			s.db.SetMaxOpenConns(8)
		}
	} else {
		// WAL lets the summary read while a batch writes; one writer.
		s.db, err = sql.Open("sqlite", "file:"+dsn+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)")
		if err == nil {
			s.db.SetMaxOpenConns(4)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("opening the store %s: %w", redact(dsn), err)
	}
	if err := s.migrate(); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("migrating the store: %w", err)
	}
	return s, nil
}

// redact hides a password in a URL for messages.
func redact(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if j := strings.Index(dsn[i+3:], "@"); j >= 0 {
			return dsn[:i+3] + "…@" + dsn[i+3+j+1:]
		}
	}
	return dsn
}

// migrate brings the schema up to date with golang-migrate.
func (s *Store) migrate() error {
	src, err := iofs.New(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	var drv database.Driver
	if s.dialect == "postgres" {
		drv, err = migratepgx.WithInstance(s.db, &migratepgx.Config{})
	} else {
		drv, err = migratesqlite.WithInstance(s.db, &migratesqlite.Config{})
	}
	if err != nil {
		return err
	}
	m, err := migrate.NewWithInstance("iofs", src, s.dialect, drv)
	if err != nil {
		return err
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return err
	}
	return nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Dialect is sqlite or postgres.
func (s *Store) Dialect() string { return s.dialect }

// q writes a query's ? placeholders as the dialect wants them.
func (s *Store) q(query string) string {
	if s.dialect != "postgres" {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Add stores reports in one transaction and updates the aggregates. It
// returns, per report, whether it was new: a report whose id is already
// stored changes nothing.
func (s *Store) Add(ctx context.Context, rs []*Report, received time.Time) ([]bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, s.q(`INSERT INTO reports (id, program, channel, week, os, arch, running, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`))
	if err != nil {
		return nil, err
	}
	defer ins.Close()
	cell, err := tx.PrepareContext(ctx, s.q(`INSERT INTO cells (program, channel, week, version, reports, running) VALUES (?, ?, ?, ?, 1, ?)
ON CONFLICT (program, channel, week, version) DO UPDATE SET reports = cells.reports + 1, running = cells.running + excluded.running`))
	if err != nil {
		return nil, err
	}
	defer cell.Close()
	ctr, err := tx.PrepareContext(ctx, s.q(`INSERT INTO cell_counters (program, channel, week, version, name, value) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (program, channel, week, version, name) DO UPDATE SET value = cell_counters.value + excluded.value`))
	if err != nil {
		return nil, err
	}
	defer ctr.Close()
	added := make([]bool, len(rs))
	seen := map[string]bool{}
	for i, r := range rs {
		if seen[r.ID] {
			continue // twice in one batch
		}
		seen[r.ID] = true
		res, err := ins.ExecContext(ctx, r.ID, r.Program, r.Channel, r.Week, r.OS, r.Arch, r.Running, received.Unix())
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		added[i] = true
		versions := map[string]int{}
		if r.Running != "" {
			versions[r.Running] = 1
		}
		for _, c := range r.Counters {
			if _, ok := versions[c.Version]; !ok {
				versions[c.Version] = 0
			}
		}
		for _, v := range slices.Sorted(maps.Keys(versions)) {
			if _, err := cell.ExecContext(ctx, r.Program, r.Channel, r.Week, v, versions[v]); err != nil {
				return nil, err
			}
		}
		for _, c := range r.Counters {
			if _, err := ctr.ExecContext(ctx, r.Program, r.Channel, r.Week, c.Version, c.Name, c.Value); err != nil {
				return nil, err
			}
		}
	}
	return added, tx.Commit()
}

// Has reports whether a report id is stored.
func (s *Store) Has(ctx context.Context, id string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM reports WHERE id = ?`), id).Scan(&n)
	return n > 0, err
}

// Count returns how many reports are stored.
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM reports`).Scan(&n)
	return n, err
}

// Query selects cells of the summary; empty fields match everything.
type Query struct {
	Program, Channel, Version string
	// MinInstalls suppresses every cell fewer reports speak of.
	MinInstalls int
}

// Cell is the aggregate of one program, channel, week and version.
type Cell struct {
	Program string `json:"program"`
	Channel string `json:"channel"`
	Week    string `json:"week"`
	Version string `json:"version"`
	// Suppressed cells had fewer than MinInstalls reports: their figures
	// are withheld.
	Suppressed bool             `json:"suppressed,omitempty"`
	Reports    int64            `json:"reports,omitempty"`
	Installs   int64            `json:"installs,omitempty"`
	Counters   map[string]int64 `json:"counters,omitempty"`
}

// Summary returns the cells matching q, ordered by program, channel,
// version and week, with small cells suppressed.
func (s *Store) Summary(ctx context.Context, q Query) ([]Cell, error) {
	where, args := []string{"1 = 1"}, []any{}
	for _, f := range []struct{ col, v string }{{"program", q.Program}, {"channel", q.Channel}, {"version", q.Version}} {
		if f.v != "" {
			where = append(where, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	cond := strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT program, channel, week, version, reports, running FROM cells WHERE `+cond+` ORDER BY program, channel, version, week`), args...)
	if err != nil {
		return nil, err
	}
	var cells []Cell
	index := map[[4]string]int{}
	for rows.Next() {
		var c Cell
		if err := rows.Scan(&c.Program, &c.Channel, &c.Week, &c.Version, &c.Reports, &c.Installs); err != nil {
			rows.Close()
			return nil, err
		}
		index[[4]string{c.Program, c.Channel, c.Week, c.Version}] = len(cells)
		cells = append(cells, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, s.q(`SELECT program, channel, week, version, name, value FROM cell_counters WHERE `+cond), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k [4]string
		var name string
		var v int64
		if err := rows.Scan(&k[0], &k[1], &k[2], &k[3], &name, &v); err != nil {
			return nil, err
		}
		if i, ok := index[k]; ok {
			if cells[i].Counters == nil {
				cells[i].Counters = map[string]int64{}
			}
			cells[i].Counters[name] = v
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range cells {
		if cells[i].Reports < int64(q.MinInstalls) {
			cells[i] = Cell{Program: cells[i].Program, Channel: cells[i].Channel, Week: cells[i].Week, Version: cells[i].Version, Suppressed: true}
		}
	}
	return cells, nil
}
