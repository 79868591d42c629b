package migrations

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestLockTimeout(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want time.Duration
		ok   bool
	}{
		{"SET lock_timeout = '2s';\nALTER TABLE t ADD c int;", 2 * time.Second, true},
		{"set local lock_timeout to 1500;", 1500 * time.Millisecond, true},
		{"SET lock_timeout = '250ms'", 250 * time.Millisecond, true},
		{"SET lock_timeout='1min'", time.Minute, true},
		{"SET lock_timeout = '0'", 0, false},
		{"SET lock_timeout = DEFAULT", 0, false},
		{"-- SET lock_timeout = '2s'\nALTER TABLE t ADD c int;", 0, false},
		{"ALTER TABLE t ADD c int;", 0, false},
		{"SELECT set_config('lock_timeout', '2s', false);\nALTER TABLE t ADD c int;", 2 * time.Second, true},
		{"SELECT set_config('statement_timeout', '2s', false);\nALTER TABLE t ADD c int;", 0, false},
	} {
		stmts, _ := parseFile("postgres", tc.sql)
		got, ok := fileLockTimeout(stmts)
		if got != tc.want || ok != tc.ok {
			t.Errorf("lockTimeout(%q) = %v, %v; want %v, %v", tc.sql, got, ok, tc.want, tc.ok)
		}
	}
}

func TestQuantileAndFit(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if q := quantile(xs, 0.5); q != 5 {
		t.Errorf("p50 = %v", q)
	}
	if q := quantile(xs, 0.99); q != 10 {
		t.Errorf("p99 = %v", q)
	}
	a, b := fitLine([]Point{{Rows: 1000, BlockedMs: 12}, {Rows: 2000, BlockedMs: 22}, {Rows: 4000, BlockedMs: 42}})
	if d := a - 2; d*d > 1e-9 || (b-0.01)*(b-0.01) > 1e-12 {
		t.Errorf("fit = %v + %v×rows, want 2 + 0.01×rows", a, b)
	}
}

// withMigration is a set of t plus one new migration 2.
func withMigration(up string) *Set {
	s, _ := Load(fstest.MapFS{
		"1_t.up.sql":   {Data: []byte("CREATE TABLE t (id integer PRIMARY KEY, n integer, note text);")},
		"1_t.down.sql": {Data: []byte("DROP TABLE t;")},
		"2_x.up.sql":   {Data: []byte(up)},
		"2_x.down.sql": {Data: []byte("SELECT 1;")},
	}, ".")
	return s
}

// TestMeasure measures real migrations under the probe on every engine.
func TestMeasure(t *testing.T) {
	ctx := context.Background()
	sizes := []int64{2000, 20000}
	for name, eng := range engines(t) {
		t.Run(name, func(t *testing.T) {
			head := withMigration("CREATE INDEX t_n ON t (n);")
			m, err := measureMigration(ctx, eng, head, head.Migrations[2], []string{"t"}, sizes, map[string]int64{"t": 1000000})
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Points) != 2 || m.Points[0].Rows != 2000 || m.Points[1].Rows != 20000 {
				t.Fatalf("points = %+v", m.Points)
			}
			for _, p := range m.Points {
				if p.MigrationMs <= 0 || p.ProbeOps == 0 || p.Rewrite {
					t.Errorf("point %+v", p)
				}
			}
			if m.TargetRows != 1000000 || m.PredictedS < 0 {
				t.Errorf("extrapolation to %d rows: %v s", m.TargetRows, m.PredictedS)
			}
			if name == "sqlite" {
				if !slices.Equal(m.Locks, []string{sqliteWriteLock}) || m.Queue != nil {
					t.Errorf("sqlite locks %v, queue %+v", m.Locks, m.Queue)
				}
				return
			}
			// PostgreSQL: the statement's own locks, traced in its transaction.
			if len(m.Statements) != 1 || !slices.Contains(m.Statements[0].Locks, TableLock{Table: "t", Mode: "ShareLock"}) {
				t.Errorf("statements = %+v", m.Statements)
			}
			// The lock queue: queued behind a writing transaction, the
			// migration blocks the probe's writes until that one ends.
			q := m.Queue
			if q == nil || q.HeldBy != "writer" || q.HeldMs != ms(queueHold) || q.GaveUp != "" || q.BlockedMs <= 0 {
				t.Errorf("lock queue = %+v", q)
			}

			// CONCURRENTLY: no lock that blocks the application, no queue.
			head = withMigration("CREATE INDEX CONCURRENTLY t_n ON t (n);")
			m, err = measureMigration(ctx, eng, head, head.Migrations[2], []string{"t"}, sizes, nil)
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(m.Locks, conflictsWithApp) || m.Queue != nil {
				t.Errorf("CONCURRENTLY: locks %v, queue %+v", m.Locks, m.Queue)
			}

			// A type change rewrites the table; with a lock_timeout the
			// migration gives up behind the reader instead of stalling.
			head = withMigration("SET lock_timeout = '100ms';\nALTER TABLE t ALTER COLUMN n TYPE bigint;")
			m, err = measureMigration(ctx, eng, head, head.Migrations[2], []string{"t"}, sizes, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !m.Points[0].Rewrite || !m.Points[1].Rewrite {
				t.Errorf("ALTER TYPE did not show a rewrite: %+v", m.Points)
			}
			if len(m.Statements) != 2 || m.Statements[1].Line != 2 || !slices.Contains(m.Statements[1].Locks, TableLock{Table: "t", Mode: "AccessExclusiveLock"}) {
				t.Errorf("statements = %+v", m.Statements)
			}
			if q := m.Queue; q == nil || !strings.Contains(q.GaveUp, "lock timeout") || q.HeldBy != "reader" || q.HeldMs != 600 {
				t.Errorf("lock queue with lock_timeout = %+v", q)
			}
		})
	}
}

// measureMigration measures one new migration (the last of head's that it
// needs applied first) on the given tables at each size: measureAll for one.
func measureMigration(ctx context.Context, eng Engine, head *Set, m *Migration, tables []string, sizes []int64, targets map[string]int64) (*Measurement, error) {
	stmts, _ := parseFile(eng.Name(), string(m.Up.Data))
	plan := measurePlan{sized: map[uint][]string{m.Version: tables}, stmts: map[uint][]Stmt{m.Version: stmts}, sizes: sizes, targets: targets}
	if eng.Name() == "postgres" {
		if s := strongTables(stmts, nil, func(string) bool { return true }); len(s) > 0 {
			plan.queued = map[uint][]string{m.Version: s}
		}
	}
	all, _, err := measureAll(ctx, eng, head, []*Migration{m}, plan)
	if err != nil {
		return nil, err
	}
	return all[0], nil
}

// TestFinishNoisySizes: a cost that grows with the rows but was measured
// faster at the larger size (noise at small sizes on a busy machine) is
// not extrapolated to nothing: the largest measurement is scaled to the
// production size, and the prediction is never below what was measured.
func TestFinishNoisySizes(t *testing.T) {
	meas := &Measurement{File: "2_x.up.sql", Tables: []string{"t"}, rowLocks: true, onlyDML: true,
		Points: []Point{{Rows: 30, MigrationMs: 4, ChangedRows: 30}, {Rows: 300, MigrationMs: 2, ChangedRows: 300}}}
	finish(meas, sqliteNamed{}, map[string]bool{}, map[string]int64{"t": 100_000_000})
	if !meas.Scaled || meas.PredictedS < 600 {
		t.Fatalf("predicted %.3f s (scaled %v) for 10^8 rows from 2 ms at 300 rows, want the measurement scaled (about 667 s)", meas.PredictedS, meas.Scaled)
	}

	// A line that does grow is extrapolated as before.
	meas = &Measurement{File: "2_x.up.sql", Tables: []string{"t"}, rowLocks: true, onlyDML: true,
		Points: []Point{{Rows: 1000, MigrationMs: 12, ChangedRows: 1000}, {Rows: 2000, MigrationMs: 22, ChangedRows: 2000}}}
	finish(meas, sqliteNamed{}, map[string]bool{}, map[string]int64{"t": 1_000_000})
	if meas.Scaled || math.Abs(meas.PredictedS-10.002) > 0.01 {
		t.Errorf("predicted %.3f s (scaled %v), want the fit's 10.002 s", meas.PredictedS, meas.Scaled)
	}
}

// sqliteNamed is an engine that only says its name: all finish asks.
type sqliteNamed struct{ Engine }

func (sqliteNamed) Name() string { return "sqlite" }
