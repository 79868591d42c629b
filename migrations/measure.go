package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/jackc/pgx/v5/pgconn"
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
	// ChangedRows is how many rows the migration's data changes changed.
	ChangedRows int64 `json:"changedRows,omitempty"`
	ProbeOps    int   `json:"probeOps"`
	ProbeFailed int   `json:"probeFailed"`
	Rewrite     bool  `json:"rewrite"`
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
	// Deadlock is set when the migration deadlocked with the probe's
	// writes, and was applied again alone.
	Deadlock bool `json:"deadlock,omitempty"`
	// TimeoutMs is the migration's lock_timeout in the lock-queue case:
	// what caps the wait in production.
	TimeoutMs float64 `json:"lockTimeoutMs,omitempty"`
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
	// Check compares the extrapolation from the smaller sizes with the
	// largest size measured (when three or more were).
	Check *ExtrapolationCheck `json:"extrapolationCheck,omitempty"`
	// rowLocks: the migration changes rows, whose locks the
	// application's writes wait for.
	rowLocks bool
	// skipped says why a migration whose cost grows with its tables was
	// not measured.
	skipped string
	// onlyDML: all its work that grows with a table is data changes of
	// its own statements, whose changed rows the trace counts.
	onlyDML bool
	// Bounded is set when the migration's data changes changed no more
	// rows at the largest size than the smallest size holds (a batch:
	// WHERE id <= 10000): its cost does not grow with the table, and is
	// not extrapolated.
	Bounded bool `json:"bounded,omitempty"`
	// Scaled is set when the fit did not grow with the rows and the
	// largest measurement was scaled to the production size instead.
	Scaled bool `json:"scaled,omitempty"`
}

// measurePlan says which new migrations to measure, and how.
type measurePlan struct {
	// sized lists, per version, the populated tables whose size the
	// migration's cost depends on: it is measured at each probe size.
	sized map[uint][]string
	// queued lists, per version, the populated tables it takes a lock on
	// that blocks the application: it is also run behind a long
	// transaction (PostgreSQL), to measure the lock queue.
	queued map[uint][]string
	// stmts are the parsed statements of each new up file, and traces
	// the replay's traces of them, by version.
	stmts  map[uint][]Stmt
	traces map[uint]*quietRun
	// dataFailed are the versions that fail on generated rows: they are
	// not measured, and a walk stops at them.
	dataFailed map[uint]bool
	sizes      []int64
	// targets are the production sizes (migrations.sizes).
	targets map[string]int64
	// base and later are the schemas at the base and after all
	// migrations (for the seeder), hints the shapes of text that
	// migrations cast.
	base, later *Schema
	hints       map[string]string
	// decided reports whether a predicted total blocking time (seconds)
	// is so far from the allowed one that larger sizes cannot change the
	// verdict; nil measures every size.
	decided  func(predictedS float64) bool
	progress func(string, ...any)
	phases   *phases
}

// strongTables returns the populated tables a migration takes a lock on
// that blocks the application's reads or writes: as traced, and as its
// statements say.
func strongTables(stmts []Stmt, tr *quietRun, populated func(string) bool) []string {
	seen := map[string]bool{}
	for _, st := range stmts {
		for _, e := range allEffects(st) {
			if conflictsWithApp(e.mode) && populated(e.table) {
				seen[e.table] = true
			}
		}
		if sl := tr.statement(st.Line); sl != nil {
			for _, l := range sl.Locks {
				if conflictsWithApp(l.Mode) && populated(l.Table) {
					seen[l.Table] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// queueRows is the size the lock-queue case is measured at: what it shows
// (queries waiting behind a migration that waits for a lock) does not
// depend on the table's size.
const queueRows = 1000

// measureAll measures the new migrations the plan names. At each probe
// size one database is migrated to the version before the first new
// migration and walked through all of them in order; before a sized
// migration its tables are seeded up to the size, it is run quietly
// (statement by statement, rolled back) to time the locks it holds, and
// then applied under the probe. Sizes stop early once the extrapolation
// decides. The cost is fitted against the size and extrapolated to the
// targets. Then, on PostgreSQL, each queued migration is run on a fresh
// database behind a long transaction (the lock queue). It returns the
// measurements and notes on what could not be measured.
func measureAll(ctx context.Context, eng Engine, head *Set, news []*Migration, plan measurePlan) ([]*Measurement, []string, error) {
	var out []*Measurement
	var notes []string
	byVersion := map[uint]*Measurement{}
	locks := map[uint]map[string]bool{}
	for _, m := range news {
		tables := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(plan.sized[m.Version]), plan.queued[m.Version]...))))
		if len(tables) == 0 {
			continue
		}
		meas := &Measurement{File: head.Path(m.Up), Tables: tables}
		meas.onlyDML = true
		for _, st := range plan.stmts[m.Version] {
			meas.rowLocks = meas.rowLocks || slices.ContainsFunc(allEffects(st), func(e effect) bool { return e.dml })
			for i, e := range allEffects(st) {
				if e.sized && (!e.dml || i >= len(effects(st.Node))) {
					meas.onlyDML = false // a scan or rewrite, or a change inside a block
				}
			}
		}
		if tr := plan.traces[m.Version]; tr != nil {
			meas.Statements = tr.Statements
		}
		out = append(out, meas)
		byVersion[m.Version], locks[m.Version] = meas, map[string]bool{}
	}
	if len(out) == 0 {
		return nil, nil, nil
	}
	anySized := slices.ContainsFunc(news, func(m *Migration) bool { return len(plan.sized[m.Version]) > 0 })
	for i, size := range plan.sizes {
		if !anySized {
			break
		}
		problems, err := walk(ctx, eng, head, news, size, plan, func(w *walker, m *Migration) error {
			tables := plan.sized[m.Version]
			if len(tables) == 0 || plan.dataFailed[m.Version] {
				if meas := byVersion[m.Version]; meas != nil && plan.dataFailed[m.Version] {
					meas.skipped = "it fails on generated rows"
				}
				return w.apply()
			}
			meas := byVersion[m.Version]
			if plan.progress != nil {
				plan.progress("measuring %s on %s at %d rows", m.Up.Name, strings.Join(tables, ", "), size)
			}
			var quiet quietRun
			p, err := w.measure(ctx, m, tables, nil, locks[m.Version], &quiet)
			if err != nil {
				return fmt.Errorf("measuring %s at %d rows: %w", m.Up.Name, size, err)
			}
			if quiet.OK {
				p.quietMs = ms(quiet.Elapsed)
				p.ChangedRows = quiet.changedRows()
				if len(meas.Statements) == 0 {
					meas.Statements = quiet.Statements
				}
				for _, st := range quiet.Statements {
					if len(st.Rewrites) > 0 {
						p.Rewrite = true
					}
				}
			}
			meas.Points = append(meas.Points, *p)
			return nil
		})
		notes = append(notes, problems...)
		if err != nil {
			return nil, notes, err
		}
		if i >= 1 && i < len(plan.sizes)-1 && plan.decided != nil {
			total := 0.0
			for _, m := range news {
				if meas := byVersion[m.Version]; meas != nil && len(plan.sized[m.Version]) > 0 {
					finish(meas, eng, locks[m.Version], plan.targets)
					total += meas.PredictedS
				}
			}
			if plan.decided(total) {
				notes = append(notes, fmt.Sprintf("measured at %d of the %d probe sizes: the extrapolation (%s in all) is far enough from the budget that larger sizes cannot change the verdict", i+1, len(plan.sizes), seconds(total)))
				break
			}
		}
	}
	if eng.Name() == "postgres" {
		var queued []*Migration
		for _, m := range news {
			if len(plan.queued[m.Version]) > 0 {
				queued = append(queued, m)
			}
		}
		if len(queued) > 0 {
			problems, err := walk(ctx, eng, head, news, min(queueRows, plan.sizes[0]), plan, func(w *walker, m *Migration) error {
				tables := plan.queued[m.Version]
				if len(tables) == 0 || plan.dataFailed[m.Version] {
					return w.apply()
				}
				// A reader is enough to queue an ACCESS EXCLUSIVE lock; the
				// other strong locks queue behind a transaction that wrote.
				q := &holder{kind: "writer", hold: queueHold}
				if slices.ContainsFunc(byVersion[m.Version].Statements, func(st StatementLocks) bool {
					return slices.ContainsFunc(st.Locks, func(l TableLock) bool { return l.Mode == accessExclusive })
				}) || slices.ContainsFunc(plan.stmts[m.Version], func(st Stmt) bool {
					return slices.ContainsFunc(allEffects(st), func(e effect) bool { return e.mode == accessExclusive })
				}) {
					q.kind = "reader"
				}
				if lt, ok := fileLockTimeout(plan.stmts[m.Version]); ok {
					q.timeout = lt
					if lt < queueHold {
						// Hold longer than the migration waits, to show it
						// give up. (A longer timeout caps the wait at itself;
						// holding that long would only make the check slow.)
						q.hold = lt + queueHold
					}
				}
				if plan.progress != nil {
					plan.progress("measuring %s behind a long %s", m.Up.Name, q.kind)
				}
				p, err := w.measure(ctx, m, tables, q, locks[m.Version], nil)
				if err != nil {
					return fmt.Errorf("measuring %s behind a long %s: %w", m.Up.Name, q.kind, err)
				}
				p.BlockedMs = p.ProbeBlockedMs // the wait in the queue, as the probe saw it
				byVersion[m.Version].Queue = p
				if p.GaveUp != "" {
					// The migration gave up: put the database where
					// golang-migrate would be after a retry that worked.
					return w.retry()
				}
				return nil
			})
			notes = append(notes, problems...)
			if err != nil {
				return nil, notes, err
			}
		}
	}
	for _, m := range news {
		if meas := byVersion[m.Version]; meas != nil {
			finish(meas, eng, locks[m.Version], plan.targets)
		}
	}
	slices.Sort(notes)
	return out, slices.Compact(notes), nil
}

// finish derives a measurement's figures from its points: the locks seen,
// the blocking at each size, the fit and the extrapolation to the largest
// target size, and the check of the extrapolation against the largest
// size measured.
func finish(meas *Measurement, eng Engine, locks map[string]bool, targets map[string]int64) {
	for _, st := range meas.Statements {
		for _, l := range st.Locks {
			if slices.Contains(meas.Tables, l.Table) {
				locks[l.Mode] = true
			}
		}
	}
	meas.Locks = slices.Sorted(maps.Keys(locks))
	blocking := eng.Name() == "sqlite" || slices.ContainsFunc(meas.Locks, conflictsWithApp)
	for i := range meas.Points {
		p := &meas.Points[i]
		// Without a lock that blocks the application, queries wait only
		// for the rows the migration changes: a write to a row changed
		// early waits until the file commits, so the cost is the file's
		// run time (the probe's longest wait, which depends on when it
		// happened to touch a changed row, is reported beside it). A
		// migration that changes no rows (CREATE INDEX CONCURRENTLY,
		// VALIDATE CONSTRAINT) blocks nothing, whatever noise the probe
		// saw.
		p.BlockedMs = 0
		if meas.rowLocks {
			p.BlockedMs = p.MigrationMs
			if p.quietMs > 0 {
				p.BlockedMs = p.quietMs
			}
		}
		p.LockHeldMs = 0
		if blocking {
			p.LockHeldMs = p.MigrationMs // includes waiting for the lock
			if p.quietMs > 0 {
				p.LockHeldMs = p.quietMs
			}
			p.BlockedMs = p.LockHeldMs
		}
	}
	meas.Intercept, meas.Slope = fitLine(meas.Points)
	meas.TargetRows = 0
	for _, t := range meas.Tables {
		if n := targets[t]; n > meas.TargetRows {
			meas.TargetRows = n
		}
	}
	worst := 0.0
	for _, p := range meas.Points {
		worst = math.Max(worst, p.BlockedMs)
	}
	first, last := Point{}, Point{}
	if n := len(meas.Points); n > 0 {
		first, last = meas.Points[0], meas.Points[n-1]
	}
	// A batch changes no more rows in the largest table than the smallest
	// one holds: its cost stays what was measured.
	meas.Bounded = meas.onlyDML && len(meas.Points) >= 2 && last.Rows > first.Rows && last.ChangedRows <= first.Rows && last.ChangedRows < last.Rows
	if meas.TargetRows > 0 && len(meas.Points) > 0 && !meas.Bounded {
		pred := meas.Intercept + meas.Slope*float64(meas.TargetRows)
		if meas.Slope <= 0 && last.Rows > 0 && meas.TargetRows > last.Rows {
			// The sizes measured did not grow with the rows: noise at
			// small sizes (a busy machine) hid the growth of a cost that
			// depends on them. Scale the largest measurement instead of
			// extrapolating a flat or falling line to nothing.
			pred = last.BlockedMs * float64(meas.TargetRows) / float64(last.Rows)
			meas.Scaled = true
		}
		// Never below what was measured.
		worst = math.Max(worst, pred)
	}
	meas.PredictedS = worst / 1000
	meas.Check = nil
	if n := len(meas.Points); n >= 3 {
		a, b := fitLine(meas.Points[:n-1])
		last := meas.Points[n-1]
		pred := math.Max(0, a+b*float64(last.Rows))
		c := &ExtrapolationCheck{Rows: last.Rows, PredictedMs: round3(pred), MeasuredMs: round3(last.BlockedMs)}
		if last.BlockedMs > 0 {
			c.ErrorPct = round3(100 * (pred - last.BlockedMs) / last.BlockedMs)
		}
		meas.Check = c
	}
}

// ExtrapolationCheck compares what the smaller probe sizes predict for the
// largest one with what was measured there.
type ExtrapolationCheck struct {
	Rows        int64   `json:"rows"`
	PredictedMs float64 `json:"predictedMs"`
	MeasuredMs  float64 `json:"measuredMs"`
	ErrorPct    float64 `json:"errorPct"`
}

// walker is a throwaway database being walked through new migrations, with
// touched tables seeded up to size rows.
type walker struct {
	db     loadDB
	mig    *migrate.Migrate
	seed   *seeder
	size   int64
	plan   measurePlan
	head   *Set
	notes  []string
	failed map[string]bool // tables that could not be seeded
}

// walk creates a database, migrates it to the version before news[0], and
// calls step for each of news in order; step must apply the migration
// (w.apply or w.measure). It returns notes on tables that could not be
// seeded.
func walk(ctx context.Context, eng Engine, head *Set, news []*Migration, size int64, plan measurePlan, step func(*walker, *Migration) error) ([]string, error) {
	prev := uint(0)
	for _, v := range head.Versions() {
		if v < news[0].Version {
			prev = v
		}
	}
	w := &walker{size: size, plan: plan, head: head}
	defer w.close()
	if err := w.open(ctx, eng, news, prev); err != nil {
		return nil, err
	}
	for _, m := range news {
		err := step(w, m)
		if err == nil {
			continue
		}
		if !errors.Is(err, errFailsOnRows) && !dependsOnData(err) {
			return w.notes, err
		}
		// It fails on the generated rows: go on from a database where it
		// was applied without them, so the migrations after it are still
		// measured.
		w.notes = append(w.notes, fmt.Sprintf("%s fails on generated rows, so it was not measured; the measurement went on from a database where it was applied without them", m.Up.Name))
		w.close()
		if err := w.open(ctx, eng, news, m.Version); err != nil {
			return w.notes, err
		}
	}
	return w.notes, nil
}

// open starts the walker on a new database migrated to version to (0:
// none), without generated rows.
func (w *walker) open(ctx context.Context, eng Engine, news []*Migration, to uint) error {
	dbi, err := eng.NewDB(ctx)
	if err != nil {
		return err
	}
	db, ok := dbi.(loadDB)
	if !ok {
		dbi.Close()
		return fmt.Errorf("%s databases cannot be measured", eng.Name())
	}
	w.db = db
	if w.mig, err = newMigrate(ctx, db, w.head, news[len(news)-1].Version); err != nil {
		return err
	}
	stop := w.plan.phases.start("replay")
	defer stop()
	if to > 0 {
		if err := w.mig.Migrate(to); err != nil && !errors.Is(err, migrate.ErrNoChange) {
			return unwrapDBError(err)
		}
	}
	w.seed = newSeeder(db.dialect(), nil)
	w.seed.base, w.seed.later, w.seed.hints = w.plan.base, w.plan.later, w.plan.hints
	w.failed = map[string]bool{}
	return nil
}

// close drops the walker's database.
func (w *walker) close() {
	if w.mig != nil {
		w.mig.Close()
		w.mig = nil
	}
	if w.db != nil {
		w.db.Close()
		w.db = nil
	}
}

// errFailsOnRows stops a walk at a migration that fails on the generated
// rows (a data failure the replay reported).
var errFailsOnRows = errors.New("fails on generated rows")

// apply applies the next migration, unmeasured.
func (w *walker) apply() error {
	defer w.plan.phases.start("replay")()
	if err := w.mig.Steps(1); err != nil {
		if v, _, verr := w.mig.Version(); verr == nil && w.plan.dataFailed[v] {
			return errFailsOnRows
		}
		return unwrapDBError(err)
	}
	return nil
}

// retry applies again a migration that gave up (its lock_timeout): golang-
// migrate left the database dirty at its version, unchanged.
func (w *walker) retry() error {
	v, dirty, err := w.mig.Version()
	if err != nil || !dirty {
		return err
	}
	prev := -1 // golang-migrate's "no version"
	for _, x := range w.head.Versions() {
		if x < v {
			prev = int(x)
		}
	}
	if err := w.mig.Force(prev); err != nil {
		return err
	}
	return w.apply()
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
	seed.schema, seed.plans = schema, map[string]*tablePlan{}
	stop := w.plan.phases.start("seeding")
	var probed []string
	for _, t := range tables {
		if w.failed[t] {
			continue
		}
		if err := seed.seed(ctx, db.SQL(), t, size); err != nil {
			if ctx.Err() != nil {
				stop()
				return nil, ctx.Err()
			}
			// Measured all the same, without this table's probe (said
			// once, not at every size).
			w.failed[t] = true
			w.notes = append(w.notes, fmt.Sprintf("%s: %s was not measured with rows (%v): the migration runs on what it has, without a probe on it", m.Up.Name, t, err))
			continue
		}
		probed = append(probed, t)
	}
	if _, err := db.SQL().ExecContext(ctx, "ANALYZE"); err != nil {
		stop()
		return nil, err
	}
	stop()
	phase := "probes"
	if q != nil {
		phase = "lock queue"
	}
	defer w.plan.phases.start(phase)()
	if quiet != nil {
		// One run is noisy on a busy machine: when runs are cheap, the
		// median of three (also at the largest size when every size is
		// measured, to check the extrapolation against).
		var runs []quietRun
		for len(runs) < 3 {
			q, err := db.quietRun(ctx, w.plan.stmts[m.Version])
			if err != nil {
				return nil, err
			}
			runs = append(runs, q)
			largest := w.size == slices.Max(w.plan.sizes)
			if !q.OK || q.Elapsed > quietRepeatBelow && !(largest && w.plan.decided == nil) {
				break
			}
		}
		slices.SortFunc(runs, func(a, b quietRun) int { return int(a.Elapsed - b.Elapsed) })
		*quiet = runs[len(runs)/2]
	}
	tables = probed

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
			func(k int64) string { q, _ := seed.insertSQL(ctx, db.SQL(), t, ins+k, ins+k); return q },
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
	migDone := make(chan struct{})
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
			// The hold counts from when the migration waits behind this
			// transaction, so a migration that starts late on a busy
			// machine meets the same queue; one that never waits ends it.
			qctx, cancel := context.WithTimeout(ctx, queueWaitLimit)
			queued := make(chan struct{})
			go func() {
				if db.waitQueued(qctx) == nil {
					close(queued)
				}
			}()
			select {
			case <-queued:
				select {
				case <-time.After(q.hold):
				case <-ctx.Done():
				}
			case <-migDone:
			case <-qctx.Done():
			}
			cancel()
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
	close(migDone)
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
		p.HeldBy, p.HeldMs, p.TimeoutMs = q.kind, ms(q.hold), ms(q.timeout)
	}
	if upErr != nil && q == nil {
		var pe *pgconn.PgError
		if !errors.As(unwrapDBError(upErr), &pe) || pe.Code != "40P01" {
			return nil, unwrapDBError(upErr)
		}
		// It deadlocked with the probe's writes (it changed rows, then
		// asked for a stronger lock): what the application's writes would
		// do to it. Its cost is the quiet run's; apply it again, alone.
		p.Deadlock = true
		w.notes = append(w.notes, fmt.Sprintf("%s deadlocked with the probe's writes at %d rows (PostgreSQL aborted it): it changes rows and then takes a stronger lock in the same transaction", m.Up.Name, size))
		if err := w.retry(); err != nil {
			return nil, err
		}
	} else if upErr != nil {
		// Behind the reader, a migration with a lock_timeout gives up:
		// that is what the timeout is for. Anything else is a failure.
		var pe *pgconn.PgError
		if !errors.As(unwrapDBError(upErr), &pe) || pe.Code != "55P03" {
			return nil, unwrapDBError(upErr)
		}
		p.GaveUp = pe.Error()
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

// loadDB is a database that migrations can be traced and measured on: it
// gives the probe its own connections, watches the locks of other
// sessions, and runs a migration quietly to trace what each statement
// does.
type loadDB interface {
	DB
	dialect() string
	// probePool opens connections for the probe, told apart from the
	// migration's by the database (application_name), and waiting for
	// locks rather than failing at once.
	probePool() (*sql.DB, error)
	// waitQueued returns once a session other than the probe's waits
	// for a lock (the migration, queued behind the long transaction).
	waitQueued(ctx context.Context) error
	// watchLocks reports the lock modes the migrating session holds on
	// tables until ctx ends.
	watchLocks(ctx context.Context, tables []string, found func(mode string))
	// quietRun runs a migration's statements one by one in a transaction
	// that is rolled back, tracing what each does.
	quietRun(ctx context.Context, stmts []Stmt) (quietRun, error)
}

// queueWaitLimit bounds how long the long transaction waits for the
// migration to queue behind it.
const queueWaitLimit = time.Minute

// holder is the long transaction of the lock-queue case.
type holder struct {
	kind string // "reader" or "writer"
	hold time.Duration
	// timeout is the migration's lock_timeout, 0 without one.
	timeout time.Duration
}

type probeOp struct {
	start time.Time
	dur   time.Duration
	err   error
}

// quietRepeatBelow: a quiet run faster than this is repeated, and the
// median taken.
const quietRepeatBelow = 500 * time.Millisecond

// queueHold is how long the long transaction of the lock-queue case holds
// the touched tables after the migration starts.
const queueHold = 500 * time.Millisecond
