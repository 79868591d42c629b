package migrations

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Schema is what a database's catalog says after a replay, in a form both
// engines fill in and one diff compares.
type Schema struct {
	Tables map[string]*Table
	// Indexes, Constraints and Views map a name to a normalised definition.
	Indexes     map[string]string
	Constraints map[string]Constraint
	Views       map[string]string
}

// Table is one table and its columns.
type Table struct {
	Name    string
	Columns map[string]*Column
	// Unique lists the column sets that must be distinct in every row:
	// the primary key and unique constraints and indexes (partial and
	// expression indexes included, by the columns they name).
	Unique [][]string
}

// Column is one column of a table.
type Column struct {
	Name    string
	Type    string // normalised, lower case
	NotNull bool
	Default string // empty: no default (a generated column's expression)
	// Generated is a column computed by the database (GENERATED ALWAYS
	// AS … STORED); Identity is "a" (ALWAYS) or "d" (BY DEFAULT) for an
	// identity column.
	Generated bool
	Identity  string
	// Base is the type a domain is based on; Enum lists an enum type's
	// labels in order.
	Base string
	Enum []string
}

// Constraint is a table constraint (check, unique, foreign key).
type Constraint struct {
	Table string
	Kind  string // "check", "unique", "foreign key", "primary key"
	Def   string
}

func newSchema() *Schema {
	return &Schema{Tables: map[string]*Table{}, Indexes: map[string]string{}, Constraints: map[string]Constraint{}, Views: map[string]string{}}
}

// Equal reports whether two schemas are the same, and if not, one difference.
func (s *Schema) Equal(o *Schema) (bool, string) {
	a, b := s.lines(), o.lines()
	ia, ib := 0, 0
	for ia < len(a) || ib < len(b) {
		switch {
		case ib >= len(b) || (ia < len(a) && a[ia] < b[ib]):
			return false, "only in the first: " + a[ia]
		case ia >= len(a) || b[ib] < a[ia]:
			return false, "only in the second: " + b[ib]
		}
		ia++
		ib++
	}
	return true, ""
}

// lines renders the schema as sorted lines, one per object.
func (s *Schema) lines() []string {
	var out []string
	for _, t := range s.Tables {
		out = append(out, "table "+t.Name)
		for _, c := range t.Columns {
			out = append(out, fmt.Sprintf("column %s.%s %s notnull=%v default=%q", t.Name, c.Name, c.Type, c.NotNull, c.Default))
		}
	}
	for n, d := range s.Indexes {
		out = append(out, "index "+n+" "+d)
	}
	for n, c := range s.Constraints {
		out = append(out, "constraint "+n+" "+c.Table+" "+c.Kind+" "+c.Def)
	}
	for n, d := range s.Views {
		out = append(out, "view "+n+" "+d)
	}
	sort.Strings(out)
	return out
}

// ChangeKind classifies a schema difference by what it means for release
// N-1 of the application, which keeps running during an upgrade.
type ChangeKind int

const (
	// Dropped: a table or column N-1 may still use.
	Dropped ChangeKind = iota
	// Incompatible: a change that breaks N-1's queries (a retype, NOT NULL
	// added, a NOT NULL column without default, a new constraint).
	Incompatible
)

// Change is one difference between the base and head schemas.
type Change struct {
	Kind ChangeKind
	// Warning: release N-1 keeps working unless its writes break the
	// change's rule (a new CHECK that the existing rows satisfy).
	Warning bool
	Object  string // "users" or "users.email"
	Table   string
	Column  string
	Msg     string
	Fix     string
}

// Diff compares the schema after the base migrations with the schema after
// the head migrations.
func Diff(base, head *Schema) []Change {
	var out []Change
	for _, tn := range slices.Sorted(maps.Keys(base.Tables)) {
		bt := base.Tables[tn]
		ht, ok := head.Tables[tn]
		if !ok {
			out = append(out, Change{Kind: Dropped, Object: tn, Table: tn,
				Msg: fmt.Sprintf("table %s dropped", tn),
				Fix: fmt.Sprintf("expand/contract: stop using %s in a release, list it in migrations.deprecated, and drop it in a later release", tn)})
			continue
		}
		for _, cn := range slices.Sorted(maps.Keys(bt.Columns)) {
			bc := bt.Columns[cn]
			hc, ok := ht.Columns[cn]
			obj := tn + "." + cn
			if !ok {
				out = append(out, Change{Kind: Dropped, Object: obj, Table: tn, Column: cn,
					Msg: fmt.Sprintf("column %s dropped", obj),
					Fix: fmt.Sprintf("expand/contract: stop reading and writing %s in a release, list it in migrations.deprecated, and drop it in a later release", obj)})
				continue
			}
			if bc.Type != hc.Type && !widens(bc.Type, hc.Type) {
				out = append(out, Change{Kind: Incompatible, Object: obj, Table: tn, Column: cn,
					Msg: fmt.Sprintf("column %s changes type from %s to %s: release N-1 reads and writes the old type", obj, bc.Type, hc.Type),
					Fix: fmt.Sprintf("expand/contract: add a new column of type %s, write both from the application, backfill, switch reads, then drop %s later", hc.Type, obj)})
			}
			if !bc.NotNull && hc.NotNull {
				out = append(out, Change{Kind: Incompatible, Object: obj, Table: tn, Column: cn,
					Msg: fmt.Sprintf("column %s becomes NOT NULL: inserts of release N-1 that leave it out fail", obj),
					Fix: fmt.Sprintf("first release the application always writing %s; in a later release add CHECK (%s IS NOT NULL) NOT VALID, VALIDATE it and SET NOT NULL, and accept this finding there with migrations.ignore (reason: release N-1 writes %s)", obj, cn, obj)})
			}
		}
		var added []string
		for c := range ht.Columns {
			if _, ok := bt.Columns[c]; !ok {
				added = append(added, c)
			}
		}
		sort.Strings(added)
		for _, cn := range added {
			hc := ht.Columns[cn]
			if hc.NotNull && hc.Default == "" {
				obj := tn + "." + cn
				out = append(out, Change{Kind: Incompatible, Object: obj, Table: tn, Column: cn,
					Msg: fmt.Sprintf("new column %s is NOT NULL without a default: inserts of release N-1 fail", obj),
					Fix: fmt.Sprintf("add %s nullable (or with a constant default) first; make it NOT NULL in a later release", obj)})
			}
		}
	}
	// New unique keys: unique indexes (CREATE UNIQUE INDEX [CONCURRENTLY],
	// partial ones included) and the constraints built on them or on their
	// own, each reported once, where it is first created.
	reported := map[string]bool{}
	for _, n := range slices.Sorted(maps.Keys(head.Indexes)) {
		def := head.Indexes[n]
		m := reUniqueIndex.FindStringSubmatch(def)
		if _, existed := base.Indexes[n]; existed || m == nil {
			continue
		}
		if _, tableExisted := base.Tables[m[1]]; !tableExisted {
			continue
		}
		if c, ok := head.Constraints[n]; ok && c.Kind == "primary key" {
			continue
		}
		reported[n] = true
		out = append(out, Change{Kind: Incompatible, Object: n, Table: m[1],
			Msg: fmt.Sprintf("new unique index %s on existing table %s: writes of release N-1 that duplicate a key fail (%s)", n, m[1], def),
			Fix: uniqueFix})
	}
	for _, n := range slices.Sorted(maps.Keys(head.Constraints)) {
		c := head.Constraints[n]
		if _, existed := base.Constraints[n]; existed || c.Kind == "primary key" || reported[n] {
			continue
		}
		if _, tableExisted := base.Tables[c.Table]; !tableExisted {
			continue
		}
		if c.Kind == "check" && !reNotNullCheck.MatchString(c.Def) {
			// The rows the migration met satisfy it (or it is NOT
			// VALID): only N-1's writes that violate it fail.
			out = append(out, Change{Kind: Incompatible, Warning: true, Object: n, Table: c.Table,
				Msg: fmt.Sprintf("new check constraint %s on existing table %s: writes of release N-1 that violate it will fail (%s)", n, c.Table, c.Def),
				Fix: "make sure release N-1 only writes rows that satisfy it, or release the application that does before adding the constraint"})
			continue
		}
		fix := "expand/contract: first release an application that only writes rows satisfying it; add the constraint in a later release (NOT VALID, then VALIDATE in a separate migration, so the check of existing rows does not block writes), and accept this finding there with migrations.ignore (reason: release N-1 writes only rows that satisfy it)"
		if c.Kind == "unique" || c.Kind == "exclusion" {
			fix = uniqueFix
		}
		out = append(out, Change{Kind: Incompatible, Object: n, Table: c.Table,
			Msg: fmt.Sprintf("new %s constraint %s on existing table %s: writes of release N-1 may violate it (%s)", c.Kind, n, c.Table, c.Def),
			Fix: fix})
	}
	return out
}

// uniqueFix is the expand/contract form of a new unique key.
const uniqueFix = "expand/contract: first release an application that never writes duplicates (and remove the existing ones); in a later release build the key with CREATE UNIQUE INDEX CONCURRENTLY in its own migration (then ADD CONSTRAINT … USING INDEX if you want a constraint), and accept this finding there with migrations.ignore (reason: release N-1 writes no duplicates)"

var reUniqueIndex = regexp.MustCompile(`(?i)^CREATE UNIQUE INDEX \S+ ON (?:ONLY )?(?:[\w"]+\.)?"?(\w+)"?`)

func normType(t string) string { return strings.ToLower(strings.TrimSpace(t)) }

var reParamType = regexp.MustCompile(`^([a-z ]+?)(?:\((\d+)(?:,(\d+))?\))?$`)

// widens reports whether a column's new type holds every value of the old
// one, so that release N-1 still reads and writes it: a wider integer, a
// longer or unlimited varchar, text for varchar, numeric with at least as
// many digits on both sides of the point.
func widens(from, to string) bool {
	f := reParamType.FindStringSubmatch(from)
	t := reParamType.FindStringSubmatch(to)
	if f == nil || t == nil {
		return false
	}
	num := func(s string) int {
		n, _ := strconv.Atoi(s)
		return n
	}
	ints := map[string]int{"smallint": 1, "integer": 2, "bigint": 3}
	switch {
	case ints[f[1]] > 0 && ints[t[1]] > 0:
		return ints[t[1]] >= ints[f[1]]
	case f[1] == "real" && t[1] == "double precision":
		return true
	case f[1] == "character varying" && (t[1] == "text" || t[1] == "character varying" && (t[2] == "" || f[2] != "" && num(t[2]) >= num(f[2]))):
		return true
	case f[1] == "numeric" && t[1] == "numeric":
		if t[2] == "" {
			return true
		}
		if f[2] == "" {
			return false
		}
		fp, fs, tp, ts := num(f[2]), num(f[3]), num(t[2]), num(t[3])
		return ts >= fs && tp-ts >= fp-fs
	}
	return false
}
