package migrations

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// seeder fills tables with generated rows that fit their column types, so
// that migrations meet populated tables. Foreign keys stay valid: a nullable
// reference is left NULL, and a NOT NULL one points at rows of the
// referenced table, which is seeded first.
type seeder struct {
	dialect string
	schema  *Schema
	rows    map[string]int64 // rows seeded so far, per table
	busy    map[string]bool  // tables being seeded (reference cycles)
	// later is the schema after all migrations, if known: its foreign
	// keys are kept valid too, so that a migration adding or validating
	// one meets valid data, as it would in production.
	later *Schema
}

func newSeeder(dialect string, schema *Schema) *seeder {
	return &seeder{dialect: dialect, schema: schema, rows: map[string]int64{}, busy: map[string]bool{}}
}

// seedAll inserts n rows into every table of db; a table whose constraints
// refuse the generated rows stays empty.
func seedAll(ctx context.Context, db DB, dialect string, n int64) error {
	schema, err := db.Schema(ctx)
	if err != nil {
		return err
	}
	s := newSeeder(dialect, schema)
	for _, t := range slices.Sorted(maps.Keys(schema.Tables)) {
		if err := s.seed(ctx, db.SQL(), t, n); err != nil && ctx.Err() != nil {
			return err
		}
	}
	return nil
}

// seed inserts rows into table t (after the tables it must reference)
// until it has n of them.
func (s *seeder) seed(ctx context.Context, db *sql.DB, t string, n int64) error {
	tb := s.schema.Tables[t]
	if tb == nil || s.rows[t] >= n || s.busy[t] {
		return nil
	}
	s.busy[t] = true
	defer delete(s.busy, t)
	for col, ref := range s.references(t) {
		if tb.Columns[col] != nil && tb.Columns[col].NotNull && ref.table != t {
			if err := s.seed(ctx, db, ref.table, n); err != nil {
				return err
			}
		}
	}
	if _, err := db.ExecContext(ctx, s.insertSQL(tb, s.rows[t]+1, n)); err != nil {
		return fmt.Errorf("seeding %s: %w", t, err)
	}
	s.rows[t] = n
	return nil
}

type reference struct{ table, column string }

var reForeignKey = regexp.MustCompile(`(?i)^FOREIGN KEY \("?(\w+)"?\) REFERENCES (?:\w+\.)?"?(\w+)"?\s*\("?(\w+)"?\)`)

// references maps t's single-column foreign keys to what they reference.
func (s *seeder) references(t string) map[string]reference {
	out := map[string]reference{}
	for _, sch := range []*Schema{s.later, s.schema} {
		if sch == nil {
			continue
		}
		for _, c := range sch.Constraints {
			if c.Table != t || c.Kind != "foreign key" {
				continue
			}
			if m := reForeignKey.FindStringSubmatch(c.Def); m != nil {
				out[m[1]] = reference{table: m[2], column: m[3]}
			}
		}
	}
	return out
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

// insertSQL inserts rows from..to into t. Columns with defaults (serials,
// timestamps) keep them; nullable references stay NULL; a NOT NULL reference
// to a seeded table cycles through the rows seeded there.
func (s *seeder) insertSQL(t *Table, from, to int64) string {
	refs := s.references(t.Name)
	var cols, exprs []string
	for _, n := range slices.Sorted(maps.Keys(t.Columns)) {
		c := t.Columns[n]
		if c.Default != "" {
			continue
		}
		g := "g"
		if ref, ok := refs[n]; ok {
			if !c.NotNull {
				continue
			}
			if rows := s.rows[ref.table]; rows > 0 && ref.table != t.Name {
				g = fmt.Sprintf("((g - 1) %% %d + 1)", rows)
			}
			if rc := s.schema.Tables[ref.table]; rc != nil && rc.Columns[ref.column] != nil {
				cols, exprs = append(cols, `"`+n+`"`), append(exprs, genExpr(s.dialect, rc.Columns[ref.column].Type, g))
				continue
			}
		}
		cols, exprs = append(cols, `"`+n+`"`), append(exprs, genExpr(s.dialect, c.Type, g))
	}
	if s.dialect == "sqlite" {
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
		if n != key {
			set = n
			break
		}
	}
	return fmt.Sprintf(`UPDATE %q SET %q = %q WHERE %q = %s`, t.Name, set, set, key, genExpr(s.dialect, keyType, fmt.Sprint(k)))
}

// genExpr is an SQL expression, in the given dialect, for a column of type
// t from the row number g (an SQL expression).
func genExpr(dialect, t, g string) string {
	t = strings.ToLower(t)
	lite := dialect == "sqlite"
	pick := func(pg, sqlite string) string {
		if lite {
			return strings.ReplaceAll(sqlite, "$g", g)
		}
		return strings.ReplaceAll(pg, "$g", g)
	}
	switch {
	case strings.Contains(t, "int") || strings.Contains(t, "serial"):
		return g
	case strings.Contains(t, "bool"):
		return pick("($g % 2 = 0)", "($g % 2)")
	case strings.Contains(t, "numeric") || strings.Contains(t, "real") || strings.Contains(t, "double") || strings.Contains(t, "decimal") || strings.Contains(t, "float"):
		return pick("($g)::numeric / 7", "($g) / 7.0")
	case strings.Contains(t, "timestamp") || strings.Contains(t, "date"):
		return pick("now() - make_interval(secs => $g)", "datetime(1700000000 - ($g), 'unixepoch')")
	case strings.Contains(t, "uuid"):
		return pick("md5(($g)::text)::uuid", "printf('00000000-0000-4000-8000-%012d', $g)")
	case strings.Contains(t, "json"):
		return "'{}'"
	case strings.Contains(t, "bytea"):
		return "decode(md5((" + g + ")::text), 'hex')"
	case strings.Contains(t, "blob"):
		return "randomblob(16)"
	}
	return "'row ' || (" + g + ")"
}
