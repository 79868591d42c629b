package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// seeder fills tables with generated rows that satisfy their constraints,
// so that migrations meet populated tables as they would in production:
// every primary key and unique key (multi-column, partial and expression
// indexes included) gets distinct values, also in columns that have a
// default; foreign keys point at rows of the referenced table, which is
// seeded first; CHECK constraints that list the allowed values get those
// values; text that a migration casts (to jsonb, an integer, a uuid) holds
// values of that shape. What the catalog does not tell is learnt from the
// database's refusals: a column falls back to its default, or NULL, and a
// table whose rows are still refused is left empty, and said so.
type seeder struct {
	dialect string
	schema  *Schema
	// later is the schema after all migrations, if known: its foreign
	// keys are kept valid too, so that a migration adding or validating
	// one meets valid data, as it would in production.
	later *Schema
	// hints maps "table.column" to the type a migration casts it to.
	hints map[string]string
	// base is the schema at the base release, if known: a column the new
	// migrations added to a table that already held rows is what
	// production has there, NULL or its default.
	base  *Schema
	rows  map[string]int64 // rows seeded so far, per table
	busy  map[string]bool  // tables being seeded (reference cycles)
	plans map[string]*tablePlan
}

func newSeeder(dialect string, schema *Schema) *seeder {
	return &seeder{dialect: dialect, schema: schema, rows: map[string]int64{}, busy: map[string]bool{}, plans: map[string]*tablePlan{}}
}

// seedAll inserts n rows into every table of db. It returns, for each table
// that could not be filled, why; an error only when ctx ended.
func seedAll(ctx context.Context, db DB, schema *Schema, n int64, hints map[string]string) ([]string, error) {
	l, ok := db.(loadDB)
	if !ok {
		return nil, nil
	}
	s := newSeeder(l.dialect(), schema)
	s.hints = hints
	var problems []string
	for _, t := range slices.Sorted(maps.Keys(schema.Tables)) {
		if err := s.seed(ctx, db.SQL(), t, n); err != nil {
			if ctx.Err() != nil {
				return problems, ctx.Err()
			}
			problems = append(problems, err.Error())
		}
	}
	return problems, nil
}

// choice is how a column gets its values.
type choice int

const (
	genValue   choice = iota // generated from the row number
	refValue                 // a referenced row's key
	literal                  // the values a CHECK constraint lists
	useDefault               // left to the column's default
	null                     // NULL
	omitted                  // never written (generated, identity)
)

// tablePlan is how a table's rows are generated.
type tablePlan struct {
	table   *Table
	choices map[string]choice
	refs    []fkRef
	// noTriggers seeds with the table's triggers off (they refused the
	// generated rows).
	noTriggers bool
	// tried: the plan has inserted rows.
	tried bool
}

// fkRef is a foreign key: columns of this table that reference columns
// of another.
type fkRef struct {
	name    string
	cols    []string
	table   string
	refCols []string
}

var (
	reForeignKey = regexp.MustCompile(`(?i)^FOREIGN KEY \(([^)]*)\) REFERENCES (?:[\w"]+\.)?"?(\w+)"?\s*\(([^)]*)\)`)
	reStringLit  = regexp.MustCompile(`'((?:[^']|'')*)'`)
)

func splitNames(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		out = append(out, strings.Trim(strings.TrimSpace(n), `"`))
	}
	return out
}

// references returns t's foreign keys, in the schema now and after the
// migrations (for columns that exist now).
func (s *seeder) references(t string) []fkRef {
	var out []fkRef
	seen := map[string]bool{}
	tb := s.schema.Tables[t]
	for _, sch := range []*Schema{s.schema, s.later} {
		if sch == nil {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(sch.Constraints)) {
			c := sch.Constraints[name]
			if c.Table != t || c.Kind != "foreign key" || seen[name] {
				continue
			}
			m := reForeignKey.FindStringSubmatch(c.Def)
			if m == nil || s.schema.Tables[m[2]] == nil {
				continue
			}
			ref := fkRef{name: name, cols: splitNames(m[1]), table: m[2], refCols: splitNames(m[3])}
			if len(ref.cols) != len(ref.refCols) || slices.ContainsFunc(ref.cols, func(c string) bool { return tb == nil || tb.Columns[c] == nil }) ||
				slices.ContainsFunc(ref.refCols, func(c string) bool { return s.schema.Tables[ref.table].Columns[c] == nil && c != "rowid" }) {
				continue
			}
			seen[name] = true
			out = append(out, ref)
		}
	}
	return out
}

// checkLiterals returns, per column, the values a CHECK constraint of t
// allows when it lists them (status IN ('open', 'closed')).
func (s *seeder) checkLiterals(t string) map[string][]string {
	out := map[string][]string{}
	tb := s.schema.Tables[t]
	for _, name := range slices.Sorted(maps.Keys(s.schema.Constraints)) {
		c := s.schema.Constraints[name]
		if c.Table != t || c.Kind != "check" {
			continue
		}
		cols := columnsIn(tb, c.Def)
		up := strings.ToUpper(c.Def)
		if len(cols) != 1 || !(strings.Contains(up, "= ANY") || strings.Contains(up, " IN ")) {
			continue
		}
		var vals []string
		for _, m := range reStringLit.FindAllStringSubmatch(c.Def, -1) {
			vals = append(vals, "'"+m[1]+"'")
		}
		if len(vals) > 0 {
			out[cols[0]] = vals
		}
	}
	return out
}

// columnsIn returns the columns of t named in an SQL text (a constraint
// or index definition), outside string literals.
func columnsIn(t *Table, def string) []string {
	if t == nil {
		return nil
	}
	text := reStringLit.ReplaceAllString(def, "''")
	var out []string
	for _, c := range slices.Sorted(maps.Keys(t.Columns)) {
		if regexp.MustCompile(`(?i)(^|[^\w])"?` + regexp.QuoteMeta(c) + `"?([^\w]|$)`).MatchString(text) {
			out = append(out, c)
		}
	}
	return out
}

// plan returns the table's generation plan, made on first use.
func (s *seeder) plan(t string) *tablePlan {
	if p := s.plans[t]; p != nil {
		return p
	}
	tb := s.schema.Tables[t]
	p := &tablePlan{table: tb, choices: map[string]choice{}}
	unique := map[string]bool{}
	for _, k := range tb.Unique {
		for _, c := range k {
			unique[c] = true
		}
	}
	lits := s.checkLiterals(t)
	for _, ref := range s.references(t) {
		if ref.table == t {
			continue // a self-reference: nullable, or the table is left out
		}
		p.refs = append(p.refs, ref)
	}
	refCol := map[string]bool{}
	for _, r := range p.refs {
		for _, c := range r.cols {
			refCol[c] = true
		}
	}
	added := func(c string) bool {
		if s.base == nil || s.base.Tables[t] == nil {
			return false
		}
		_, had := s.base.Tables[t].Columns[c]
		return !had
	}
	for _, n := range slices.Sorted(maps.Keys(tb.Columns)) {
		c := tb.Columns[n]
		switch {
		case c.Generated || c.Identity == "a" || (c.Identity == "d"):
			p.choices[n] = omitted
		case added(n) && c.Default != "":
			p.choices[n] = useDefault
		case added(n) && !c.NotNull:
			p.choices[n] = null
		case isSequenceDefault(c.Default):
			p.choices[n] = useDefault
		case refCol[n] && c.NotNull:
			p.choices[n] = refValue
		case refCol[n]:
			p.choices[n] = null
		case unique[n]:
			p.choices[n] = genValue
		case lits[n] != nil:
			p.choices[n] = literal
		case c.Default != "":
			p.choices[n] = useDefault
		default:
			p.choices[n] = genValue
		}
	}
	s.plans[t] = p
	return p
}

func isSequenceDefault(d string) bool {
	d = strings.ToLower(d)
	return strings.HasPrefix(d, "nextval(") || strings.Contains(d, "autoincrement")
}

// seed inserts rows into table t (after the tables it must reference)
// until it has n of them.
func (s *seeder) seed(ctx context.Context, db *sql.DB, t string, n int64) error {
	tb := s.schema.Tables[t]
	if tb == nil || s.rows[t] >= n || s.busy[t] {
		return nil
	}
	if _, counted := s.rows[t]; !counted {
		// Rows already there (the migrations' own data): generated rows
		// number on after them.
		var have int64
		if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM %q", t)).Scan(&have); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		if s.rows[t] = have; have >= n {
			return nil
		}
	}
	s.busy[t] = true
	defer delete(s.busy, t)
	p := s.plan(t)
	for _, ref := range p.refs {
		if p.choices[ref.cols[0]] != refValue {
			continue
		}
		// A key of this table made only of references needs as many
		// referenced rows (references cycle through them together);
		// otherwise rows share them, and a key with a generated column
		// stays distinct.
		want := min(n, 1000)
		if slices.ContainsFunc(tb.Unique, func(k []string) bool {
			return slices.ContainsFunc(ref.cols, func(c string) bool { return slices.Contains(k, c) }) &&
				!slices.ContainsFunc(k, func(c string) bool { return !refCol(p, c) })
		}) {
			want = n
		}
		if err := s.seed(ctx, db, ref.table, want); err != nil {
			return err
		}
	}
	for attempts := 0; s.rows[t] < n; {
		from, to := s.rows[t]+1, n
		if attempts == 0 && to > from && !p.tried {
			to = from // one row first: a refusal costs little, and says why
		}
		q, ok := s.insertSQL(ctx, db, t, from, to)
		if !ok {
			return fmt.Errorf("%s: no rows can be generated for it (a NOT NULL reference to a table without rows, or to itself)", t)
		}
		err := s.exec(ctx, db, p, q)
		if err == nil {
			s.rows[t], p.tried = to, true
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempts++; attempts > 8 || !s.adjust(p, err) {
			return fmt.Errorf("%s: the generated rows are refused: %v", t, firstLine(err))
		}
	}
	return nil
}

// refCol reports whether column c takes its values from a reference.
func refCol(p *tablePlan, c string) bool {
	return p.choices[c] == refValue
}

func firstLine(err error) string {
	if err == nil {
		return "unknown reason"
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// exec runs an insert, with the table's triggers off if the plan says so
// (and the database lets this session do that).
func (s *seeder) exec(ctx context.Context, db *sql.DB, p *tablePlan, q string) error {
	if !p.noTriggers || s.dialect != "postgres" {
		_, err := db.ExecContext(ctx, q)
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET session_replication_role = replica"); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "RESET session_replication_role")
	_, err = conn.ExecContext(ctx, q)
	return err
}

// adjust changes the plan after the database refused its rows with err,
// and reports whether there is anything left to try.
func (s *seeder) adjust(p *tablePlan, err error) bool {
	tb := p.table
	var cols []string
	kind := ""
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23514":
			kind = "check"
			if c, ok := s.schema.Constraints[pe.ConstraintName]; ok {
				cols = columnsIn(tb, c.Def)
			} else if pe.DataTypeName != "" {
				// A domain's check: the columns of that type.
				for _, n := range slices.Sorted(maps.Keys(tb.Columns)) {
					if tb.Columns[n].Type == pe.DataTypeName {
						cols = append(cols, n)
					}
				}
			}
		case "23505":
			kind = "unique"
			cols = columnsIn(tb, s.schema.Indexes[pe.ConstraintName])
		case "23502":
			kind, cols = "notnull", []string{pe.ColumnName}
		case "23503":
			kind = "fk"
			if c, ok := s.schema.Constraints[pe.ConstraintName]; ok {
				if m := reForeignKey.FindStringSubmatch(c.Def); m != nil {
					cols = splitNames(m[1])
				}
			}
		case "P0001", "P0002", "P0003", "P0004":
			kind = "trigger"
		default:
			if pe.Where != "" && strings.Contains(pe.Where, "PL/pgSQL") {
				kind = "trigger"
			}
		}
	} else {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "CHECK constraint failed"):
			kind = "check"
			_, after, _ := strings.Cut(msg, "CHECK constraint failed: ")
			cols = columnsIn(tb, after)
		case strings.Contains(msg, "UNIQUE constraint failed"):
			kind = "unique"
			_, after, _ := strings.Cut(msg, "UNIQUE constraint failed: ")
			for _, tc := range strings.Split(after, ",") {
				_, c, _ := strings.Cut(strings.TrimSpace(tc), ".")
				cols = append(cols, strings.Fields(c + " ")[0])
			}
		case strings.Contains(msg, "NOT NULL constraint failed"):
			kind = "notnull"
			_, after, _ := strings.Cut(msg, "NOT NULL constraint failed: ")
			_, c, _ := strings.Cut(strings.TrimSpace(after), ".")
			cols = []string{strings.Fields(c + " ")[0]}
		}
	}
	switch kind {
	case "trigger":
		if p.noTriggers {
			return false
		}
		p.noTriggers = true
		return true
	case "unique", "notnull":
		changed := false
		for _, c := range cols {
			if ch, ok := p.choices[c]; ok && ch != genValue && ch != refValue && ch != omitted {
				p.choices[c], changed = genValue, true
			}
		}
		return changed
	case "check", "fk":
		// The next way to fill the first column that has one left:
		// generated → listed values → default → NULL.
		for _, c := range cols {
			col := tb.Columns[c]
			if col == nil {
				continue
			}
			lits := s.checkLiterals(tb.Name)[c]
			for _, next := range []choice{literal, useDefault, null} {
				if next <= p.choices[c] || (next == literal && lits == nil) || (next == useDefault && col.Default == "") || (next == null && col.NotNull) {
					continue
				}
				if p.choices[c] == refValue && next != null {
					continue
				}
				p.choices[c] = next
				return true
			}
		}
	}
	return false
}

// insertSQL inserts rows from..to into t, or reports that it cannot: a
// NOT NULL reference to a table that has no rows.
func (s *seeder) insertSQL(ctx context.Context, db *sql.DB, t string, from, to int64) (string, bool) {
	p := s.plan(t)
	tb := p.table
	lite := s.dialect == "sqlite"
	var cols, exprs, ctes, joins []string
	refOf := map[string]string{} // column → expression
	for i, ref := range p.refs {
		if p.choices[ref.cols[0]] != refValue {
			continue
		}
		rows := s.rows[ref.table]
		if rows == 0 {
			var n int64
			if db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM %q", ref.table)).Scan(&n) != nil || n == 0 {
				return "", false
			}
			rows = n
		}
		alias := fmt.Sprintf("r%d", i+1)
		var sel []string
		for j, rc := range ref.refCols {
			sel = append(sel, fmt.Sprintf("%q AS c%d", rc, j))
			refOf[ref.cols[j]] = fmt.Sprintf("%s.c%d", alias, j)
		}
		if from == to {
			// One row (the probe's inserts): the first referenced row,
			// without numbering the whole table each time.
			joins = append(joins, fmt.Sprintf("CROSS JOIN (SELECT %s FROM %q LIMIT 1) %s", strings.Join(sel, ", "), ref.table, alias))
			continue
		}
		ctes = append(ctes, fmt.Sprintf("%s AS (SELECT %s, row_number() OVER () AS rn FROM %q)", alias, strings.Join(sel, ", "), ref.table))
		joins = append(joins, fmt.Sprintf("JOIN %s ON %s.rn = (g - 1) %% %d + 1", alias, alias, rows))
	}
	lits := s.checkLiterals(t)
	for _, n := range slices.Sorted(maps.Keys(tb.Columns)) {
		c := tb.Columns[n]
		var e string
		switch p.choices[n] {
		case omitted, useDefault:
			continue
		case null:
			e = "NULL"
		case refValue:
			if e = refOf[n]; e == "" {
				return "", false
			}
		case literal:
			e = pickLiteral(lite, lits[n], "g")
		default:
			e = s.valueExpr(t, c, "g")
		}
		cols, exprs = append(cols, `"`+n+`"`), append(exprs, e)
	}
	src := fmt.Sprintf("generate_series(%d, %d) g", from, to)
	if lite {
		ctes = append([]string{fmt.Sprintf("s(g) AS (SELECT %d UNION ALL SELECT g + 1 FROM s WHERE g < %d)", from, to)}, ctes...)
		src = "s"
	}
	with := ""
	if len(ctes) > 0 {
		with = "WITH "
		if lite {
			with = "WITH RECURSIVE "
		}
		with += strings.Join(ctes, ", ") + " "
	}
	if len(cols) == 0 {
		if lite {
			return fmt.Sprintf(`%sINSERT INTO %q DEFAULT VALUES`, with, t), true // one row
		}
		return fmt.Sprintf(`INSERT INTO %q SELECT FROM %s`, t, src), true
	}
	return fmt.Sprintf(`%sINSERT INTO %q (%s) SELECT %s FROM %s %s`, with, t, strings.Join(cols, ", "), strings.Join(exprs, ", "), src, strings.Join(joins, " ")), true
}

// pickLiteral cycles through vals by the row number g.
func pickLiteral(lite bool, vals []string, g string) string {
	if len(vals) == 1 {
		return vals[0]
	}
	if lite {
		var b strings.Builder
		b.WriteString("CASE ((" + g + ") - 1) % " + fmt.Sprint(len(vals)))
		for i, v := range vals {
			fmt.Fprintf(&b, " WHEN %d THEN %s", i, v)
		}
		return b.String() + " END"
	}
	return fmt.Sprintf("(ARRAY[%s])[((%s) - 1) %% %d + 1]", strings.Join(vals, ", "), g, len(vals))
}

// valueExpr is the value of column c of table t in row g.
func (s *seeder) valueExpr(t string, c *Column, g string) string {
	typ := c.Type
	if c.Base != "" {
		typ = c.Base
	}
	if len(c.Enum) > 0 {
		var vals []string
		for _, l := range c.Enum {
			vals = append(vals, "'"+strings.ReplaceAll(l, "'", "''")+"'")
		}
		return pickLiteral(false, vals, g) + "::" + quoteType(c.Type)
	}
	if hint := s.hints[t+"."+c.Name]; hint != "" && isTextType(typ) && s.dialect == "postgres" {
		return fmt.Sprintf("(%s)::text", genExpr(s.dialect, hint, g))
	}
	return genExpr(s.dialect, typ, g)
}

func quoteType(t string) string {
	if regexp.MustCompile(`^[a-z_][a-z0-9_]*$`).MatchString(t) {
		return t
	}
	return `"` + strings.ReplaceAll(t, `"`, `""`) + `"`
}

func isTextType(t string) bool {
	t = strings.ToLower(t)
	return t == "text" || strings.HasPrefix(t, "character varying") || strings.HasPrefix(t, "varchar") || t == "citext"
}

// updateSQL updates row k of t in place (its first non-key column set to
// itself): what an application's writes to existing rows do. Empty when t
// has no single-column key to find row k by.
func (s *seeder) updateSQL(t *Table, k int64) string {
	key, keyType := s.primaryKey(t.Name), ""
	if key != "" {
		keyType = t.Columns[key].Type
	}
	if s.dialect == "sqlite" {
		key, keyType = "rowid", "integer"
	}
	if key == "" {
		return ""
	}
	set := key
	for _, n := range slices.Sorted(maps.Keys(t.Columns)) {
		if n != key && !t.Columns[n].Generated {
			set = n
			break
		}
	}
	return fmt.Sprintf(`UPDATE %q SET %q = %q WHERE %q = %s`, t.Name, set, set, key, genExpr(s.dialect, keyType, fmt.Sprint(k)))
}

// primaryKey returns t's single-column primary key, or "".
func (s *seeder) primaryKey(t string) string {
	for _, c := range s.schema.Constraints {
		if c.Table == t && c.Kind == "primary key" {
			if m := regexp.MustCompile(`^PRIMARY KEY \("?(\w+)"?\)$`).FindStringSubmatch(c.Def); m != nil {
				return m[1]
			}
		}
	}
	return ""
}

var reTypmod = regexp.MustCompile(`\((\d+)(?:\s*,\s*(\d+))?\)`)

// genExpr is an SQL expression, in the given dialect, for a column of type
// t from the row number g (an SQL expression).
func genExpr(dialect, t, g string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	lite := dialect == "sqlite"
	pick := func(pg, sqlite string) string {
		if lite {
			return strings.ReplaceAll(sqlite, "$g", g)
		}
		return strings.ReplaceAll(pg, "$g", g)
	}
	mod := reTypmod.FindStringSubmatch(t)
	switch {
	case strings.HasSuffix(t, "[]"):
		return "'{}'"
	case t == "smallint" || t == "int2":
		return pick("(($g) % 32000)", "(($g) % 32000)")
	case strings.Contains(t, "int") && !strings.Contains(t, "interval") && !strings.Contains(t, "point") || strings.Contains(t, "serial"):
		return g
	case strings.Contains(t, "bool"):
		return pick("($g % 2 = 0)", "($g % 2)")
	case strings.HasPrefix(t, "numeric") || strings.HasPrefix(t, "decimal"):
		if mod != nil && !lite {
			scale := 0
			fmt.Sscan(mod[2], &scale)
			var prec int
			fmt.Sscan(mod[1], &prec)
			if digits := prec - scale; digits < 18 {
				return fmt.Sprintf("((%s) %% %s)::numeric", g, "1"+strings.Repeat("0", max(1, digits)))
			}
		}
		return pick("($g)::numeric / 7", "($g) / 7.0")
	case strings.Contains(t, "real") || strings.Contains(t, "double") || strings.Contains(t, "float"):
		return pick("($g)::float8 / 7", "($g) / 7.0")
	case strings.Contains(t, "timestamp") || t == "date":
		return pick("now() - make_interval(secs => $g)", "datetime(1700000000 - ($g), 'unixepoch')")
	case strings.HasPrefix(t, "time"):
		return pick("'00:00'::time + make_interval(secs => ($g) % 86400)", "time(($g) % 86400, 'unixepoch')")
	case strings.HasPrefix(t, "interval"):
		return pick("make_interval(secs => $g)", "($g)")
	case strings.Contains(t, "uuid"):
		return pick("md5(($g)::text)::uuid", "printf('00000000-0000-4000-8000-%012d', $g)")
	case strings.Contains(t, "json"):
		return pick(`json_build_object('n', $g)::text::`+t, `json_object('n', $g)`)
	case strings.Contains(t, "bytea"):
		return "decode(md5((" + g + ")::text), 'hex')"
	case strings.Contains(t, "blob"):
		return "randomblob(16)"
	case t == "inet" || t == "cidr":
		return pick("'10.0.0.0'::inet + ($g)", "'10.0.0.' || ($g)")
	case t == "tsvector":
		return pick("to_tsvector('simple', 'row' || ($g))", "'row' || ($g)")
	case t == "money":
		return pick("($g)::numeric::money", "($g)")
	case strings.HasPrefix(t, "character") || strings.HasPrefix(t, "varchar") || strings.HasPrefix(t, "char"):
		if mod != nil {
			var n int
			fmt.Sscan(mod[1], &n)
			if n < 12 {
				return pick(fmt.Sprintf("right(($g)::text, %d)", n), fmt.Sprintf("substr(($g), -%d)", n))
			}
		}
	}
	// Letters and digits only: what most checks on text allow.
	return "'row' || (" + g + ")"
}
