package migrations

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5/pgconn"
)

// replayResult is what a replay of base then head showed.
type replayResult struct {
	base, head *Schema
	// failed is the version whose up file did not apply on a database
	// without generated rows (after the base migrations, with only what
	// the migrations themselves insert), with the error and the line of
	// the statement that failed (0: unknown).
	failed     uint
	failedErr  error
	failedLine int
	// dataFailures are new migrations that applied without generated rows
	// but failed on them: their success depends on the data.
	dataFailures []dataFailure
	// traces are the new migrations run statement by statement before
	// each was applied, by version.
	traces map[uint]*quietRun
	// seedProblems are tables the replay could not fill with rows.
	seedProblems []string
	// reverseErr is set when down then up did not work or did not give
	// back the same schema.
	reverseErr error
	// seeded is false when the replay went on without generated rows
	// (after a data failure).
	seeded bool
}

// dataFailure is a migration that fails only because of the rows in the
// tables it touches.
type dataFailure struct {
	version uint
	line    int // the failing statement, 0 when unknown
	sql     string
	err     error
}

// replayOptions are the inputs of replay besides the sets.
type replayOptions struct {
	seedRows int64
	// hints are the shapes text columns must have, for casts in the new
	// migrations ("users.settings" → "jsonb").
	hints map[string]string
	// stmts are the parsed statements of each new up file, by version.
	stmts map[uint][]Stmt
	// reverse runs the down-then-up check.
	reverse bool
	phases  *phases
}

// newMigrate opens golang-migrate on db with the files of set up to max.
func newMigrate(ctx context.Context, db DB, set *Set, max uint) (*migrate.Migrate, error) {
	src, err := iofs.New(set.FS(max), ".")
	if err != nil {
		return nil, err
	}
	drv, err := db.Driver(ctx)
	if err != nil {
		return nil, err
	}
	return migrate.NewWithInstance("iofs", src, "relcheck", drv)
}

// replay applies the base set, seeds the tables, and applies the head
// set's new migrations one by one exactly as golang-migrate does (a file is
// one transaction), each first run statement by statement in a transaction
// that is rolled back, to trace the locks it takes and the tables it
// rewrites. A migration that fails on the generated rows is tried again on
// a database without them: if it applies there, its failure depends on the
// data, and the replay goes on without generated rows so that every later
// migration is still checked. At the end the new migrations go down and up
// again, which must give the same schema.
func replay(ctx context.Context, eng Engine, base, head *Set, opts replayOptions) (*replayResult, error) {
	r := &replayResult{traces: map[uint]*quietRun{}, seeded: true}
	baseMax := uint(0)
	if vs := base.Versions(); len(vs) > 0 {
		baseMax = vs[len(vs)-1]
	}
	db, err := eng.NewDB(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { db.Close() }()
	stop := opts.phases.start("replay")
	if baseMax > 0 {
		m, err := newMigrate(ctx, db, base, 0)
		if err != nil {
			stop()
			return nil, err
		}
		if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
			stop()
			return nil, fmt.Errorf("the base release's migrations do not apply on %s: %w", eng.Name(), unwrapDBError(err))
		}
	}
	stop()
	if r.base, err = db.Schema(ctx); err != nil {
		return nil, err
	}
	stop = opts.phases.start("seeding")
	r.seedProblems, err = seedAll(ctx, db, r.base, opts.seedRows, opts.hints)
	stop()
	if err != nil {
		return nil, fmt.Errorf("seeding: %w", err)
	}
	defer opts.phases.start("replay")()
	m, err := newMigrate(ctx, db, head, 0)
	if err != nil {
		return nil, err
	}
	defer func() { m.Close() }()
	prev := baseMax
	for _, v := range head.Versions() {
		if v <= baseMax {
			continue // a new migration below the base's last: golang-migrate never applies it
		}
		tr := trace(ctx, db, opts.stmts[v])
		r.traces[v] = tr
		err := m.Steps(1)
		if err == nil {
			prev = v
			continue
		}
		applyErr := unwrapDBError(err)
		if !r.seeded || !dependsOnData(applyErr) {
			r.failed, r.failedErr, r.failedLine = v, applyErr, tr.FailedLine
			return r, nil
		}
		// Again without generated rows.
		db2, m2, err := unseeded(ctx, eng, head, prev)
		if err != nil {
			return nil, err
		}
		tr2 := trace(ctx, db2, opts.stmts[v])
		if err := m2.Steps(1); err != nil {
			m2.Close()
			db2.Close()
			r.failed, r.failedErr, r.failedLine = v, unwrapDBError(err), tr2.FailedLine
			return r, nil
		}
		r.dataFailures = append(r.dataFailures, dataFailure{version: v, line: tr.FailedLine, sql: failedSQL(opts.stmts[v], tr.FailedLine), err: applyErr})
		r.traces[v] = tr2
		m.Close()
		db.Close()
		db, m, r.seeded = db2, m2, false
		prev = v
	}
	if r.head, err = db.Schema(ctx); err != nil {
		return nil, err
	}
	if !opts.reverse {
		return r, nil
	}
	// Down to the base, then up again: the schema must be the same.
	var downErr error
	if baseMax > 0 {
		downErr = m.Migrate(baseMax)
	} else {
		downErr = m.Down()
	}
	if downErr != nil && !errors.Is(downErr, migrate.ErrNoChange) {
		r.reverseErr = fmt.Errorf("down to %s failed: %w", versionName(baseMax), unwrapDBError(downErr))
		return r, nil
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		r.reverseErr = fmt.Errorf("up again after down failed: %w", unwrapDBError(err))
		return r, nil
	}
	again, err := db.Schema(ctx)
	if err != nil {
		return nil, err
	}
	if same, diff := r.head.Equal(again); !same {
		r.reverseErr = fmt.Errorf("up → down → up does not give back the schema of up alone (%s)", diff)
	}
	return r, nil
}

// unseeded is a new database migrated to version prev of head, without
// generated rows.
func unseeded(ctx context.Context, eng Engine, head *Set, prev uint) (DB, *migrate.Migrate, error) {
	db, err := eng.NewDB(ctx)
	if err != nil {
		return nil, nil, err
	}
	m, err := newMigrate(ctx, db, head, 0)
	if err == nil && prev > 0 {
		if err = m.Migrate(prev); errors.Is(err, migrate.ErrNoChange) {
			err = nil
		}
	}
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("replaying up to version %d without generated rows: %w", prev, unwrapDBError(err))
	}
	return db, m, nil
}

// trace runs a migration's statements quietly on db, when db can.
func trace(ctx context.Context, db DB, stmts []Stmt) *quietRun {
	l, ok := db.(loadDB)
	if !ok || len(stmts) == 0 {
		return &quietRun{}
	}
	q, err := l.quietRun(ctx, stmts)
	if err != nil {
		return &quietRun{}
	}
	return &q
}

func failedSQL(stmts []Stmt, line int) string {
	for _, st := range stmts {
		if st.Line == line {
			return st.SQL
		}
	}
	return ""
}

// dependsOnData reports whether a migration's error comes from the values
// in the rows it met (a cast, a check, a unique or foreign key), rather
// than from the statement itself or from any row at all (NOT NULL on a
// table that holds rows fails whatever the rows say).
func dependsOnData(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23502": // not_null_violation: any row
			return false
		case len(pe.Code) == 5 && (pe.Code[:2] == "22" || pe.Code[:2] == "23"):
			return true
		}
		return false
	}
	// SQLite: constraint failures other than NOT NULL.
	msg := err.Error()
	for _, s := range []string{"UNIQUE constraint failed", "CHECK constraint failed", "FOREIGN KEY constraint failed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func versionName(v uint) string {
	if v == 0 {
		return "an empty database"
	}
	return fmt.Sprintf("version %d", v)
}

// unwrapDBError keeps the database's own message from a golang-migrate error.
func unwrapDBError(err error) error {
	var de database.Error
	if errors.As(err, &de) && de.OrigErr != nil {
		return de.OrigErr
	}
	var dp *database.Error
	if errors.As(err, &dp) && dp.OrigErr != nil {
		return dp.OrigErr
	}
	return err
}

// phases adds up the wall time of a gate's phases, for the report.
type phases struct {
	order []string
	ms    map[string]time.Duration
}

func newPhases() *phases { return &phases{ms: map[string]time.Duration{}} }

// start starts timing a phase; the returned function stops it. A nil
// *phases times nothing.
func (p *phases) start(name string) func() {
	if p == nil {
		return func() {}
	}
	t := time.Now()
	return func() { p.add(name, time.Since(t)) }
}

func (p *phases) add(name string, d time.Duration) {
	if p == nil {
		return
	}
	if _, ok := p.ms[name]; !ok {
		p.order = append(p.order, name)
	}
	p.ms[name] += d
}
