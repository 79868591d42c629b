package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
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
	// ProbeP50Ms and ProbeP99Ms are the probe's latency percentiles
	// while the migration ran; ProbeFailed counts its failed operations then.
	ProbeP50Ms float64 `json:"probeP50Ms"`
	ProbeP99Ms float64 `json:"probeP99Ms"`
	// HeldBy and HeldMs are set in the lock-queue case: a "reader" or a
	// "writer" transaction held the tables this long before the migration
	// could get its lock.
	HeldBy string  `json:"heldBy,omitempty"`
	HeldMs float64 `json:"heldMs,omitempty"`
	// GaveUp is the error of a migration that gave up waiting (its
	// lock_timeout) in the lock-queue case.
	GaveUp string `json:"gaveUp,omitempty"`
}

// Measurement is what a new migration costs a running application.
type Measurement struct {
	File   string   `json:"file"`
	Tables []string `json:"tables"`
	Locks  []string `json:"locks"`
	// Statements are the locks each statement takes, traced in the
	// migration's transaction (PostgreSQL).
	Statements []StatementLocks `json:"statements,omitempty"`
	Points     []Point          `json:"points"`
	// Queue is the lock-queue case: the migration run behind a long
	// reader (PostgreSQL, strong locks only).
	Queue *Point `json:"lockQueue,omitempty"`
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

// genExpr is an SQL expression of row number g for a column of type t in
// the given dialect.
func genExpr(dialect, t string) string {
	t = strings.ToLower(t)
	lite := dialect == "sqlite"
	switch {
	case strings.Contains(t, "int") || strings.Contains(t, "serial"):
		return "g"
	case strings.Contains(t, "bool"):
		if lite {
			return "(g % 2)"
		}
		return "(g % 2 = 0)"
	case strings.Contains(t, "numeric") || strings.Contains(t, "real") || strings.Contains(t, "double") || strings.Contains(t, "decimal") || strings.Contains(t, "float"):
		if lite {
			return "g / 7.0"
		}
		return "g::numeric / 7"
	case strings.Contains(t, "timestamp") || strings.Contains(t, "date"):
		if lite {
			return "datetime(1700000000 - g, 'unixepoch')"
		}
		return "now() - make_interval(secs => g)"
	case strings.Contains(t, "uuid"):
		if lite {
			return "printf('00000000-0000-4000-8000-%012d', g)"
		}
		return "md5(g::text)::uuid"
	case strings.Contains(t, "json"):
		return "'{}'"
	case strings.Contains(t, "bytea"):
		return "decode(md5(g::text), 'hex')"
	case strings.Contains(t, "blob"):
		return "randomblob(16)"
	}
	return "'row ' || g"
}

// seedSQL inserts rows from..to into table t, generated per column type;
// columns with defaults (serials, timestamps) keep their defaults.
func seedSQL(dialect string, t *Table, from, to int64) string {
	var cols, exprs []string
	for _, n := range slices.Sorted(maps.Keys(t.Columns)) {
		c := t.Columns[n]
		if c.Default != "" {
			continue
		}
		cols = append(cols, `"`+n+`"`)
		exprs = append(exprs, genExpr(dialect, c.Type))
	}
	if dialect == "sqlite" {
		series := fmt.Sprintf(`WITH RECURSIVE s(g) AS (SELECT %d UNION ALL SELECT g + 1 FROM s WHERE g < %d) `, from, to)
		if len(cols) == 0 {
			return series + fmt.Sprintf(`INSERT INTO %q DEFAULT VALUES`, t.Name) // one row
		}
		return series + fmt.Sprintf(`INSERT INTO %q (%s) SELECT %s FROM s`, t.Name, strings.Join(cols, ", "), strings.Join(exprs, ", "))
	}
	if len(cols) == 0 {
		return fmt.Sprintf(`INSERT INTO %q SELECT FROM generate_series(%d, %d) g`, t.Name, from, to)
	}
	return fmt.Sprintf(`INSERT INTO %q (%s) SELECT %s FROM generate_series(%d, %d) g`, t.Name, strings.Join(cols, ", "), strings.Join(exprs, ", "), from, to)
}

// loadDB is a database that migrations can be measured on: it seeds
// tables, gives the probe its own connections, identifies a table's
// storage (to see rewrites) and watches the locks of other sessions.
type loadDB interface {
	DB
	dialect() string
	// probePool opens connections for the probe, told apart from the
	// migration's by the database (application_name), and waiting for
	// locks rather than failing at once.
	probePool() (*sql.DB, error)
	// storage identifies the table's data files; a change is a rewrite.
	storage(ctx context.Context, table string) int64
	// watchLocks reports the lock modes the migrating session holds on
	// tables until ctx ends.
	watchLocks(ctx context.Context, tables []string, found func(mode string))
}

// StatementLocks are the table locks one statement of a migration holds,
// in the file's transaction, once it has run.
type StatementLocks struct {
	Line  int         `json:"line"`
	SQL   string      `json:"sql"`
	Locks []TableLock `json:"locks"`
}

// TableLock is a lock mode held on a table.
type TableLock struct {
	Table string `json:"table"`
	Mode  string `json:"mode"`
}

// lockTracer is a database that can list the locks each statement of a
// migration takes, from inside the migration's own transaction.
type lockTracer interface {
	traceLocks(ctx context.Context, sql string, tables []string) ([]StatementLocks, error)
}

// holder is the long transaction of the lock-queue case.
type holder struct {
	kind string // "reader" or "writer"
	hold time.Duration
}

type probeOp struct {
	start time.Time
	dur   time.Duration
	err   error
}

// queueHold is how long the long transaction of the lock-queue case holds
// the touched tables after the migration starts.
const queueHold = 500 * time.Millisecond

// measureMigration runs one new migration on tables seeded to each size,
// with a concurrent probe of readers and writers, and fits the blocking.
// On PostgreSQL, a migration that takes a lock conflicting with the
// application's is also run behind a long reader (the lock queue).
func measureMigration(ctx context.Context, eng Engine, head *Set, m *Migration, tables []string, sizes []int64, targets map[string]int64) (*Measurement, error) {
	meas := &Measurement{File: head.Path(m.Up), Tables: tables}
	prev := uint(0)
	for _, v := range head.Versions() {
		if v < m.Version {
			prev = v
		}
	}
	locks := map[string]bool{}
	for i, size := range sizes {
		var trace *[]StatementLocks
		if i == 0 {
			trace = &meas.Statements
		}
		p, err := measureOnce(ctx, eng, head, m, prev, tables, size, nil, locks, trace)
		if err != nil {
			return nil, fmt.Errorf("measuring %s at %d rows: %w", m.Up.Name, size, err)
		}
		meas.Points = append(meas.Points, *p)
	}
	for _, st := range meas.Statements {
		for _, l := range st.Locks {
			locks[l.Mode] = true
		}
	}
	meas.Locks = slices.Sorted(maps.Keys(locks))
	if eng.Name() == "postgres" && slices.ContainsFunc(meas.Locks, conflictsWithApp) {
		// A reader is enough to queue an ACCESS EXCLUSIVE lock; the other
		// strong locks queue behind a transaction that wrote.
		q := &holder{kind: "writer", hold: queueHold}
		if slices.Contains(meas.Locks, "AccessExclusiveLock") {
			q.kind = "reader"
		}
		if lt, ok := lockTimeout(string(m.Up.Data)); ok {
			// Hold longer than the migration waits, to show it give up.
			q.hold = min(lt+queueHold, 10*time.Second)
		}
		p, err := measureOnce(ctx, eng, head, m, prev, tables, sizes[0], q, map[string]bool{}, nil)
		if err != nil {
			return nil, fmt.Errorf("measuring %s behind a long reader: %w", m.Up.Name, err)
		}
		meas.Queue = p
	}
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

// conflictsWithApp reports whether a PostgreSQL table lock mode conflicts
// with the locks of plain reads (ACCESS SHARE) or writes (ROW EXCLUSIVE).
func conflictsWithApp(mode string) bool {
	switch mode {
	case "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock":
		return true
	}
	return false
}

var reLockTimeoutValue = regexp.MustCompile(`(?i)^SET\s+(?:LOCAL\s+)?lock_timeout\s*(?:=|\bTO\b)\s*'?\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*'?\s*$`)

// lockTimeout returns the lock_timeout a migration file sets before its
// first other statement, as PostgreSQL reads it (a bare number is ms).
func lockTimeout(sql string) (time.Duration, bool) {
	for _, st := range SplitStatements(sql) {
		m := reLockTimeoutValue.FindStringSubmatch(strings.TrimSpace(st.SQL))
		if m == nil {
			if reLockTimeout.MatchString(st.SQL) {
				return 0, false // DEFAULT, or a form not understood
			}
			continue
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil || v == 0 { // 0 turns the timeout off
			return 0, false
		}
		unit := map[string]time.Duration{"us": time.Microsecond, "": time.Millisecond, "ms": time.Millisecond, "s": time.Second, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[strings.ToLower(m[2])]
		return time.Duration(v * float64(unit)), true
	}
	return 0, false
}

// measureOnce applies migration m, on a database migrated to prev whose
// touched tables hold size rows, while a probe of one reader and one writer
// per table runs on its own connections. With q set, a long transaction
// holds the tables from before the migration starts until q.hold has passed. With trace set, the locks of each statement are traced first
// (where the database can).
func measureOnce(ctx context.Context, eng Engine, head *Set, m *Migration, prev uint, tables []string, size int64, q *holder, locks map[string]bool, trace *[]StatementLocks) (*Point, error) {
	dbi, err := eng.NewDB(ctx)
	if err != nil {
		return nil, err
	}
	defer dbi.Close()
	db, ok := dbi.(loadDB)
	if !ok {
		return nil, fmt.Errorf("%s databases cannot be measured", eng.Name())
	}
	mig, err := newMigrate(ctx, db, head, m.Version)
	if err != nil {
		return nil, err
	}
	defer mig.Close()
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
		if tb := schema.Tables[t]; tb != nil {
			if _, err := db.SQL().ExecContext(ctx, seedSQL(db.dialect(), tb, 1, size)); err != nil {
				return nil, fmt.Errorf("seeding %s: %w", t, err)
			}
		}
	}
	if _, err := db.SQL().ExecContext(ctx, "ANALYZE"); err != nil {
		return nil, err
	}
	storage := func() map[string]int64 {
		out := map[string]int64{}
		for _, t := range tables {
			out[t] = db.storage(ctx, t)
		}
		return out
	}
	before := storage()
	if tr, ok := db.(lockTracer); ok && trace != nil {
		if *trace, err = tr.traceLocks(ctx, string(m.Up.Data), tables); err != nil {
			return nil, err
		}
	}

	probeDB, err := db.probePool()
	if err != nil {
		return nil, err
	}
	defer probeDB.Close()
	probeDB.SetMaxOpenConns(2*len(tables) + 2)
	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
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
			func(n int64) string { return seedSQL(db.dialect(), tb, n, n) },
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

	var readerDone chan error
	if q != nil {
		conn, err := probeDB.Conn(ctx)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
			return nil, err
		}
		for _, t := range tables {
			stmt := fmt.Sprintf("SELECT 1 FROM %q LIMIT 1", t)
			if q.kind == "writer" {
				stmt = fmt.Sprintf("LOCK TABLE %q IN ROW EXCLUSIVE MODE", t) // what every write holds
			}
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return nil, err
			}
		}
		readerDone = make(chan error, 1)
		go func() {
			select {
			case <-time.After(q.hold):
			case <-ctx.Done():
			}
			_, err := conn.ExecContext(context.WithoutCancel(ctx), "COMMIT")
			readerDone <- err
		}()
	}
	monCtx, stopMon := context.WithCancel(ctx)
	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		db.watchLocks(monCtx, tables, func(mode string) {
			mu.Lock()
			locks[mode] = true
			mu.Unlock()
		})
	}()
	t0 := time.Now()
	upErr := mig.Steps(1)
	t1 := time.Now()
	time.Sleep(20 * time.Millisecond)
	stopMon()
	<-monDone
	stopProbe()
	wg.Wait()
	p := &Point{Rows: size, MigrationMs: ms(t1.Sub(t0))}
	if readerDone != nil {
		if err := <-readerDone; err != nil {
			return nil, err
		}
		p.HeldBy, p.HeldMs = q.kind, ms(q.hold)
	}
	if upErr != nil {
		if q == nil {
			return nil, upErr
		}
		// Behind the reader, a migration with a lock_timeout gives up:
		// that is what the timeout is for.
		p.GaveUp = upErr.Error()
		if i := strings.LastIndex(p.GaveUp, "(details: "); i >= 0 {
			p.GaveUp = strings.TrimSuffix(p.GaveUp[i+len("(details: "):], ")")
		}
	}
	after := storage()
	for _, t := range tables {
		if before[t] != 0 && after[t] != 0 && before[t] != after[t] {
			p.Rewrite = true
		}
	}
	var baseline, during []float64
	for _, op := range ops {
		end := op.start.Add(op.dur)
		p.ProbeOps++
		switch {
		case end.Before(t0):
			baseline = append(baseline, ms(op.dur))
		case op.start.Before(t1):
			during = append(during, ms(op.dur))
			if op.err != nil {
				p.ProbeFailed++
			}
		}
	}
	slices.Sort(during)
	if len(during) > 0 {
		p.ProbeP50Ms = round3(quantile(during, 0.5))
		p.ProbeP99Ms = round3(quantile(during, 0.99))
		p.BlockedMs = math.Max(0, during[len(during)-1]-median(baseline))
	}
	return p, nil
}

// quantile of sorted xs, by the nearest rank.
func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
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
