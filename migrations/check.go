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

	"github.com/Masterminds/semver/v3"
	"github.com/golang-migrate/migrate/v4/source"
	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/relcheck/relcheck/config"
	"github.com/relcheck/relcheck/internal/gitx"
	"github.com/relcheck/relcheck/report"
)

// Rule ids of the migrations gate, all raised in this file (Check and
// its helpers) from what set.go, lint.go, replay.go, schema.go and
// measure.go find.
const (
	RuleModified             = "migrations/modified"
	RuleOrder                = "migrations/order"
	RuleFailed               = "migrations/failed"
	RuleIrreversible         = "migrations/irreversible"
	RuleDestructive          = "migrations/destructive"
	RuleBackwardIncompatible = "migrations/backward-incompatible"
	RuleLocking              = "migrations/locking"
	RuleBudget               = "migrations/budget"
	RuleSuppressionExpired   = "migrations/suppression-expired"
)

// Rules lists the rule ids of the migrations gate.
var Rules = []string{RuleModified, RuleOrder, RuleFailed, RuleIrreversible, RuleDestructive, RuleBackwardIncompatible, RuleLocking, RuleBudget, RuleSuppressionExpired}

// Options are the inputs of Check.
type Options struct {
	// Root is the git repository's top-level directory; Dir the project
	// directory in it.
	Root, Dir string
	// Base is the ref of the base release; empty for a first release.
	Base   string
	Config Config
	// ConfigFile is the configuration file's path relative to Root, for
	// the locations of migrations.ignore entries.
	ConfigFile string
	// SLO is the availability objective whose error budget the blocking
	// time of a release's migrations is charged to.
	SLO SLO
	// BaseConfig is the migrations section of relcheck.yaml at the base
	// (its deprecated list is what allows a drop); nil when there was none.
	BaseConfig *Config
	// NewEngine opens the database engine to replay on.
	NewEngine func(ctx context.Context, dialect string) (Engine, error)
	// SeedRows is how many rows each table gets before the new migrations.
	SeedRows int
	// Next is the version the changes will be released as, when the
	// gates before this one decided it; BaseVersion the base's. A
	// suppression "until vX.Y.Z" expires once the next version reaches
	// it (without Next: the base's next minor, or patch without new
	// migrations, as an application's version is derived).
	Next, BaseVersion *semver.Version
	// Now dates the suppressions "until YYYY-MM-DD".
	Now time.Time
	// Progress, if set, is told about long work (measurements).
	Progress func(format string, args ...any)
	// FilesOnly stops after what the files say (released migrations
	// unchanged, order, down files, the new migrations): no database is
	// started. For a quick decision of the version, not of the release.
	FilesOnly bool
}

// EngineError says that no database to replay on could be had (exit 3).
type EngineError struct{ Err error }

func (e *EngineError) Error() string { return e.Err.Error() }
func (e *EngineError) Unwrap() error { return e.Err }

// Check runs the migrations gate.
func Check(ctx context.Context, opts Options) (*report.Check, error) {
	start := time.Now()
	ph := newPhases()
	dialect := opts.Config.Dialect
	if dialect == "postgres" {
		warmParser() // beside the database start
	}
	chk := &report.Check{Name: "migrations", Findings: []report.Finding{}, Metrics: map[string]any{}}
	relDir := filepath.ToSlash(filepath.Join(mustRel(opts.Root, opts.Dir), opts.Config.Dir))
	head, err := Load(os.DirFS(opts.Root), relDir)
	if err != nil {
		return nil, err
	}
	base := &Set{Dir: relDir, Migrations: map[uint]*Migration{}}
	if opts.Base != "" {
		if base, err = loadAt(ctx, &gitx.Repo{Root: opts.Root}, opts.Base, relDir); err != nil {
			return nil, fmt.Errorf("reading the migrations at %s: %w", opts.Base, err)
		}
	}
	add := func(f report.Finding) { chk.Findings = append(chk.Findings, f) }
	var news []*Migration
	done := func(summary string) (*report.Check, error) {
		if summary != "" {
			chk.Summary = summary
		}
		applyIgnores(chk, opts, nextVersion(opts, len(news)))
		chk.Settle()
		chk.DurationMs = time.Since(start).Milliseconds()
		if len(ph.order) > 0 {
			var parts []string
			metrics := map[string]int64{}
			for _, name := range ph.order {
				parts = append(parts, fmt.Sprintf("%s %s", name, seconds(ph.ms[name].Seconds())))
				metrics[camel(name)] = ph.ms[name].Milliseconds()
			}
			chk.Metrics["phasesMs"] = metrics
			chk.Notes = append(chk.Notes, "time: "+strings.Join(parts, ", "))
		}
		return chk, nil
	}
	for _, p := range head.Problems {
		add(report.Finding{Rule: RuleOrder, Severity: report.SeverityError, Message: p.Msg,
			Location: &report.Location{File: p.File, Line: 1}, Fix: "give every migration its own version, with an up and a down file of the same name"})
	}
	if !opts.Config.Reversible {
		chk.Notes = append(chk.Notes, "migrations.reversible is false: down files are not required, and up → down → up is not checked")
	}

	// What the files say.
	deleted := false
	baseMax := uint(0)
	if vs := base.Versions(); len(vs) > 0 {
		baseMax = vs[len(vs)-1]
	}
	for _, v := range head.Versions() {
		hm := head.Migrations[v]
		bm, released := base.Migrations[v]
		if !released {
			if hm.Up == nil {
				continue // a down file without its up: a problem above
			}
			news = append(news, hm)
			if v <= baseMax {
				add(report.Finding{Rule: RuleOrder, Severity: report.SeverityError, Symbol: hm.Name,
					Message:  fmt.Sprintf("new migration %s is not above the base release's last migration %d: installs that already ran %d never apply it", stem(hm), baseMax, baseMax),
					Location: &report.Location{File: head.Path(hm.Up), Line: 1},
					Fix:      fmt.Sprintf("renumber it above %d (golang-migrate only moves forward)", baseMax)})
			}
			if hm.Down == nil && opts.Config.Reversible {
				add(report.Finding{Rule: RuleIrreversible, Severity: report.SeverityError, Symbol: hm.Name,
					Message:  fmt.Sprintf("migration %s has no down file: operators cannot roll the upgrade back", stem(hm)),
					Location: &report.Location{File: head.Path(hm.Up), Line: 1},
					Fix:      fmt.Sprintf("add %s.down.sql that undoes it (or set migrations.reversible: false if the project ships up-only migrations)", stem(hm))})
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
		return done("replay skipped: a released migration was deleted")
	}
	if len(news) == 0 {
		// No schema change; the deprecations still count.
		chk.Metrics["schema"] = schemaFacts(base, head, nil, newSchema(), opts.Config.Deprecated)
		return done("no new migrations")
	}
	if opts.FilesOnly {
		chk.Metrics["schema"] = schemaFacts(base, head, nil, newSchema(), opts.Config.Deprecated)
		return done(fmt.Sprintf("%d new migration(s), read from the files; not replayed on a database", len(news)))
	}

	// What a real database says.
	if opts.Progress != nil {
		opts.Progress("starting a throwaway %s database", dialect)
	}
	stop := ph.start("database start")
	eng, err := opts.NewEngine(ctx, dialect)
	stop()
	if err != nil {
		return nil, &EngineError{Err: err}
	}
	defer eng.Close()
	stop = ph.start("parse")
	stmts, funcs := map[uint][]Stmt{}, map[string]*function{}
	for _, set := range []*Set{base, head} {
		for _, v := range set.Versions() {
			m := set.Migrations[v]
			if m.Up == nil {
				continue
			}
			parsed, _ := parseFile(dialect, string(m.Up.Data))
			for _, st := range parsed {
				if f := definedFunction(st); f != nil {
					funcs[f.name] = f
				}
			}
			if set == head && !slices.Contains(news, m) {
				continue
			}
			stmts[v] = parsed
		}
	}
	for _, m := range news {
		expandCalls(stmts[m.Version], funcs)
	}
	hints := castHints(stmts)
	stop()
	if opts.Progress != nil {
		opts.Progress("replaying %d migration(s) on %s", len(head.Migrations), eng.Name())
	}
	r, err := replay(ctx, eng, base, head, replayOptions{seedRows: int64(opts.SeedRows), hints: hints, stmts: stmts, reverse: opts.Config.Reversible, phases: ph})
	if err != nil {
		return nil, err
	}
	chk.Metrics["engine"] = eng.Name()
	for _, p := range r.seedProblems {
		chk.Notes = append(chk.Notes, "not seeded (checked on an empty table): "+p)
	}
	for _, df := range r.dataFailures {
		hm := head.Migrations[df.version]
		line, what := df.line, ""
		if line == 0 {
			line = firstStatementLine(stmts[df.version])
		}
		if df.sql != "" {
			what = fmt.Sprintf(" at line %d (%s)", line, abbreviate(df.sql, 70))
		}
		add(report.Finding{Rule: RuleFailed, Severity: report.SeverityWarning, Symbol: hm.Up.Name,
			Message: fmt.Sprintf("%s applies without generated rows but fails on them%s: %v; if production rows hold such values, the upgrade stops there. The checks after it ran without generated rows",
				hm.Up.Name, what, df.err),
			Location: &report.Location{File: head.Path(hm.Up), Line: line},
			Fix:      "make the statement hold for every value the column can have (a USING clause or a WHERE that skips what does not convert), or check the production data first"})
	}
	populated := func(t string) bool { _, ok := r.base.Tables[t]; return ok }
	large := func(t string) bool { return opts.Config.Sizes[t] >= largeRows }
	// What each new file's statements did, as traced: the locks they took
	// on tables that hold rows, and what they rewrote.
	traced := map[string][]StatementLocks{}
	for _, m := range news {
		for _, sl := range r.traces[m.Version].statementsOn(populated) {
			traced[head.Path(m.Up)] = append(traced[head.Path(m.Up)], sl)
		}
	}
	if len(traced) > 0 {
		chk.Metrics["traced"] = traced
	}
	if eng.Name() == "postgres" {
		// Locks: what each new file takes on tables that already hold rows.
		checks := notNullChecks(r.base)
		for _, m := range news {
			issues, notes := lint(lintInput{stmts: stmts[m.Version], populated: populated, large: large, checks: checks, trace: r.traces[m.Version]})
			addNotNullChecks(stmts[m.Version], checks)
			for _, li := range issues {
				sev := report.SeverityError
				if li.Severity == "warning" {
					sev = report.SeverityWarning
				}
				add(report.Finding{Rule: RuleLocking, Severity: sev, Symbol: li.Table, Message: li.Msg, Fix: li.Fix,
					Location: &report.Location{File: head.Path(m.Up), Line: li.Line}})
			}
			for _, n := range notes {
				chk.Notes = append(chk.Notes, head.Path(m.Up)+": "+n)
			}
		}
	}
	if r.failedErr != nil {
		hm := head.Migrations[r.failed]
		loc := &report.Location{File: relDir, Line: 1}
		name := fmt.Sprint(r.failed)
		if hm != nil && hm.Up != nil {
			line := r.failedLine
			if line == 0 {
				line = firstStatementLine(stmts[r.failed])
			}
			loc = &report.Location{File: head.Path(hm.Up), Line: line}
			name = hm.Up.Name
		}
		where := ""
		if _, released := base.Migrations[r.failed]; !released && len(base.Migrations) > 0 {
			where = fmt.Sprintf(" (on %s, after the base migrations", eng.Name())
			if r.seeded {
				where += fmt.Sprintf(", with %d rows in every table", opts.SeedRows)
			}
			where += ")"
		}
		add(report.Finding{Rule: RuleFailed, Severity: report.SeverityError, Symbol: name,
			Message:  fmt.Sprintf("%s does not apply%s: %v", name, where, r.failedErr),
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
			for _, rn := range renames(stmts[m.Version]) {
				renamed[rn.from], renamed[rn.to] = true, true
			}
		}
		chk.Metrics["schema"] = schemaFacts(base, head, r.base, r.head, opts.Config.Deprecated)
		for _, ch := range Diff(r.base, r.head) {
			if renamed[ch.Object] || (ch.Column == "" && renamed[ch.Table]) {
				continue
			}
			f := report.Finding{Symbol: ch.Object, Message: ch.Msg, Fix: ch.Fix, Severity: report.SeverityError}
			if ch.Warning {
				f.Severity = report.SeverityWarning
			}
			f.Location = locate(head, news, stmts, ch)
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
			for _, rn := range renames(stmts[m.Version]) {
				add(report.Finding{Rule: RuleBackwardIncompatible, Severity: report.SeverityError, Symbol: rn.object,
					Message:  fmt.Sprintf("%s renames %s: release N-1 still uses the old name during the upgrade", m.Up.Name, rn.object),
					Location: &report.Location{File: head.Path(m.Up), Line: rn.line},
					Fix:      "expand/contract: add the new name (column, or a view for a table), write both, backfill, switch reads, and drop the old name in a later release"})
			}
		}
	}
	if r.failedErr == nil && r.base != nil && len(opts.Config.ProbeSizes) > 0 {
		measureBudget(ctx, eng, head, news, r, stmts, hints, opts, chk, add, ph)
	}
	e, _, _ := chk.Counts()
	chk.Summary = fmt.Sprintf("%d new migration(s) replayed on %s", len(news), eng.Name())
	if e == 0 {
		chk.Summary += ", safe for release N-1"
	}
	if b, ok := chk.Metrics["blockedSeconds"].(float64); ok {
		chk.Summary += fmt.Sprintf("; measured blocking %s of %s allowed", seconds(b), seconds(chk.Metrics["allowedSeconds"].(float64)))
		if chk.Metrics["atLargestProbeSize"] == true {
			chk.Summary += " (at the largest probe size: migrations.sizes gives the production sizes to extrapolate to)"
		}
	}
	return done("")
}

// camel writes a phase name as a JSON key: "lock queue" → "lockQueue".
func camel(s string) string {
	words := strings.Fields(s)
	for i := 1; i < len(words); i++ {
		words[i] = strings.ToUpper(words[i][:1]) + words[i][1:]
	}
	return strings.Join(words, "")
}

// costlyLine is the line of a file's first statement whose cost grows
// with a table that holds rows: where its blocking time comes from.
func costlyLine(stmts []Stmt, tr *quietRun, populated func(string) bool) int {
	for _, st := range stmts {
		if len(sizedTables([]Stmt{st}, tr, populated)) > 0 {
			return st.Line
		}
	}
	return firstStatementLine(stmts)
}

// firstStatementLine is the line of a file's first statement, 1 if none.
func firstStatementLine(stmts []Stmt) int {
	if len(stmts) > 0 {
		return stmts[0].Line
	}
	return 1
}

// stem is a migration's file name without direction and extension, as
// golang-migrate's own file name parser cuts it: "0180_2.15.0_schema".
func stem(m *Migration) string {
	f := m.Up
	if f == nil {
		f = m.Down
	}
	if sm := source.Regex.FindStringSubmatch(f.Name); sm != nil {
		return sm[1] + "_" + sm[2]
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

// locate finds the statement of a new migration that caused a schema
// change: by its parse tree where there is one (the ALTER TABLE of the
// column, the DROP of the table, the ADD of the constraint), else the
// first statement whose text (comments left out) names the constraint,
// column or table.
func locate(head *Set, news []*Migration, stmts map[uint][]Stmt, ch Change) *report.Location {
	for _, m := range news {
		for _, st := range stmts[m.Version] {
			for _, u := range append([]Stmt{st}, st.Inner...) {
				if changes(u.Node, ch) {
					return &report.Location{File: head.Path(m.Up), Line: st.Line}
				}
			}
		}
	}
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
			for _, st := range SplitStatements(string(m.Up.Data)) {
				if re.MatchString(st.SQL) {
					return &report.Location{File: head.Path(m.Up), Line: st.Line}
				}
			}
		}
	}
	if len(news) > 0 {
		return &report.Location{File: head.Path(news[0].Up), Line: firstStatementLine(stmts[news[0].Version])}
	}
	return nil
}

// changes reports whether a statement makes the schema change ch.
func changes(n *pg.Node, ch Change) bool {
	switch {
	case n.GetAlterTableStmt() != nil:
		at := n.GetAlterTableStmt()
		if relName(at.Relation) != ch.Table {
			return false
		}
		for _, c := range at.Cmds {
			cmd := c.GetAlterTableCmd()
			col := cmd.GetName()
			if cd := cmd.GetDef().GetColumnDef(); cd != nil && col == "" {
				col = cd.Colname
			}
			if con := cmd.GetDef().GetConstraint(); con != nil {
				if ch.Column == "" && ch.Object != ch.Table && (con.Conname == ch.Object || con.Conname == "") {
					return true
				}
				// A constraint on the column (CHECK (c IS NOT NULL)):
				// where release N-1's writes start to break.
				if ch.Column != "" && names(con, ch.Column) {
					return true
				}
				continue
			}
			if ch.Column != "" && col == ch.Column {
				return true
			}
		}
	case n.GetDropStmt() != nil:
		d := n.GetDropStmt()
		if d.RemoveType != pg.ObjectType_OBJECT_TABLE || ch.Column != "" || ch.Object != ch.Table {
			return false
		}
		for _, o := range d.Objects {
			if l := o.GetList(); l != nil && len(l.Items) > 0 && l.Items[len(l.Items)-1].GetString_().GetSval() == ch.Table {
				return true
			}
		}
	}
	return false
}

// names reports whether a constraint names a column, in its expression or
// its key.
func names(con *pg.Constraint, col string) bool {
	found := false
	walkTree(con, func(m proto.Message) bool {
		switch x := m.(type) {
		case *pg.ColumnRef:
			if f := x.Fields; len(f) > 0 && f[len(f)-1].GetString_().GetSval() == col {
				found = true
			}
		case *pg.String:
			if x.Sval == col {
				found = true
			}
		}
		return !found
	})
	return found
}

type rename struct {
	object   string // "users.name to full_name"
	from, to string // "users.name", "users.full_name" (or table names)
	line     int
}

var renameRE = regexp.MustCompile(`(?i)^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?"?([\w.]+)"?\s+RENAME\s+(?:COLUMN\s+)?(?:"?(\w+)"?\s+)?TO\s+"?(\w+)"?`)

// renames finds the statements of a migration that rename a table or a
// column: from the parse tree, or (SQLite) the statement's text.
func renames(stmts []Stmt) []rename {
	var out []rename
	for _, st := range stmts {
		if rs := st.Node.GetRenameStmt(); rs != nil {
			table := relName(rs.Relation)
			switch rs.RenameType {
			case pg.ObjectType_OBJECT_TABLE:
				out = append(out, rename{object: table + " to " + rs.Newname, from: table, to: rs.Newname, line: st.Line})
			case pg.ObjectType_OBJECT_COLUMN:
				out = append(out, rename{object: table + "." + rs.Subname + " to " + rs.Newname, from: table + "." + rs.Subname, to: table + "." + rs.Newname, line: st.Line})
			}
			continue
		}
		if st.Node != nil {
			continue
		}
		for _, m := range renameRE.FindAllStringSubmatch(st.SQL, -1) {
			table := unqualify(m[1])
			r := rename{from: table, to: strings.ToLower(m[3]), line: st.Line}
			if m[2] != "" && !strings.EqualFold(m[2], "to") {
				r.from, r.to = table+"."+strings.ToLower(m[2]), table+"."+strings.ToLower(m[3])
			}
			r.object = r.from + " to " + m[3]
			out = append(out, r)
		}
	}
	return out
}

func unqualify(t string) string {
	t = strings.Trim(strings.ToLower(t), `"`)
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		return t[i+1:]
	}
	return t
}

// castHints finds the text columns the new migrations convert to another
// type (ALTER COLUMN … TYPE, or a cast of the column in a statement on its
// table), so that the seeder fills them with values of that shape.
func castHints(stmts map[uint][]Stmt) map[string]string {
	hints := map[string]string{}
	for _, ss := range stmts {
		for _, st := range ss {
			for _, u := range append([]Stmt{st}, st.Inner...) {
				table := ""
				if at := u.Node.GetAlterTableStmt(); at != nil {
					table = relName(at.Relation)
					for _, c := range at.Cmds {
						cmd := c.GetAlterTableCmd()
						if cmd.GetSubtype() == pg.AlterTableType_AT_AlterColumnType {
							if t := typeName(cmd.GetDef().GetColumnDef().GetTypeName()); t != "" {
								hints[table+"."+cmd.Name] = t
							}
						}
					}
				} else if up := u.Node.GetUpdateStmt(); up != nil {
					table = relName(up.Relation)
				}
				if table == "" {
					continue
				}
				walkTree(u.Node, func(m proto.Message) bool {
					tc, ok := m.(*pg.TypeCast)
					if !ok {
						return true
					}
					if f := tc.Arg.GetColumnRef().GetFields(); len(f) > 0 {
						if col := f[len(f)-1].GetString_().GetSval(); col != "" {
							if t := typeName(tc.TypeName); t != "" {
								hints[table+"."+col] = t
							}
						}
					}
					return true
				})
			}
		}
	}
	for k, t := range hints {
		if isTextType(t) || t == "varchar" || t == "bpchar" {
			delete(hints, k)
		}
	}
	return hints
}

// typeName is the name of a type as written (its last part: "jsonb",
// "int8"), lower case.
func typeName(tn *pg.TypeName) string {
	if tn == nil || len(tn.Names) == 0 {
		return ""
	}
	return strings.ToLower(tn.Names[len(tn.Names)-1].GetString_().GetSval())
}

// measureBudget measures the blocking of the new migrations whose cost
// grows with the size of a populated table, extrapolates it to the
// production sizes, and charges it to the error budget: budget =
// (1 − objective) × window × budgetRemaining. Migrations that take a lock
// blocking the application are also run behind a long transaction (the
// lock queue). What cannot be measured becomes a note: a measurement
// problem never hides the other findings.
func measureBudget(ctx context.Context, eng Engine, head *Set, news []*Migration, r *replayResult, stmts map[uint][]Stmt, hints map[string]string, opts Options, chk *report.Check, add func(report.Finding), ph *phases) {
	populated := func(t string) bool { _, ok := r.base.Tables[t]; return ok }
	budget := (1 - opts.SLO.Objective/100) * time.Duration(opts.SLO.Window).Seconds() * opts.SLO.BudgetRemaining
	allowed := opts.Config.BudgetShare * budget
	plan := measurePlan{sized: map[uint][]string{}, queued: map[uint][]string{}, stmts: stmts, traces: r.traces, dataFailed: map[uint]bool{},
		sizes: opts.Config.ProbeSizes, targets: opts.Config.Sizes, base: r.base, later: r.head, hints: hints, progress: opts.Progress, phases: ph,
		decided: func(pred float64) bool { return pred*2 < allowed || pred > 2*allowed }}
	if opts.Config.MeasureEverySize {
		plan.decided = nil
	}
	for _, df := range r.dataFailures {
		plan.dataFailed[df.version] = true
	}
	byFile := map[string]*Migration{}
	for _, m := range news {
		byFile[head.Path(m.Up)] = m
		if s := sizedTables(stmts[m.Version], r.traces[m.Version], populated); len(s) > 0 {
			plan.sized[m.Version] = s
		}
		if eng.Name() == "postgres" {
			if s := strongTables(stmts[m.Version], r.traces[m.Version], populated); len(s) > 0 {
				plan.queued[m.Version] = s
			}
		}
	}
	if len(plan.sized) == 0 && len(plan.queued) == 0 {
		chk.Notes = append(chk.Notes, "nothing to measure: no new migration scans, rewrites or changes the rows of a table that already holds data, or locks one against the application")
		return
	}
	all, notes, err := measureAll(ctx, eng, head, news, plan)
	for _, n := range notes {
		chk.Notes = append(chk.Notes, "measurement: "+n)
	}
	if err != nil {
		if ctx.Err() == nil {
			// Never a silent pass: the budget is unchecked, and says so.
			add(report.Finding{Rule: RuleBudget, Severity: report.SeverityWarning,
				Message:  fmt.Sprintf("the blocking time of the new migrations could not be measured, so the error budget is unchecked for this release: %v", err),
				Location: &report.Location{File: head.Path(news[0].Up), Line: firstStatementLine(stmts[news[0].Version])},
				Fix:      "fix what the measurement ran into (the notes say what), or set migrations.probeSizes: [] to skip the measurement knowingly"})
		}
		return
	}
	total, worst := 0.0, (*Measurement)(nil)
	for _, meas := range all {
		m := byFile[meas.File]
		if q := meas.Queue; q != nil && q.GaveUp == "" {
			if _, set := fileLockTimeout(stmts[m.Version]); !set {
				reportQueue(chk, add, meas.File, stmts[m.Version], meas)
			}
		}
		chk.Notes = append(chk.Notes, meas.note())
		if len(meas.Points) == 0 {
			continue
		}
		total += meas.PredictedS
		if worst == nil || meas.PredictedS > worst.PredictedS {
			worst = meas
		}
		if meas.TargetRows == 0 && !meas.Bounded {
			chk.Metrics["atLargestProbeSize"] = true
		}
	}
	chk.Metrics["measurements"] = all
	if worst == nil {
		return
	}
	chk.Metrics["blockedSeconds"] = round3(total)
	chk.Metrics["budgetSeconds"] = round3(budget)
	chk.Metrics["allowedSeconds"] = round3(allowed)
	chk.Metrics["budgetShareUsed"] = round3(total / allowed)
	if total <= allowed {
		return
	}
	var pts []string
	for _, p := range worst.Points {
		pts = append(pts, fmt.Sprintf("%d rows: %.0f ms", p.Rows, p.BlockedMs))
	}
	at := "at the largest size measured"
	if worst.TargetRows > 0 {
		at = fmt.Sprintf("extrapolated to %d rows (migrations.sizes)", worst.TargetRows)
	}
	// (A lock_timeout would not help: it bounds the wait for a lock, not
	// how long a statement holds one.)
	fix := "split the work into steps whose cost does not grow with the table: data changes in batches of a bounded number of rows, each batch in its own migration (or done by the application), CREATE INDEX CONCURRENTLY, constraints NOT VALID then VALIDATE, a new column filled in batches instead of a rewrite"
	if eng.Name() == "sqlite" {
		fix = "split the work into smaller migration files (each holds the database's write lock until it commits): a backfill in batches, one file per batch, or done by the application after the upgrade"
	}
	add(report.Finding{Rule: RuleBudget, Severity: report.SeverityError, Symbol: strings.Join(worst.Tables, ","),
		Message: fmt.Sprintf("the new migrations would block queries for %.1f s %s, %.0f%% of the remaining error budget (%.0f s of %.1f%% over %s); a release may use %.0f%% (%.1f s). Measured for %s: %s; locks %s",
			total, at, 100*total/budget, budget, opts.SLO.Objective, opts.SLO.Window, 100*opts.Config.BudgetShare, allowed,
			path.Base(worst.File), strings.Join(pts, ", "), strings.Join(worst.Locks, ", ")),
		Location: &report.Location{File: worst.File, Line: costlyLine(stmts[byFile[worst.File].Version], r.traces[byFile[worst.File].Version], populated)},
		Fix:      fix})
}

// note is one line about a measurement for people: the cost at each size,
// where it came from, and the extrapolation.
func (m *Measurement) note() string {
	var pts []string
	for _, p := range m.Points {
		pts = append(pts, fmt.Sprintf("%d rows %s", p.Rows, seconds(p.BlockedMs/1000)))
	}
	what := "probe waited"
	switch {
	case len(m.Points) > 0 && m.Points[0].LockHeldMs > 0:
		what = "lock held"
	case !m.rowLocks:
		what = "it blocks nothing: no lock that conflicts with reads or writes, no row changes"
	}
	s := fmt.Sprintf("%s on %s: ", path.Base(m.File), strings.Join(m.Tables, ", "))
	if len(pts) > 0 {
		s += fmt.Sprintf("%s (%s; locks %s", strings.Join(pts, ", "), what, orNone(m.Locks))
		if slices.ContainsFunc(m.Points, func(p Point) bool { return p.Rewrite }) {
			s += "; rewrites the table"
		}
		s += ")"
	} else if m.skipped != "" {
		s += fmt.Sprintf("not measured with rows: %s (locks %s)", m.skipped, orNone(m.Locks))
	} else {
		s += fmt.Sprintf("metadata only, not measured by size (locks %s)", orNone(m.Locks))
	}
	if m.Bounded {
		s += fmt.Sprintf("; it changed %d rows at %d (a batch), so its cost does not grow with the table", m.Points[len(m.Points)-1].ChangedRows, m.Points[len(m.Points)-1].Rows)
	} else if m.TargetRows > 0 && len(m.Points) > 0 {
		s += fmt.Sprintf(" → %s at %d rows", seconds(m.PredictedS), m.TargetRows)
		if m.Scaled {
			s += " (scaled from the largest size: the smaller sizes did not grow with the rows, noise on a busy machine)"
		}
	}
	if c := m.Check; c != nil {
		s += fmt.Sprintf("; from the smaller sizes %s was predicted at %d rows, %s measured (%+.0f%%)", seconds(c.PredictedMs/1000), c.Rows, seconds(c.MeasuredMs/1000), c.ErrorPct)
	}
	if q := m.Queue; q != nil {
		if q.GaveUp != "" {
			s += fmt.Sprintf("; behind a %.1f s %s it gave up (lock_timeout)", q.HeldMs/1000, q.HeldBy)
		} else {
			s += fmt.Sprintf("; behind a %.1f s %s the probe waited %s", q.HeldMs/1000, q.HeldBy, seconds(q.BlockedMs/1000))
			if q.TimeoutMs > 0 {
				s += fmt.Sprintf(" (the file's lock_timeout caps that wait at %s)", seconds(q.TimeoutMs/1000))
			}
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

// reportQueue reports the measured lock queue of a migration without a
// lock_timeout: on the finding that already says so, or on its own.
func reportQueue(chk *report.Check, add func(report.Finding), file string, stmts []Stmt, meas *Measurement) {
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
		for _, st := range stmts {
			if slices.ContainsFunc(allEffects(st), func(e effect) bool { return conflictsWithApp(e.mode) }) {
				line = st.Line
				break
			}
		}
	}
	if line == 0 {
		line = firstStatementLine(stmts)
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

// nextVersion is the version the changes go into: as the gates before
// decided it, or else (an application, whose version follows its changes)
// the base's next minor when there are new migrations, its next patch
// otherwise.
func nextVersion(opts Options, news int) *semver.Version {
	if opts.Next != nil || opts.BaseVersion == nil {
		return opts.Next
	}
	v := opts.BaseVersion.IncPatch()
	if news > 0 {
		v = opts.BaseVersion.IncMinor()
	}
	return &v
}

// applyIgnores marks the findings that migrations.ignore accepts, and
// reports entries that expired (next reached their version, or their date
// passed) or matched nothing.
func applyIgnores(chk *report.Check, opts Options, next *semver.Version) {
	for _, ig := range opts.Config.Ignore {
		until, _ := config.ParseUntil(ig.Until)
		expired := ig.Until != "" && until.Expired(next, opts.Now)
		if expired {
			chk.Findings = append(chk.Findings, report.Finding{Rule: RuleSuppressionExpired, Severity: report.SeverityError,
				Message:  fmt.Sprintf("the accepted %s in %s expired (until %s); its reason was: %s", ig.Rule, ig.File, ig.Until, ig.Reason),
				Location: &report.Location{File: opts.ConfigFile, Line: ig.Line},
				Fix:      "fix what it accepted, or extend until with a new reason"})
			continue
		}
		matched := false
		for i := range chk.Findings {
			f := &chk.Findings[i]
			if f.Rule == ig.Rule && f.Suppressed == "" && f.Location != nil && matchFile(ig.File, f.Location.File, opts) {
				f.Suppressed, matched = ig.Reason, true
			}
		}
		if !matched {
			chk.Notes = append(chk.Notes, fmt.Sprintf("migrations.ignore of %s in %s (%s:%d) matched nothing; remove it", ig.Rule, ig.File, opts.ConfigFile, ig.Line))
		}
	}
}

// matchFile reports whether a migrations.ignore file pattern names file (a
// path relative to the repository root): as a path relative to the
// project, to the root, or as a base name; globs allowed.
func matchFile(pattern, file string, opts Options) bool {
	proj := file
	if rel, err := filepath.Rel(mustRel(opts.Root, opts.Dir), file); err == nil && !strings.HasPrefix(rel, "..") {
		proj = filepath.ToSlash(rel)
	}
	for _, cand := range []string{file, proj, path.Base(file)} {
		if ok, _ := path.Match(pattern, cand); ok {
			return true
		}
	}
	return false
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
