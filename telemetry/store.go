package telemetry

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"maps"
	"net/url"
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
		// synchronous FULL: a committed batch (answered 202) survives a
		// power loss too; batching pays for the fsync.
		s.db, err = sql.Open("sqlite", "file:"+dsn+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)")
		if err == nil {
			s.db.SetMaxOpenConns(4)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("opening the store %s: %w", Redact(dsn), err)
	}
	if err := s.migrate(); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("migrating the store: %w", err)
	}
	return s, nil
}

// Redact hides the credentials of a database URL for messages: the user
// information and a password parameter.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return dsn
	}
	if u.User != nil {
		u.User = url.User("…")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "…")
		u.RawQuery = q.Encode()
	}
	return u.String()
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

// The statements that store a report and its aggregates.
const (
	insertReport = `INSERT INTO reports (id, program, channel, week, os, arch, running, received) VALUES %s ON CONFLICT (id) DO NOTHING`
	upsertCell   = `INSERT INTO cells (program, channel, week, version, reports, running) VALUES %s
ON CONFLICT (program, channel, week, version) DO UPDATE SET reports = cells.reports + excluded.reports, running = cells.running + excluded.running`
	upsertCounter = `INSERT INTO cell_counters (program, channel, week, version, name, value) VALUES %s
ON CONFLICT (program, channel, week, version, name) DO UPDATE SET value = cell_counters.value + excluded.value`
)

// cellKey and counterKey address the aggregates.
type cellKey struct{ program, channel, week, version string }

type counterKey struct {
	cellKey
	name string
}

// batch is what one Add writes: the new reports, and the increments of
// the aggregates summed over them.
type batch struct {
	cells    map[cellKey][2]int64 // reports, running
	counters map[counterKey]int64
}

func (b *batch) add(r *Report) {
	versions := map[string]int64{}
	if r.Running != "" {
		versions[r.Running] = 1
	}
	for _, c := range r.Counters {
		if _, ok := versions[c.Version]; !ok {
			versions[c.Version] = 0
		}
	}
	for v, running := range versions {
		k := cellKey{r.Program, r.Channel, r.Week, v}
		c := b.cells[k]
		b.cells[k] = [2]int64{c[0] + 1, c[1] + running}
		if r.newNetwork {
			b.counters[counterKey{k, networksCounter}]++
		}
	}
	for _, c := range r.Counters {
		// Bounded per report: what the published figures' noise is
		// calibrated to (clipCounter).
		b.counters[counterKey{cellKey{r.Program, r.Channel, r.Week, c.Version}, c.Name}] += clipCounter(c.Name, c.Value)
	}
}

// Add stores reports in one transaction and updates the aggregates. It
// returns, per report, whether it was new: a report whose id is already
// stored (or twice in rs) changes nothing.
//
// The aggregates of the batch are summed in memory and written in key
// order, so that collectors sharing a database take row locks in the same
// order. On PostgreSQL each table gets multi-row statements (round trips
// dominate there); SQLite, in-process, runs one prepared statement per
// row, which it parses once.
func (s *Store) Add(ctx context.Context, rs []*Report, received time.Time) ([]bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	added := make([]bool, len(rs))
	first := map[string]int{}
	var fresh []int
	for i, r := range rs {
		if _, dup := first[r.ID]; !dup {
			first[r.ID] = i
			fresh = append(fresh, i)
		}
	}
	// Ids in order: collectors sharing a database lock rows alike.
	slices.SortFunc(fresh, func(a, b int) int { return strings.Compare(rs[a].ID, rs[b].ID) })
	if s.dialect == "postgres" {
		err = s.insertReportsSet(ctx, tx, rs, fresh, first, added, received)
	} else {
		err = s.insertReportsEach(ctx, tx, rs, fresh, added, received)
	}
	if err != nil {
		return nil, err
	}
	b := batch{cells: map[cellKey][2]int64{}, counters: map[counterKey]int64{}}
	for i, r := range rs {
		if added[i] {
			b.add(r)
		}
	}
	cells := slices.SortedFunc(maps.Keys(b.cells), func(x, y cellKey) int { return compareCell(x, y) })
	counters := slices.SortedFunc(maps.Keys(b.counters), func(x, y counterKey) int {
		if c := compareCell(x.cellKey, y.cellKey); c != 0 {
			return c
		}
		return strings.Compare(x.name, y.name)
	})
	cellRows := make([][]any, len(cells))
	for i, k := range cells {
		cellRows[i] = []any{k.program, k.channel, k.week, k.version, b.cells[k][0], b.cells[k][1]}
	}
	counterRows := make([][]any, len(counters))
	for i, k := range counters {
		counterRows[i] = []any{k.program, k.channel, k.week, k.version, k.name, b.counters[k]}
	}
	if err := s.writeRows(ctx, tx, upsertCell, 6, cellRows); err != nil {
		return nil, err
	}
	if err := s.writeRows(ctx, tx, upsertCounter, 6, counterRows); err != nil {
		return nil, err
	}
	return added, tx.Commit()
}

func compareCell(x, y cellKey) int {
	for _, c := range [][2]string{{x.program, y.program}, {x.channel, y.channel}, {x.week, y.week}, {x.version, y.version}} {
		if n := strings.Compare(c[0], c[1]); n != 0 {
			return n
		}
	}
	return 0
}

// values writes n groups of width placeholders: (?, ?), (?, ?).
func values(n, width int) string {
	group := "(" + strings.TrimSuffix(strings.Repeat("?, ", width), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(group+", ", n), ", ")
}

// maxParams keeps a statement under PostgreSQL's 65535 parameters.
const maxParams = 60000

// writeRows runs statement (a format with one %s for VALUES) over rows:
// multi-row on PostgreSQL, one prepared row at a time on SQLite.
func (s *Store) writeRows(ctx context.Context, tx *sql.Tx, statement string, width int, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	if s.dialect != "postgres" {
		st, err := tx.PrepareContext(ctx, fmt.Sprintf(statement, values(1, width)))
		if err != nil {
			return err
		}
		defer st.Close()
		for _, r := range rows {
			if _, err := st.ExecContext(ctx, r...); err != nil {
				return err
			}
		}
		return nil
	}
	per := maxParams / width
	for len(rows) > 0 {
		chunk := rows[:min(per, len(rows))]
		rows = rows[len(chunk):]
		args := make([]any, 0, len(chunk)*width)
		for _, r := range chunk {
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, s.q(fmt.Sprintf(statement, values(len(chunk), width))), args...); err != nil {
			return err
		}
	}
	return nil
}

// insertReportsEach inserts reports one prepared row at a time and marks
// which were new.
func (s *Store) insertReportsEach(ctx context.Context, tx *sql.Tx, rs []*Report, fresh []int, added []bool, received time.Time) error {
	st, err := tx.PrepareContext(ctx, fmt.Sprintf(insertReport, values(1, 8)))
	if err != nil {
		return err
	}
	defer st.Close()
	for _, i := range fresh {
		r := rs[i]
		res, err := st.ExecContext(ctx, r.ID, r.Program, r.Channel, r.Week, r.OS, r.Arch, r.Running, received.Unix())
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		added[i] = n > 0
	}
	return nil
}

// insertReportsSet inserts reports with one statement per chunk and
// learns which were new from RETURNING.
func (s *Store) insertReportsSet(ctx context.Context, tx *sql.Tx, rs []*Report, fresh []int, first map[string]int, added []bool, received time.Time) error {
	per := maxParams / 8
	for len(fresh) > 0 {
		chunk := fresh[:min(per, len(fresh))]
		fresh = fresh[len(chunk):]
		args := make([]any, 0, 8*len(chunk))
		for _, i := range chunk {
			r := rs[i]
			args = append(args, r.ID, r.Program, r.Channel, r.Week, r.OS, r.Arch, r.Running, received.Unix())
		}
		rows, err := tx.QueryContext(ctx, s.q(fmt.Sprintf(insertReport, values(len(chunk), 8))+" RETURNING id"), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			added[first[id]] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Has reports whether a report id is stored.
func (s *Store) Has(ctx context.Context, id string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM reports WHERE id = ?`), id).Scan(&n)
	return n > 0, err
}

// Count returns how many reports are stored.
// Prune deletes the reports received before cutoff. Their figures stay in
// the aggregates (cells), which is all the summary reads; only the rows
// kept to drop duplicates go. It returns how many were deleted.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM reports WHERE received < ?`), cutoff.Unix())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

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
	Suppressed bool  `json:"suppressed,omitempty"`
	Reports    int64 `json:"reports,omitempty"`
	Installs   int64 `json:"installs,omitempty"`
	// InstallsWithheld: fewer than MinInstalls reports run the version.
	InstallsWithheld bool             `json:"installsWithheld,omitempty"`
	Counters         map[string]int64 `json:"counters,omitempty"`
	// Networks sums, over the days of the week, the distinct source
	// networks the cell's reports came from.
	Networks int64 `json:"networks,omitempty"`
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
		if i, ok := index[k]; ok && name == networksCounter {
			cells[i].Networks = v
		} else if ok {
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
		c := &cells[i]
		switch {
		case c.Reports < int64(q.MinInstalls):
			*c = Cell{Program: c.Program, Channel: c.Channel, Week: c.Week, Version: c.Version, Suppressed: true}
		case c.Installs < int64(q.MinInstalls):
			// The cell has enough reports, but few of them run the
			// version: that count alone is withheld.
			c.Installs = 0
			c.InstallsWithheld = true
		}
	}
	return cells, nil
}
