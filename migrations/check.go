package migrations

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing/fstest"
	"time"

	"github.com/relcheck/relcheck/internal/config"
	"github.com/relcheck/relcheck/internal/gitx"
	"github.com/relcheck/relcheck/internal/report"
)

// Rule ids of the migrations gate.
const (
	RuleModified             = "migrations/modified"
	RuleOrder                = "migrations/order"
	RuleFailed               = "migrations/failed"
	RuleIrreversible         = "migrations/irreversible"
	RuleDestructive          = "migrations/destructive"
	RuleBackwardIncompatible = "migrations/backward-incompatible"
	RuleLocking              = "migrations/locking"
	RuleBudget               = "migrations/budget"
)

// Rules lists the rule ids of the migrations gate.
var Rules = []string{RuleModified, RuleOrder, RuleFailed, RuleIrreversible, RuleDestructive, RuleBackwardIncompatible, RuleLocking, RuleBudget}

// Options are the inputs of Check.
type Options struct {
	Repo *gitx.Repo
	// Root is the repository root; Dir the project directory in it.
	Root, Dir string
	// Base is the ref of the base release; empty for a first release.
	Base   string
	Config config.Migrations
	// SLO is the availability objective whose error budget the blocking
	// time of a release's migrations is charged to.
	SLO config.SLO
	// BaseConfig is the migrations section of relcheck.yaml at the base
	// (its deprecated list is what allows a drop); nil when there was none.
	BaseConfig *config.Migrations
	// NewEngine opens the database engine to replay on.
	NewEngine func(ctx context.Context, dialect string) (Engine, error)
	// SeedRows is how many rows each table gets before the new migrations.
	SeedRows int
	// Progress, if set, is told about long work (measurements).
	Progress func(format string, args ...any)
}

// EngineError says that no database to replay on could be had (exit 3).
type EngineError struct{ Err error }

func (e *EngineError) Error() string { return e.Err.Error() }
func (e *EngineError) Unwrap() error { return e.Err }

// Check runs the migrations gate.
func Check(ctx context.Context, opts Options) (*report.Check, error) {
	start := time.Now()
	chk := &report.Check{Name: "migrations", Findings: []report.Finding{}, Metrics: map[string]any{}}
	relDir := filepath.ToSlash(filepath.Join(mustRel(opts.Root, opts.Dir), opts.Config.Dir))
	head, err := Load(os.DirFS(opts.Root), relDir)
	if err != nil {
		return nil, err
	}
	base := &Set{Dir: relDir, Migrations: map[uint]*Migration{}}
	if opts.Base != "" {
		if base, err = loadAt(ctx, opts.Repo, opts.Base, relDir); err != nil {
			return nil, fmt.Errorf("reading the migrations at %s: %w", opts.Base, err)
		}
	}
	add := func(f report.Finding) { chk.Findings = append(chk.Findings, f) }
	for _, p := range head.Problems {
		add(report.Finding{Rule: RuleOrder, Severity: report.SeverityError, Message: p.Msg,
			Location: &report.Location{File: p.File, Line: 1}, Fix: "give every migration its own version, with an up and a down file of the same name"})
	}

	// What the files say.
	deleted := false
	baseMax := uint(0)
	if vs := base.Versions(); len(vs) > 0 {
		baseMax = vs[len(vs)-1]
	}
	var news []*Migration
	for _, v := range head.Versions() {
		hm := head.Migrations[v]
		bm, released := base.Migrations[v]
		if !released {
			news = append(news, hm)
			if v <= baseMax {
				add(report.Finding{Rule: RuleOrder, Severity: report.SeverityError, Symbol: hm.Name,
					Message:  fmt.Sprintf("new migration %s is not above the base release's last migration %d: installs that already ran %d never apply it", stem(hm), baseMax, baseMax),
					Location: &report.Location{File: head.Path(hm.Up), Line: 1},
					Fix:      fmt.Sprintf("renumber it above %d (golang-migrate only moves forward)", baseMax)})
			}
			if hm.Up != nil && hm.Down == nil {
				add(report.Finding{Rule: RuleIrreversible, Severity: report.SeverityError, Symbol: hm.Name,
					Message:  fmt.Sprintf("migration %s has no down file: operators cannot roll the upgrade back", stem(hm)),
					Location: &report.Location{File: head.Path(hm.Up), Line: 1},
					Fix:      fmt.Sprintf("add %s.down.sql that undoes it", stem(hm))})
			}
			continue
		}
		for _, pair := range [][2]*File{{bm.Up, hm.Up}, {bm.Down, hm.Down}} {
			b, h := pair[0], pair[1]
			if b == nil {
				continue
			}
			switch {
			case h == nil:
				deleted = deleted || b == bm.Up
				add(report.Finding{Rule: RuleModified, Severity: report.SeverityError, Symbol: bm.Name,
					Message:  fmt.Sprintf("released migration %s was deleted", b.Name),
					Location: &report.Location{File: base.Path(b), Line: 1},
					Fix:      "restore it: released migrations are history"})
			case !bytes.Equal(b.Data, h.Data):
				add(report.Finding{Rule: RuleModified, Severity: report.SeverityError, Symbol: bm.Name,
					Message:  fmt.Sprintf("%s was released in %s and has been changed: databases that already ran it will never see the change", b.Name, opts.Base),
					Location: &report.Location{File: head.Path(h), Line: firstDiffLine(b.Data, h.Data)},
					Fix:      fmt.Sprintf("restore %s as released and put the change in a new migration above %d", b.Name, head.Versions()[len(head.Versions())-1])})
			}
		}
	}
	for _, v := range base.Versions() {
		if _, ok := head.Migrations[v]; !ok && base.Migrations[v].Up != nil {
			deleted = true
			bm := base.Migrations[v]
			add(report.Finding{Rule: RuleModified, Severity: report.SeverityError, Symbol: bm.Name,
				Message:  fmt.Sprintf("released migration %s was deleted", bm.Up.Name),
				Location: &report.Location{File: base.Path(bm.Up), Line: 1},
				Fix:      "restore it: released migrations are history"})
		}
	}
	chk.Metrics["migrations"] = len(head.Migrations)
	chk.Metrics["newMigrations"] = len(news)
	if deleted {
		// golang-migrate cannot move a database whose version has no file.
		chk.Settle()
		chk.Summary = "replay skipped: a released migration was deleted"
		chk.DurationMs = time.Since(start).Milliseconds()
		return chk, nil
	}
	if len(news) == 0 {
		// No schema change; the deprecations still count.
		chk.Metrics["schema"] = schemaFacts(base, head, nil, newSchema(), opts.Config.Deprecated)
		chk.Summary = "no new migrations"
		chk.Settle()
		chk.DurationMs = time.Since(start).Milliseconds()
		return chk, nil
	}

	// What a real database says.
	eng, err := opts.NewEngine(ctx, opts.Config.Dialect)
	if err != nil {
		return nil, &EngineError{Err: err}
	}
	defer eng.Close()
	replayStart := time.Now()
	r, err := replay(ctx, eng, base, head, opts.SeedRows)
	if err != nil {
		return nil, err
	}
	chk.Metrics["replayMs"] = time.Since(replayStart).Milliseconds()
	chk.Metrics["engine"] = eng.Name()
	if eng.Name() == "postgres" && r.base != nil {
		// Locks: what each new file takes on tables that already hold rows.
		populated := func(t string) bool { _, ok := r.base.Tables[t]; return ok }
		checks := notNullChecks(r.base)
		for _, m := range news {
			for _, li := range LintLocks(string(m.Up.Data), populated, checks) {
				sev := report.SeverityError
				if li.Severity == "warning" {
					sev = report.SeverityWarning
				}
				add(report.Finding{Rule: RuleLocking, Severity: sev, Symbol: li.Table, Message: li.Msg, Fix: li.Fix,
					Location: &report.Location{File: head.Path(m.Up), Line: li.Line}})
			}
		}
	}
	if r.failedErr == nil && r.base != nil && len(opts.Config.ProbeSizes) > 0 {
		if err := measureBudget(ctx, eng, head, news, r.base, r.head, opts, chk, add); err != nil {
			return nil, err
		}
	}
	if r.failedErr != nil {
		hm := head.Migrations[r.failed]
		loc := &report.Location{File: relDir, Line: 1}
		name := fmt.Sprint(r.failed)
		if hm != nil && hm.Up != nil {
			loc = &report.Location{File: head.Path(hm.Up), Line: 1}
			name = hm.Up.Name
		}
		populated := ""
		if _, released := base.Migrations[r.failed]; !released && len(base.Migrations) > 0 {
			populated = fmt.Sprintf(" (on %s, after the base migrations, with %d rows in every table)", eng.Name(), opts.SeedRows)
		}
		add(report.Finding{Rule: RuleFailed, Severity: report.SeverityError, Symbol: name,
			Message:  fmt.Sprintf("%s does not apply%s: %v", name, populated, r.failedErr),
			Location: loc,
			Fix:      "fix the statement; on tables that already hold rows, add columns nullable or with a default and backfill in a later step"})
	} else {
		missingDown := slices.ContainsFunc(news, func(m *Migration) bool { return m.Down == nil })
		if r.reverseErr != nil && !missingDown { // a missing down is reported above
			last := news[len(news)-1]
			add(report.Finding{Rule: RuleIrreversible, Severity: report.SeverityError, Symbol: last.Name,
				Message:  fmt.Sprintf("the new migrations are not reversible on %s: %v", eng.Name(), r.reverseErr),
				Location: &report.Location{File: head.Path(last.Up), Line: 1},
				Fix:      "make each down file undo exactly what its up file does"})
		}
		deprecated := []string{}
		if opts.BaseConfig != nil {
			deprecated = opts.BaseConfig.Deprecated
		}
		// A rename shows up in the schemas as a drop plus an addition:
		// report it once, as the rename.
		renamed := map[string]bool{}
		for _, m := range news {
			for _, rn := range renames(m.Up.Data) {
				renamed[rn.from], renamed[rn.to] = true, true
			}
		}
		chk.Metrics["schema"] = schemaFacts(base, head, r.base, r.head, opts.Config.Deprecated)
		for _, ch := range Diff(r.base, r.head) {
			if renamed[ch.Object] || (ch.Column == "" && renamed[ch.Table]) {
				continue
			}
			f := report.Finding{Symbol: ch.Object, Message: ch.Msg, Fix: ch.Fix, Severity: report.SeverityError}
			f.Location = locate(head, news, ch)
			switch ch.Kind {
			case Dropped:
				if slices.Contains(deprecated, ch.Object) || (ch.Column != "" && slices.Contains(deprecated, ch.Table)) {
					continue // contract step of an expand/contract: allowed
				}
				f.Rule = RuleDestructive
				f.Message += fmt.Sprintf(", but it is not listed in migrations.deprecated at %s: release N-1 still uses it during the upgrade", orFirst(opts.Base))
			case Incompatible:
				f.Rule = RuleBackwardIncompatible
			}
			add(f)
		}
		for _, m := range news {
			for _, rn := range renames(m.Up.Data) {
				add(report.Finding{Rule: RuleBackwardIncompatible, Severity: report.SeverityError, Symbol: rn.object,
					Message:  fmt.Sprintf("%s renames %s: release N-1 still uses the old name during the upgrade", m.Up.Name, rn.object),
					Location: &report.Location{File: head.Path(m.Up), Line: rn.line},
					Fix:      "expand/contract: add the new name (column, or a view for a table), write both, backfill, switch reads, and drop the old name in a later release"})
			}
		}
	}
	chk.Settle()
	e, _, _ := chk.Counts()
	chk.Summary = fmt.Sprintf("%d new migration(s) replayed on %s", len(news), eng.Name())

	if e == 0 {
		chk.Summary += ", safe for release N-1"
	}
	if b, ok := chk.Metrics["blockedSeconds"].(float64); ok {
		chk.Summary += fmt.Sprintf("; measured blocking %s of %s allowed", seconds(b), seconds(chk.Metrics["allowedSeconds"].(float64)))
	}
	chk.DurationMs = time.Since(start).Milliseconds()
	return chk, nil
}

// stem is a migration's file name without direction and extension.
func stem(m *Migration) string {
	f := m.Up
	if f == nil {
		f = m.Down
	}
	if i := strings.Index(f.Name, "."); i >= 0 {
		return f.Name[:i]
	}
	return f.Name
}

func orFirst(s string) string {
	if s == "" {
		return "the base"
	}
	return s
}

func mustRel(root, dir string) string {
	r, err := filepath.Rel(root, dir)
	if err != nil {
		return "."
	}
	return r
}

// loadAt reads the set in dir at a git ref.
func loadAt(ctx context.Context, repo *gitx.Repo, ref, dir string) (*Set, error) {
	names, err := repo.ListFiles(ctx, ref, dir)
	if err != nil {
		return &Set{Dir: dir, Migrations: map[uint]*Migration{}}, nil // no such directory at the base
	}
	fsys := fstest.MapFS{}
	for _, n := range names {
		base := path.Base(n)
		data, err := repo.ReadFile(ctx, ref, path.Join(dir, base))
		if err != nil {
			continue // a subdirectory
		}
		fsys[path.Join(dir, base)] = &fstest.MapFile{Data: data, Mode: 0o644}
	}
	return Load(fsys, dir)
}

func firstDiffLine(a, b []byte) int {
	al, bl := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := 0; i < len(al) && i < len(bl); i++ {
		if !bytes.Equal(al[i], bl[i]) {
			return i + 1
		}
	}
	return min(len(al), len(bl)) + 1
}

// locate finds the statement of a new migration that caused a schema change:
// the first line naming the constraint, column or table in a new up file.
func locate(head *Set, news []*Migration, ch Change) *report.Location {
	words := []string{ch.Column, ch.Table}
	if ch.Object != ch.Table && ch.Column == "" {
		words[0] = ch.Object // a constraint
	}
	for _, word := range words {
		if word == "" {
			continue
		}
		re := regexp.MustCompile(`(?i)\b` + regexp.QuoteMeta(word) + `\b`)
		for _, m := range news {
			for i, l := range strings.Split(string(m.Up.Data), "\n") {
				if re.MatchString(l) {
					return &report.Location{File: head.Path(m.Up), Line: i + 1}
				}
			}
		}
	}
	if len(news) > 0 {
		return &report.Location{File: head.Path(news[0].Up), Line: 1}
	}
	return nil
}

type rename struct {
	object   string // "users.name to full_name"
	from, to string // "users.name", "users.full_name" (or table names)
	line     int
}

var renameRE = regexp.MustCompile(`(?i)\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?"?([\w.]+)"?\s+RENAME\s+(?:COLUMN\s+)?(?:"?(\w+)"?\s+)?TO\s+"?(\w+)"?`)

// renames finds ALTER TABLE ... RENAME statements in a migration.
func renames(sql []byte) []rename {
	var out []rename
	for i, l := range strings.Split(string(sql), "\n") {
		for _, m := range renameRE.FindAllStringSubmatch(l, -1) {
			table := strings.ToLower(m[1])
			r := rename{from: table, to: strings.ToLower(m[3]), line: i + 1}
			if m[2] != "" && !strings.EqualFold(m[2], "to") {
				r.from, r.to = table+"."+strings.ToLower(m[2]), table+"."+strings.ToLower(m[3])
			}
			r.object = r.from + " to " + m[3]
			out = append(out, r)
		}
	}
	return out
}

// measureBudget measures the blocking of every new migration that touches a
// populated table, extrapolates it to the production sizes, and charges it to
// the error budget: budget = (1 − objective) × window × budgetRemaining.
func measureBudget(ctx context.Context, eng Engine, head *Set, news []*Migration, base, later *Schema, opts Options, chk *report.Check, add func(report.Finding)) error {
	populated := func(t string) bool { _, ok := base.Tables[t]; return ok }
	touched := map[uint][]string{}
	byFile := map[string]*Migration{}
	for _, m := range news {
		touched[m.Version] = touchedTables(string(m.Up.Data), populated)
		byFile[head.Path(m.Up)] = m
	}
	all, err := measureAll(ctx, eng, head, news, touched, opts.Config.ProbeSizes, opts.Config.Sizes, later, opts.Progress)
	if err != nil {
		return err
	}
	total, worst := 0.0, (*Measurement)(nil)
	for _, meas := range all {
		m := byFile[meas.File]
		if q := meas.Queue; q != nil && q.GaveUp == "" {
			if _, set := lockTimeout(string(m.Up.Data)); !set {
				reportQueue(chk, add, meas.File, m, meas)
			}
		}
		chk.Notes = append(chk.Notes, meas.note())
		total += meas.PredictedS
		if worst == nil || meas.PredictedS > worst.PredictedS {
			worst = meas
		}
	}
	if len(all) == 0 {
		return nil
	}
	budget := (1 - opts.SLO.Objective/100) * time.Duration(opts.SLO.Window).Seconds() * opts.SLO.BudgetRemaining
	allowed := opts.Config.BudgetShare * budget
	chk.Metrics["measurements"] = all
	chk.Metrics["blockedSeconds"] = round3(total)
	chk.Metrics["budgetSeconds"] = round3(budget)
	chk.Metrics["allowedSeconds"] = round3(allowed)
	chk.Metrics["budgetShareUsed"] = round3(total / allowed)
	if total <= allowed {
		return nil
	}
	var pts []string
	for _, p := range worst.Points {
		pts = append(pts, fmt.Sprintf("%d rows: %.0f ms", p.Rows, p.BlockedMs))
	}
	at := "at the largest size measured"
	if worst.TargetRows > 0 {
		at = fmt.Sprintf("extrapolated to %d rows (migrations.sizes)", worst.TargetRows)
	}
	fix := fmt.Sprintf("split the work into steps that hold no strong lock on a populated table (batched backfills in their own migrations, CONCURRENTLY, NOT VALID then VALIDATE), or at least SET lock_timeout = '%dms' so the worst case stays within budget", max(1, int(allowed*1000)))
	if eng.Name() == "sqlite" {
		fix = "split the work into smaller migration files (each holds the database's write lock until it commits): a backfill in batches, one file per batch, or done by the application after the upgrade"
	}
	add(report.Finding{Rule: RuleBudget, Severity: report.SeverityError, Symbol: strings.Join(worst.Tables, ","),
		Message: fmt.Sprintf("the new migrations would block queries for %.1f s %s, %.0f%% of the remaining error budget (%.0f s of %.1f%% over %s); a release may use %.0f%% (%.1f s). Measured for %s: %s; locks %s",
			total, at, 100*total/budget, budget, opts.SLO.Objective, opts.SLO.Window, 100*opts.Config.BudgetShare, allowed,
			path.Base(worst.File), strings.Join(pts, ", "), strings.Join(worst.Locks, ", ")),
		Location: &report.Location{File: worst.File, Line: 1},
		Fix:      fix})
	return nil
}

// note is one line about a measurement for people: the cost at each size,
// where it came from, and the extrapolation.
func (m *Measurement) note() string {
	var pts []string
	for _, p := range m.Points {
		pts = append(pts, fmt.Sprintf("%d rows %s", p.Rows, seconds(p.BlockedMs/1000)))
	}
	what := "probe waited"
	if len(m.Points) > 0 && m.Points[0].LockHeldMs > 0 {
		what = "lock held"
	}
	s := fmt.Sprintf("%s on %s: %s (%s; locks %s", path.Base(m.File), strings.Join(m.Tables, ", "), strings.Join(pts, ", "), what, orNone(m.Locks))
	if slices.ContainsFunc(m.Points, func(p Point) bool { return p.Rewrite }) {
		s += "; rewrites the table"
	}
	s += ")"
	if m.TargetRows > 0 {
		s += fmt.Sprintf(" → %s at %d rows", seconds(m.PredictedS), m.TargetRows)
	}
	if q := m.Queue; q != nil {
		if q.GaveUp != "" {
			s += fmt.Sprintf("; behind a %.1f s %s it gave up (lock_timeout)", q.HeldMs/1000, q.HeldBy)
		} else {
			s += fmt.Sprintf("; behind a %.1f s %s the probe waited %s", q.HeldMs/1000, q.HeldBy, seconds(q.BlockedMs/1000))
		}
	}
	return s
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none seen"
	}
	return strings.Join(xs, ", ")
}

// reSessionStmt is a statement that sets up the session rather than
// touching a table.
var reSessionStmt = regexp.MustCompile(`(?i)^(SET|RESET|BEGIN|COMMIT)\b`)

// reportQueue reports the measured lock queue of a migration without a
// lock_timeout: on the finding that already says so, or on its own.
func reportQueue(chk *report.Check, add func(report.Finding), file string, m *Migration, meas *Measurement) {
	q := meas.Queue
	strong := slices.DeleteFunc(slices.Clone(meas.Locks), func(l string) bool { return !conflictsWithApp(l) })
	verb, victims := "read", "reads and writes"
	if q.HeldBy == "writer" {
		verb, victims = "wrote to", "writes"
	}
	tables := strings.Join(meas.Tables, ", ")
	msg := fmt.Sprintf("measured: behind a transaction that %s %s for %.1f s, the migration waited for its %s and the probe's %s on %s waited %.1f s behind it; in production they wait as long as the longest transaction on the table",
		verb, tables, q.HeldMs/1000, strings.Join(strong, ", "), victims, tables, q.BlockedMs/1000)
	// The statement that queues: the first with a strong lock.
	line := 0
	for _, st := range meas.Statements {
		if slices.ContainsFunc(st.Locks, func(l TableLock) bool { return conflictsWithApp(l.Mode) }) {
			line = st.Line
			break
		}
	}
	if line == 0 {
		line = 1
		for _, st := range SplitStatements(string(m.Up.Data)) {
			if !reSessionStmt.MatchString(st.SQL) {
				line = st.Line
				break
			}
		}
	}
	// Said on the finding about that statement, if there is one.
	for i := range chk.Findings {
		f := &chk.Findings[i]
		if f.Rule == RuleLocking && f.Location != nil && f.Location.File == file && (f.Location.Line == line || strings.Contains(f.Message, "lock_timeout")) {
			f.Message += ". " + strings.ToUpper(msg[:1]) + msg[1:] + "; a lock_timeout would cap that wait"
			return
		}
	}
	add(report.Finding{Rule: RuleLocking, Severity: report.SeverityWarning, Symbol: strings.Join(meas.Tables, ","),
		Message:  "no lock_timeout before a lock that blocks the application: " + msg,
		Location: &report.Location{File: file, Line: line},
		Fix:      "start the file with SET lock_timeout = '2s' (and retry the deploy) so a long transaction cannot stall the application behind the migration"})
}

// seconds formats a duration given in seconds for people.
func seconds(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.0f ms", s*1000)
	}
	return fmt.Sprintf("%.1f s", s)
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// SchemaFacts are what a release does to the schema, for the release's
// metadata: channels compute required upgrade stops from them (a release
// that drops what an earlier one deprecated needs that one installed
// first).
type SchemaFacts struct {
	// From and To are the newest migration versions at base and head.
	From       uint     `json:"from"`
	To         uint     `json:"to"`
	Added      []string `json:"added,omitempty"`
	Dropped    []string `json:"dropped,omitempty"`
	Deprecated []string `json:"deprecated,omitempty"`
}

func schemaFacts(baseSet, headSet *Set, base, head *Schema, deprecated []string) SchemaFacts {
	f := SchemaFacts{Deprecated: slices.Clone(deprecated)}
	if vs := baseSet.Versions(); len(vs) > 0 {
		f.From = vs[len(vs)-1]
	}
	if vs := headSet.Versions(); len(vs) > 0 {
		f.To = vs[len(vs)-1]
	}
	if base == nil {
		base = newSchema()
	}
	for _, ch := range Diff(base, head) {
		if ch.Kind == Dropped {
			f.Dropped = append(f.Dropped, ch.Object)
		}
	}
	for _, tn := range slices.Sorted(maps.Keys(head.Tables)) {
		bt, ok := base.Tables[tn]
		if !ok {
			f.Added = append(f.Added, tn)
			continue
		}
		for _, cn := range slices.Sorted(maps.Keys(head.Tables[tn].Columns)) {
			if _, ok := bt.Columns[cn]; !ok {
				f.Added = append(f.Added, tn+"."+cn)
			}
		}
	}
	return f
}
