package migrations

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// StatementLocks is what one statement of a migration did, traced in the
// file's transaction: the table locks it holds once it has run, the tables
// it rewrote and the indexes it rebuilt (their storage changed:
// PostgreSQL's relfilenode, SQLite's root page), and how long it took.
type StatementLocks struct {
	Line     int         `json:"line"`
	SQL      string      `json:"sql"`
	Locks    []TableLock `json:"locks"`
	Rewrites []string    `json:"rewrites,omitempty"`
	Rebuilt  []string    `json:"rebuiltIndexes,omitempty"`
	Ms       float64     `json:"ms"`
	// Rows is how many rows a data change changed.
	Rows int64 `json:"rows,omitempty"`
}

// TableLock is a lock mode held on a table.
type TableLock struct {
	Table string `json:"table"`
	Mode  string `json:"mode"`
}

// quietRun is a migration's statements run one by one in a transaction
// that is rolled back, with nothing else running: what each did, and how
// long they took together (the time the file's transaction holds its
// locks, without waiting for any).
type quietRun struct {
	Statements []StatementLocks
	Elapsed    time.Duration
	// OK is false when the file could not run this way: a statement that
	// cannot run in a transaction block (it is then not run at all), or
	// one that failed (FailedLine, FailedErr).
	OK         bool
	FailedLine int
	FailedErr  error
}

// statement returns the trace of the statement at line, or nil.
func (q *quietRun) statement(line int) *StatementLocks {
	if q == nil {
		return nil
	}
	for i := range q.Statements {
		if q.Statements[i].Line == line {
			return &q.Statements[i]
		}
	}
	return nil
}

// relation is a table or index and where its data lives.
type relation struct {
	table string // the table, or for an index the table it indexes
	index bool
	node  int64
}

// catalogProbe reads, on the transaction's own connection, the table locks
// it holds and where each relation's data lives.
type catalogProbe struct {
	locks     func(ctx context.Context, conn *sql.Conn) ([]TableLock, error)
	relations func(ctx context.Context, conn *sql.Conn) (map[string]relation, error)
}

// relationsQuery reads relations with a query that returns, per table or
// index, its name, whether it is an index, where its data lives, and its
// table.
func relationsQuery(q string) func(ctx context.Context, conn *sql.Conn) (map[string]relation, error) {
	return func(ctx context.Context, conn *sql.Conn) (map[string]relation, error) {
		rows, err := conn.QueryContext(ctx, q)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := map[string]relation{}
		for rows.Next() {
			var name string
			var r relation
			if err := rows.Scan(&name, &r.index, &r.node, &r.table); err != nil {
				return nil, err
			}
			out[name] = r
		}
		return out, rows.Err()
	}
}

var (
	reConcurrently = regexp.MustCompile(`(?i)\bCONCURRENTLY\b`)
	reNoTxn        = regexp.MustCompile(`(?i)^\s*(VACUUM|CREATE\s+DATABASE|DROP\s+DATABASE|ALTER\s+SYSTEM)\b`)
	reTxnStmt      = regexp.MustCompile(`(?i)^\s*(BEGIN|COMMIT|END|ROLLBACK|START\s+TRANSACTION|ABORT)\b`)
)

// runQuietly runs a migration's statements one by one in a transaction,
// as golang-migrate's single transaction would, timing them and noting
// after each what probe reports, then rolls back. The file's own
// transaction statements are left out. A file that cannot run in a
// transaction block (CREATE INDEX CONCURRENTLY) is not run: the lock
// watcher sees its locks as it runs.
func runQuietly(ctx context.Context, db *sql.DB, stmts []Stmt, probe catalogProbe) (quietRun, error) {
	var r quietRun
	if slices.ContainsFunc(stmts, func(st Stmt) bool { return reConcurrently.MatchString(st.SQL) || reNoTxn.MatchString(st.SQL) }) {
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
	var before map[string]relation
	if probe.relations != nil {
		if before, err = probe.relations(ctx, conn); err != nil {
			return r, err
		}
	}
	for _, st := range stmts {
		if st.Node.GetTransactionStmt() != nil || (st.Node == nil && reTxnStmt.MatchString(st.SQL)) {
			continue
		}
		start := time.Now()
		res, err := conn.ExecContext(ctx, st.SQL)
		if err != nil {
			if ctx.Err() != nil {
				return r, ctx.Err()
			}
			r.FailedLine, r.FailedErr = errorLine(st, err), err
			return r, nil // the replay reports failures
		}
		took := time.Since(start)
		r.Elapsed += took
		sl := StatementLocks{Line: st.Line, SQL: abbreviate(st.SQL, 80), Locks: []TableLock{}, Ms: round3(ms(took))}
		if n, err := res.RowsAffected(); err == nil && slices.ContainsFunc(allEffects(st), func(e effect) bool { return e.dml }) {
			sl.Rows = n
		}
		if probe.locks != nil {
			held, err := probe.locks(ctx, conn)
			if err != nil {
				return r, err
			}
			for _, tl := range held {
				if !seen[tl] {
					seen[tl] = true
					sl.Locks = append(sl.Locks, tl)
				}
			}
		}
		if probe.relations != nil {
			after, err := probe.relations(ctx, conn)
			if err != nil {
				return r, err
			}
			for _, name := range slices.Sorted(maps.Keys(before)) {
				b, a := before[name], after[name]
				if a.node == 0 || b.node == a.node || a.table != b.table {
					continue
				}
				if b.index {
					sl.Rebuilt = append(sl.Rebuilt, name)
				} else {
					sl.Rewrites = append(sl.Rewrites, name)
				}
			}
			before = after
		}
		r.Statements = append(r.Statements, sl)
	}
	r.OK = true
	return r, nil
}

// changedRows is how many rows the traced data changes changed.
func (q *quietRun) changedRows() int64 {
	var n int64
	for _, st := range q.Statements {
		n += st.Rows
	}
	return n
}

// statementsOn returns the traced statements that locked or rewrote one
// of the tables, with only those tables' locks.
func (q *quietRun) statementsOn(tables func(string) bool) []StatementLocks {
	if q == nil {
		return nil
	}
	var out []StatementLocks
	for _, sl := range q.Statements {
		sl.Locks = slices.DeleteFunc(slices.Clone(sl.Locks), func(l TableLock) bool { return !tables(l.Table) })
		if len(sl.Locks) > 0 || len(sl.Rewrites) > 0 {
			out = append(out, sl)
		}
	}
	return out
}

// errorLine is the file line a statement's error points at: where
// PostgreSQL's error position is (a syntax error), else the statement's
// first line.
func errorLine(st Stmt, err error) int {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Position <= 0 {
		return st.Line
	}
	r := []rune(st.SQL)
	if int(pe.Position) > len(r) {
		return st.Line
	}
	return st.Line + strings.Count(string(r[:pe.Position-1]), "\n")
}
