package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/golang-migrate/migrate/v4"
)

// Point is one measurement of a migration at one table size.
type Point struct {
	Rows        int64   `json:"rows"`
	MigrationMs float64 `json:"migrationMs"`
	// BlockedMs is how long a probe query had to wait behind the
	// migration: the slowest probe operation during the migration, less the
	// probe's normal latency.
	BlockedMs   float64 `json:"blockedMs"`
	ProbeOps    int     `json:"probeOps"`
	ProbeFailed int     `json:"probeFailed"`
	Rewrite     bool    `json:"rewrite"`
}

// Measurement is what a new migration costs a running application.
type Measurement struct {
	File   string   `json:"file"`
	Tables []string `json:"tables"`
	Locks  []string `json:"locks"`
	Points []Point  `json:"points"`
	// Fit: blocked ms = Intercept + Slope × rows.
	Intercept float64 `json:"interceptMs"`
	Slope     float64 `json:"msPerRow"`
	// TargetRows is the production size it is extrapolated to (0: none
	// configured; the largest measurement stands).
	TargetRows int64   `json:"targetRows"`
	PredictedS float64 `json:"predictedBlockedSeconds"`
}

// touchedTables returns the populated tables a migration's statements
// alter, index or write.
func touchedTables(sql string, populated func(string) bool) []string {
	seen := map[string]bool{}
	var out []string
	for _, st := range SplitStatements(sql) {
		var t string
		if m := reAlterTable.FindStringSubmatch(st.SQL); m != nil {
			t = m[1]
		} else if m := reCreateIndex.FindStringSubmatch(st.SQL); m != nil {
			t = m[3]
		} else if m := reDML.FindStringSubmatch(st.SQL); m != nil {
			t = m[2]
		}
		t = unqualify(t)
		if t != "" && populated(t) && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// genExpr is an SQL expression of row number g for a column of type t.
func genExpr(t string) string {
	t = strings.ToLower(t)
	switch {
	case strings.Contains(t, "int") || strings.Contains(t, "serial"):
		return "g"
	case strings.Contains(t, "bool"):
		return "(g % 2 = 0)"
	case strings.Contains(t, "numeric") || strings.Contains(t, "real") || strings.Contains(t, "double") || strings.Contains(t, "decimal"):
		return "g::numeric / 7"
	case strings.Contains(t, "timestamp") || strings.Contains(t, "date"):
		return "now() - make_interval(secs => g)"
	case strings.Contains(t, "uuid"):
		return "md5(g::text)::uuid"
	case strings.Contains(t, "json"):
		return "'{}'"
	case strings.Contains(t, "bytea"):
		return "decode(md5(g::text), 'hex')"
	}
	return "'row ' || g"
}

// seedSQL inserts rows from..to into table t, generated per column type;
// columns with defaults (serials, timestamps) keep their defaults.
func seedSQL(t *Table, from, to int64) string {
	var cols, exprs []string
	for _, n := range slices.Sorted(maps.Keys(t.Columns)) {
		c := t.Columns[n]
		if c.Default != "" {
			continue
		}
		cols = append(cols, `"`+n+`"`)
		exprs = append(exprs, genExpr(c.Type))
	}
	if len(cols) == 0 {
		return fmt.Sprintf(`INSERT INTO %q SELECT FROM generate_series(%d, %d) g`, t.Name, from, to)
	}
	return fmt.Sprintf(`INSERT INTO %q (%s) SELECT %s FROM generate_series(%d, %d) g`, t.Name, strings.Join(cols, ", "), strings.Join(exprs, ", "), from, to)
}

type probeOp struct {
	start time.Time
	dur   time.Duration
	err   error
}

// measureMigration runs one new migration on tables seeded to each size,
// with a concurrent probe of readers and writers, and fits the blocking.
func measureMigration(ctx context.Context, eng *Postgres, head *Set, m *Migration, tables []string, sizes []int64, targets map[string]int64) (*Measurement, error) {
	meas := &Measurement{File: head.Path(m.Up), Tables: tables}
	prev := uint(0)
	for _, v := range head.Versions() {
		if v < m.Version {
			prev = v
		}
	}
	locks := map[string]bool{}
	for _, size := range sizes {
		p, err := measureOnce(ctx, eng, head, m, prev, tables, size, locks)
		if err != nil {
			return nil, fmt.Errorf("measuring %s at %d rows: %w", m.Up.Name, size, err)
		}
		meas.Points = append(meas.Points, *p)
	}
	meas.Locks = slices.Sorted(maps.Keys(locks))
	meas.Intercept, meas.Slope = fitLine(meas.Points)
	for _, t := range tables {
		if n := targets[t]; n > meas.TargetRows {
			meas.TargetRows = n
		}
	}
	worst := 0.0
	for _, p := range meas.Points {
		worst = math.Max(worst, p.BlockedMs)
	}
	if meas.TargetRows > 0 {
		worst = math.Max(0, meas.Intercept+meas.Slope*float64(meas.TargetRows))
	}
	meas.PredictedS = worst / 1000
	return meas, nil
}

func measureOnce(ctx context.Context, eng *Postgres, head *Set, m *Migration, prev uint, tables []string, size int64, locks map[string]bool) (*Point, error) {
	dbi, err := eng.NewDB(ctx)
	if err != nil {
		return nil, err
	}
	defer dbi.Close()
	db := dbi.(*pgDB)
	mig, err := newMigrate(ctx, db, head, m.Version)
	if err != nil {
		return nil, err
	}
	if prev > 0 {
		if err := mig.Migrate(prev); err != nil && !errors.Is(err, migrate.ErrNoChange) {
			return nil, err
		}
	}
	schema, err := db.Schema(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		tb := schema.Tables[t]
		if tb == nil {
			continue
		}
		if _, err := db.db.ExecContext(ctx, seedSQL(tb, 1, size)); err != nil {
			return nil, fmt.Errorf("seeding %s: %w", t, err)
		}
	}
	if _, err := db.db.ExecContext(ctx, "ANALYZE"); err != nil {
		return nil, err
	}
	nodes := func() map[string]int64 {
		out := map[string]int64{}
		for _, t := range tables {
			var n int64
			db.db.QueryRowContext(ctx, "SELECT relfilenode FROM pg_class WHERE relname = $1 AND relkind IN ('r', 'p')", t).Scan(&n)
			out[t] = n
		}
		return out
	}
	before := nodes()

	// The probe: a reader and a writer per table, on their own connections.
	pu, _ := url.Parse(db.url)
	q := pu.Query()
	q.Set("application_name", "relcheck-probe")
	pu.RawQuery = q.Encode()
	probeDB, err := sql.Open("pgx", pu.String())
	if err != nil {
		return nil, err
	}
	defer probeDB.Close()
	probeDB.SetMaxOpenConns(2*len(tables) + 1)
	probeCtx, stopProbe := context.WithCancel(ctx)
	var mu sync.Mutex
	var ops []probeOp
	var wg sync.WaitGroup
	for i, t := range tables {
		tb := schema.Tables[t]
		if tb == nil {
			continue
		}
		queries := []func(n int64) string{
			func(int64) string { return fmt.Sprintf("SELECT * FROM %q LIMIT 1", t) },
			func(n int64) string { return seedSQL(tb, n, n) },
		}
		for j, qf := range queries {
			wg.Add(1)
			go func(qf func(int64) string, next int64) {
				defer wg.Done()
				// Bounded in count and time: at most 100000 operations, and
				// each one at most a minute.
				for k := 0; k < 100000 && probeCtx.Err() == nil; k++ {
					opCtx, cancel := context.WithTimeout(probeCtx, time.Minute)
					start := time.Now()
					_, err := probeDB.ExecContext(opCtx, qf(next))
					cancel()
					if probeCtx.Err() != nil {
						return
					}
					mu.Lock()
					ops = append(ops, probeOp{start: start, dur: time.Since(start), err: err})
					mu.Unlock()
					next++
					time.Sleep(2 * time.Millisecond)
				}
			}(qf, size*int64(10+i*2+j)+1)
		}
	}
	time.Sleep(100 * time.Millisecond) // a baseline for the probe
	// Watch the locks the migration's backend holds on the tables.
	monCtx, stopMon := context.WithCancel(ctx)
	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		for monCtx.Err() == nil {
			rows, err := db.db.QueryContext(monCtx, `
SELECT DISTINCT l.mode FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE c.relname = ANY($1) AND l.granted AND a.pid <> pg_backend_pid()
  AND a.application_name <> 'relcheck-probe'`, tables)
			if err == nil {
				for rows.Next() {
					var mode string
					if rows.Scan(&mode) == nil {
						mu.Lock()
						locks[mode] = true
						mu.Unlock()
					}
				}
				rows.Close()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t0 := time.Now()
	upErr := mig.Steps(1)
	t1 := time.Now()
	time.Sleep(20 * time.Millisecond)
	stopMon()
	<-monDone
	stopProbe()
	wg.Wait()
	if upErr != nil {
		return nil, upErr
	}
	after := nodes()

	p := &Point{Rows: size, MigrationMs: ms(t1.Sub(t0))}
	for _, t := range tables {
		if before[t] != 0 && after[t] != 0 && before[t] != after[t] {
			p.Rewrite = true
		}
	}
	var baseline []float64
	worst := 0.0
	for _, op := range ops {
		end := op.start.Add(op.dur)
		if op.err != nil {
			p.ProbeFailed++
		}
		p.ProbeOps++
		switch {
		case end.Before(t0):
			baseline = append(baseline, ms(op.dur))
		case op.start.Before(t1):
			worst = math.Max(worst, ms(op.dur))
		}
	}
	p.BlockedMs = math.Max(0, worst-median(baseline))
	return p, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// fitLine fits blocked ms = a + b × rows by least squares.
func fitLine(ps []Point) (a, b float64) {
	n := float64(len(ps))
	if n == 0 {
		return 0, 0
	}
	var sx, sy, sxx, sxy float64
	for _, p := range ps {
		x, y := float64(p.Rows), p.BlockedMs
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	den := n*sxx - sx*sx
	if n < 2 || den == 0 {
		return sy / n, 0
	}
	b = (n*sxy - sx*sy) / den
	a = (sy - b*sx) / n
	return a, b
}
