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
	// BlockedMs is what the migration costs the application at this size:
	// LockHeldMs when it takes a lock that blocks the application (its
	// waiters wait that long), otherwise what the probe saw (row locks).
	BlockedMs float64 `json:"blockedMs"`
	// LockHeldMs is how long the migration held a lock that blocks the
	// application's reads or writes (PostgreSQL: a table lock conflicting
	// with theirs; SQLite: the write lock): the whole migration, since
	// such a lock lasts to the end of the file's transaction.
	LockHeldMs float64 `json:"lockHeldMs"`
	// ProbeBlockedMs is how long a probe query had to wait behind the
	// migration: the slowest probe operation during the migration, less the
	// probe's normal latency. It also sees waits no table lock explains,
	// such as row locks of a backfill.
	ProbeBlockedMs float64 `json:"probeBlockedMs"`
	quietMs        float64
	ProbeOps       int  `json:"probeOps"`
	ProbeFailed    int  `json:"probeFailed"`
	Rewrite        bool `json:"rewrite"`
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
	// quietRun runs a migration's statements in a transaction that is
	// rolled back.
	quietRun(ctx context.Context, sql string, tables []string) (quietRun, error)
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

// quietRun is a migration's statements run one by one in a transaction
// that is rolled back, with nothing else running: how long they take (the
// time the file's transaction holds its locks, without waiting for any)
// and, where the database tells, the table locks each statement holds.
type quietRun struct {
	Statements []StatementLocks
	Elapsed    time.Duration
	// OK is false when the file could not run this way (a statement that
	// cannot run in a transaction block, or that failed).
	OK bool
}

// runQuietly runs a migration's statements one by one in a transaction,
// as golang-migrate's single transaction would, timing them and listing
// after each the new locks that locks reports (nil: none), then rolls back.
// A file that cannot run in a transaction block (CREATE INDEX
// CONCURRENTLY) is not run: the lock watcher sees its locks as it runs.
func runQuietly(ctx context.Context, db *sql.DB, text string, locks func(context.Context, *sql.Conn) ([]TableLock, error)) (quietRun, error) {
	var r quietRun
	stmts := SplitStatements(text)
	if slices.ContainsFunc(stmts, func(st Statement) bool { return reConcurrently.MatchString(st.SQL) }) {
		return r, nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return r, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return r, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	seen := map[TableLock]bool{}
	for _, st := range stmts {
		start := time.Now()
		if _, err := conn.ExecContext(ctx, st.SQL); err != nil {
			return quietRun{Statements: r.Statements}, nil // the replay reports failures
		}
		r.Elapsed += time.Since(start)
		if locks == nil {
			continue
		}
		held, err := locks(ctx, conn)
		if err != nil {
			return r, err
		}
		sl := StatementLocks{Line: st.Line, SQL: abbreviate(st.SQL, 80), Locks: []TableLock{}}
		for _, tl := range held {
			if !seen[tl] {
				seen[tl] = true
				sl.Locks = append(sl.Locks, tl)
			}
		}
		r.Statements = append(r.Statements, sl)
	}
	r.OK = true
	return r, nil
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

// measureMigration measures one new migration (the last of head's that it
// needs applied first): measureAll for one.
func measureMigration(ctx context.Context, eng Engine, head *Set, m *Migration, tables []string, sizes []int64, targets map[string]int64) (*Measurement, error) {
	all, err := measureAll(ctx, eng, head, []*Migration{m}, map[uint][]string{m.Version: tables}, sizes, targets, nil, nil)
	if err != nil {
		return nil, err
	}
	return all[0], nil
}

// measureAll measures the new migrations that touch populated tables
// (touched, by version) at each size: one database per size is migrated to
// the version before the first new migration and then walked through all
// of them in order, each touched table seeded up to the size before the
// migration that touches it, which runs under the probe. The cost is fitted
// against the size and extrapolated to targets. On PostgreSQL, a migration
// that takes a lock conflicting with the application's is also run, on a
// fresh database, behind a long transaction (the lock queue).
// later is the schema after all migrations (for the seeder), if known.
func measureAll(ctx context.Context, eng Engine, head *Set, news []*Migration, touched map[uint][]string, sizes []int64, targets map[string]int64, later *Schema, progress func(string, ...any)) ([]*Measurement, error) {
	var out []*Measurement
	byVersion := map[uint]*Measurement{}
	locks := map[uint]map[string]bool{}
	for _, m := range news {
		if tables := touched[m.Version]; len(tables) > 0 {
			meas := &Measurement{File: head.Path(m.Up), Tables: tables}
			out = append(out, meas)
			byVersion[m.Version], locks[m.Version] = meas, map[string]bool{}
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	for i, size := range sizes {
		if err := walk(ctx, eng, head, news, size, later, func(w *walker, m *Migration) error {
			meas := byVersion[m.Version]
			if meas == nil {
				return w.apply()
			}
			if progress != nil {
				progress("measuring %s on %s at %d rows", m.Up.Name, strings.Join(meas.Tables, ", "), size)
			}
			var quiet quietRun
			p, err := w.measure(ctx, m, meas.Tables, nil, locks[m.Version], &quiet)
			if err != nil {
				return fmt.Errorf("measuring %s at %d rows: %w", m.Up.Name, size, err)
			}
			if i == 0 {
				meas.Statements = quiet.Statements
			}
			if quiet.OK {
				p.quietMs = ms(quiet.Elapsed)
			}
			meas.Points = append(meas.Points, *p)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	for _, m := range news {
		meas := byVersion[m.Version]
		if meas == nil {
			continue
		}
		for _, st := range meas.Statements {
			for _, l := range st.Locks {
				locks[m.Version][l.Mode] = true
			}
		}
		meas.Locks = slices.Sorted(maps.Keys(locks[m.Version]))
		blocking := eng.Name() == "sqlite" || slices.ContainsFunc(meas.Locks, conflictsWithApp)
		for i := range meas.Points {
			p := &meas.Points[i]
			p.BlockedMs = p.ProbeBlockedMs
			if blocking {
				p.LockHeldMs = p.MigrationMs // includes waiting for the lock
				if p.quietMs > 0 {
					p.LockHeldMs = p.quietMs
				}
				p.BlockedMs = p.LockHeldMs
			}
		}
		if eng.Name() == "postgres" && blocking {
			// A reader is enough to queue an ACCESS EXCLUSIVE lock; the
			// other strong locks queue behind a transaction that wrote.
			q := &holder{kind: "writer", hold: queueHold}
			if slices.Contains(meas.Locks, "AccessExclusiveLock") {
				q.kind = "reader"
			}
			if lt, ok := lockTimeout(string(m.Up.Data)); ok {
				// Hold longer than the migration waits, to show it give up.
				q.hold = min(lt+queueHold, 10*time.Second)
			}
			if progress != nil {
				progress("measuring %s behind a long %s", m.Up.Name, q.kind)
			}
			var p *Point
			err := walk(ctx, eng, head, []*Migration{m}, sizes[0], later, func(w *walker, _ *Migration) error {
				var err error
				p, err = w.measure(ctx, m, meas.Tables, q, map[string]bool{}, nil)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("measuring %s behind a long %s: %w", m.Up.Name, q.kind, err)
			}
			p.BlockedMs = p.ProbeBlockedMs // the wait in the queue, as the probe saw it
			meas.Queue = p
		}
		meas.Intercept, meas.Slope = fitLine(meas.Points)
		for _, t := range meas.Tables {
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
	}
	return out, nil
}

// walker is a throwaway database being walked through new migrations, with
// touched tables seeded up to size rows.
type walker struct {
	db   loadDB
	mig  *migrate.Migrate
	seed *seeder
	size int64
}

// walk creates a database, migrates it to the version before news[0], and
// calls step for each of news in order; step must apply the migration
// (w.apply or w.measure).
func walk(ctx context.Context, eng Engine, head *Set, news []*Migration, size int64, later *Schema, step func(*walker, *Migration) error) error {
	dbi, err := eng.NewDB(ctx)
	if err != nil {
		return err
	}
	defer dbi.Close()
	db, ok := dbi.(loadDB)
	if !ok {
		return fmt.Errorf("%s databases cannot be measured", eng.Name())
	}
	mig, err := newMigrate(ctx, db, head, news[len(news)-1].Version)
	if err != nil {
		return err
	}
	defer mig.Close()
	prev := uint(0)
	for _, v := range head.Versions() {
		if v < news[0].Version {
			prev = v
		}
	}
	if prev > 0 {
		if err := mig.Migrate(prev); err != nil && !errors.Is(err, migrate.ErrNoChange) {
			return err
		}
	}
	w := &walker{db: db, mig: mig, seed: newSeeder(db.dialect(), nil), size: size}
	w.seed.later = later
	for _, m := range news {
		if err := step(w, m); err != nil {
			return err
		}
	}
	return nil
}

// apply applies the next migration, unmeasured.
func (w *walker) apply() error { return w.mig.Steps(1) }

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

// measure applies the next migration, m, after seeding its tables up to
// w.size rows, while a probe of a reader, an inserter and an updater per
// table runs on its own connections. With q set, a long transaction holds
// the tables from before the migration starts until q.hold has passed.
// With quiet set, the migration is first run quietly (and rolled back) to
// time it without the probe.
func (w *walker) measure(ctx context.Context, m *Migration, tables []string, q *holder, locks map[string]bool, quiet *quietRun) (*Point, error) {
	db, mig, size := w.db, w.mig, w.size
	schema, err := db.Schema(ctx)
	if err != nil {
		return nil, err
	}
	seed := w.seed
	seed.schema = schema
	for _, t := range tables {
		if err := seed.seed(ctx, db.SQL(), t, size); err != nil {
			return nil, err
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
	if quiet != nil {
		if *quiet, err = db.quietRun(ctx, string(m.Up.Data), tables); err != nil {
			return nil, err
		}
	}

	probeDB, err := db.probePool()
	if err != nil {
		return nil, err
	}
	defer probeDB.Close()
	probeDB.SetMaxOpenConns(3*len(tables) + 2)
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
		// A reader, a writer of new rows and a writer of existing rows,
		// each operation k on its own connection.
		ins := size * int64(10+i)
		queries := []func(k int64) string{
			func(int64) string { return fmt.Sprintf("SELECT * FROM %q LIMIT 1", t) },
			func(k int64) string { return seed.insertSQL(tb, ins+k, ins+k) },
		}
		if seed.updateSQL(tb, 1) != "" {
			queries = append(queries, func(k int64) string { return seed.updateSQL(tb, k%size+1) })
		}
		for _, qf := range queries {
			wg.Add(1)
			go func(qf func(int64) string) {
				defer wg.Done()
				// Bounded in count and time: at most 100000 operations, and
				// each one at most a minute.
				for k := int64(0); k < 100000 && probeCtx.Err() == nil; k++ {
					opCtx, cancel := context.WithTimeout(probeCtx, time.Minute)
					start := time.Now()
					_, err := probeDB.ExecContext(opCtx, qf(k))
					cancel()
					if probeCtx.Err() != nil {
						return
					}
					if k == 0 && err != nil {
						return // this table's constraints refuse it: not a probe
					}
					mu.Lock()
					ops = append(ops, probeOp{start: start, dur: time.Since(start), err: err})
					mu.Unlock()
					time.Sleep(2 * time.Millisecond)
				}
			}(qf)
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
		p.ProbeBlockedMs = math.Max(0, during[len(during)-1]-median(baseline))
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
