package migrations

import (
	"regexp"
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// effect is what a statement does to one table, read from its parse tree:
// the table lock PostgreSQL takes for it (named as pg_locks names modes),
// and whether its cost grows with the table's size.
type effect struct {
	table string
	mode  string
	// sized: the statement reads or writes every row (a rewrite, a
	// validating scan, an index build, a data change), so its time grows
	// with the table; a metadata change does not.
	sized bool
	// dml: it changes rows (UPDATE, DELETE, INSERT … SELECT).
	dml bool
}

const (
	accessExclusive      = "AccessExclusiveLock"
	exclusive            = "ExclusiveLock"
	shareRowExclusive    = "ShareRowExclusiveLock"
	share                = "ShareLock"
	shareUpdateExclusive = "ShareUpdateExclusiveLock"
	rowExclusive         = "RowExclusiveLock"
)

// lockModes are PostgreSQL's table lock modes by LOCK TABLE's numbers.
var lockModes = map[int32]string{1: "AccessShareLock", 2: "RowShareLock", 3: rowExclusive, 4: shareUpdateExclusive, 5: share, 6: shareRowExclusive, 7: exclusive, 8: accessExclusive}

// effects lists the tables a statement acts on and how.
func effects(n *pg.Node) []effect {
	switch {
	case n.GetAlterTableStmt() != nil:
		at := n.GetAlterTableStmt()
		if at.Objtype != pg.ObjectType_OBJECT_TABLE {
			return nil
		}
		e := effect{table: relName(at.Relation), mode: shareUpdateExclusive}
		stronger := func(m string) {
			if lockRank(m) > lockRank(e.mode) {
				e.mode = m
			}
		}
		var out []effect
		for _, c := range at.Cmds {
			cmd := c.GetAlterTableCmd()
			if cmd == nil {
				continue
			}
			switch cmd.Subtype {
			case pg.AlterTableType_AT_ValidateConstraint:
				e.sized = true
			case pg.AlterTableType_AT_SetStatistics, pg.AlterTableType_AT_SetRelOptions, pg.AlterTableType_AT_ResetRelOptions,
				pg.AlterTableType_AT_ClusterOn, pg.AlterTableType_AT_DropCluster, pg.AlterTableType_AT_AttachPartition:
			case pg.AlterTableType_AT_DetachPartition:
				if !cmd.GetDef().GetPartitionCmd().GetConcurrent() {
					stronger(accessExclusive)
				}
			case pg.AlterTableType_AT_EnableTrig, pg.AlterTableType_AT_DisableTrig, pg.AlterTableType_AT_EnableAlwaysTrig,
				pg.AlterTableType_AT_EnableReplicaTrig, pg.AlterTableType_AT_EnableTrigAll, pg.AlterTableType_AT_DisableTrigAll,
				pg.AlterTableType_AT_EnableTrigUser, pg.AlterTableType_AT_DisableTrigUser:
				stronger(shareRowExclusive)
			case pg.AlterTableType_AT_AddConstraint:
				con := cmd.GetDef().GetConstraint()
				if con.GetContype() == pg.ConstrType_CONSTR_FOREIGN {
					stronger(shareRowExclusive)
					if t := relName(con.GetPktable()); t != "" {
						out = append(out, effect{table: t, mode: shareRowExclusive, sized: !con.GetSkipValidation()})
					}
				} else {
					stronger(accessExclusive)
				}
				switch con.GetContype() {
				case pg.ConstrType_CONSTR_FOREIGN, pg.ConstrType_CONSTR_CHECK:
					e.sized = e.sized || !con.GetSkipValidation()
				case pg.ConstrType_CONSTR_UNIQUE, pg.ConstrType_CONSTR_PRIMARY, pg.ConstrType_CONSTR_EXCLUSION:
					e.sized = e.sized || con.GetIndexname() == ""
				}
			case pg.AlterTableType_AT_SetNotNull, pg.AlterTableType_AT_AlterColumnType, pg.AlterTableType_AT_SetTableSpace,
				pg.AlterTableType_AT_SetLogged, pg.AlterTableType_AT_SetUnLogged, pg.AlterTableType_AT_SetAccessMethod:
				stronger(accessExclusive)
				e.sized = true
			case pg.AlterTableType_AT_AddColumn:
				stronger(accessExclusive)
				e.sized = e.sized || addsRewritingColumn(cmd.GetDef().GetColumnDef())
			default:
				stronger(accessExclusive)
			}
		}
		return append([]effect{e}, out...)
	case n.GetIndexStmt() != nil:
		ix := n.GetIndexStmt()
		mode := share
		if ix.Concurrent {
			mode = shareUpdateExclusive
		}
		return []effect{{table: relName(ix.Relation), mode: mode, sized: true}}
	case n.GetCreateTrigStmt() != nil:
		return []effect{{table: relName(n.GetCreateTrigStmt().Relation), mode: shareRowExclusive}}
	case n.GetRenameStmt() != nil:
		r := n.GetRenameStmt()
		switch r.RenameType {
		case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_COLUMN, pg.ObjectType_OBJECT_TABCONSTRAINT:
			return []effect{{table: relName(r.Relation), mode: accessExclusive}}
		}
	case n.GetDropStmt() != nil:
		d := n.GetDropStmt()
		if d.RemoveType != pg.ObjectType_OBJECT_TABLE {
			return nil
		}
		var out []effect
		for _, o := range d.Objects {
			if l := o.GetList(); l != nil && len(l.Items) > 0 {
				out = append(out, effect{table: l.Items[len(l.Items)-1].GetString_().GetSval(), mode: accessExclusive})
			}
		}
		return out
	case n.GetTruncateStmt() != nil:
		var out []effect
		for _, r := range n.GetTruncateStmt().Relations {
			out = append(out, effect{table: relName(r.GetRangeVar()), mode: accessExclusive})
		}
		return out
	case n.GetLockStmt() != nil:
		l := n.GetLockStmt()
		var out []effect
		for _, r := range l.Relations {
			out = append(out, effect{table: relName(r.GetRangeVar()), mode: lockModes[l.Mode]})
		}
		return out
	case n.GetClusterStmt() != nil:
		return []effect{{table: relName(n.GetClusterStmt().Relation), mode: accessExclusive, sized: true}}
	case n.GetVacuumStmt() != nil:
		v := n.GetVacuumStmt()
		full := false
		for _, o := range v.Options {
			if d := o.GetDefElem(); d != nil && d.Defname == "full" {
				full = true
			}
		}
		mode := shareUpdateExclusive
		if full {
			mode = accessExclusive
		}
		var out []effect
		for _, r := range v.Rels {
			out = append(out, effect{table: relName(r.GetVacuumRelation().GetRelation()), mode: mode, sized: true})
		}
		return out
	case n.GetReindexStmt() != nil:
		r := n.GetReindexStmt()
		if r.Kind == pg.ReindexObjectType_REINDEX_OBJECT_TABLE {
			return []effect{{table: relName(r.Relation), mode: share, sized: true}}
		}
	case n.GetUpdateStmt() != nil:
		return []effect{{table: relName(n.GetUpdateStmt().Relation), mode: rowExclusive, sized: true, dml: true}}
	case n.GetDeleteStmt() != nil:
		return []effect{{table: relName(n.GetDeleteStmt().Relation), mode: rowExclusive, sized: true, dml: true}}
	case n.GetInsertStmt() != nil:
		ins := n.GetInsertStmt()
		// INSERT … VALUES adds the rows it lists (data a project ships);
		// INSERT … SELECT copies as many rows as it reads.
		sel := ins.SelectStmt.GetSelectStmt()
		fromRows := sel != nil && len(sel.ValuesLists) == 0
		return []effect{{table: relName(ins.Relation), mode: rowExclusive, sized: fromRows, dml: fromRows}}
	}
	return nil
}

var (
	reDML         = regexp.MustCompile(`(?is)^(UPDATE|DELETE\s+FROM|INSERT\s+(?:OR\s+\w+\s+)?INTO)\s+(?:ONLY\s+)?"?([\w.]+)"?`)
	reCreateIndex = regexp.MustCompile(`(?is)^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?:"?\w+"?\s+)?ON\s+(?:ONLY\s+)?"?([\w.]+)"?`)
	reAlterTable  = regexp.MustCompile(`(?is)^(ALTER|DROP)\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?"?([\w.]+)"?`)
)

// textEffects reads the effects of a statement from its text, for files
// without parse trees (SQLite): data changes and index builds grow with
// the table; ALTER and DROP TABLE lock it.
func textEffects(sql string) []effect {
	if m := reDML.FindStringSubmatch(sql); m != nil {
		sized := !strings.HasPrefix(strings.ToUpper(m[1]), "INSERT") || regexp.MustCompile(`(?i)\bSELECT\b`).MatchString(sql)
		return []effect{{table: unqualify(m[2]), mode: rowExclusive, sized: sized, dml: sized}}
	}
	if m := reCreateIndex.FindStringSubmatch(sql); m != nil {
		mode := share
		if m[1] != "" {
			mode = shareUpdateExclusive
		}
		return []effect{{table: unqualify(m[2]), mode: mode, sized: true}}
	}
	if m := reAlterTable.FindStringSubmatch(sql); m != nil {
		return []effect{{table: unqualify(m[2]), mode: accessExclusive}}
	}
	return nil
}

// addsRewritingColumn reports whether ADD COLUMN with this definition
// makes PostgreSQL write every row: a stored generated column, an
// identity, or a volatile default (a constant default is stored in the
// catalog since PostgreSQL 11).
func addsRewritingColumn(cd *pg.ColumnDef) bool {
	if cd == nil {
		return false
	}
	for _, c := range cd.Constraints {
		con := c.GetConstraint()
		switch con.GetContype() {
		case pg.ConstrType_CONSTR_GENERATED, pg.ConstrType_CONSTR_IDENTITY:
			return true
		case pg.ConstrType_CONSTR_DEFAULT:
			if volatile(con.RawExpr) {
				return true
			}
		}
	}
	if tn := cd.TypeName; tn != nil && len(tn.Names) > 0 {
		t := strings.ToLower(tn.Names[len(tn.Names)-1].GetString_().GetSval())
		if strings.HasSuffix(t, "serial") || t == "serial4" || t == "serial8" || t == "serial2" {
			return true
		}
	}
	return false
}

// volatileFuncs are functions whose value differs per row.
var volatileFuncs = map[string]bool{"random": true, "clock_timestamp": true, "gen_random_uuid": true, "uuid_generate_v1": true,
	"uuid_generate_v4": true, "uuidv7": true, "timeofday": true, "nextval": true, "uuid_generate_v1mc": true}

// volatile reports whether an expression calls a function whose value
// differs per row.
func volatile(n *pg.Node) bool {
	found := false
	walkTree(n, func(m proto.Message) bool {
		if fc, ok := m.(*pg.FuncCall); ok && len(fc.Funcname) > 0 && volatileFuncs[strings.ToLower(fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval())] {
			found = true
		}
		return !found
	})
	return found
}

// lockRank orders PostgreSQL's table lock modes by strength.
func lockRank(mode string) int {
	switch mode {
	case "AccessShareLock":
		return 1
	case "RowShareLock":
		return 2
	case rowExclusive:
		return 3
	case shareUpdateExclusive:
		return 4
	case share:
		return 5
	case shareRowExclusive:
		return 6
	case exclusive:
		return 7
	case accessExclusive:
		return 8
	}
	return 0
}

// conflictsWithApp reports whether a PostgreSQL table lock mode conflicts
// with the locks of plain reads (ACCESS SHARE) or writes (ROW EXCLUSIVE).
func conflictsWithApp(mode string) bool {
	return lockRank(mode) >= lockRank(share)
}

// modeName is a lock mode as PostgreSQL's documentation writes it.
func modeName(mode string) string {
	m := strings.TrimSuffix(mode, "Lock")
	var b strings.Builder
	for i, r := range m {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// allEffects lists the effects of a statement and of the statements that
// run inside it.
func allEffects(st Stmt) []effect {
	if st.Node == nil {
		return textEffects(st.SQL)
	}
	out := effects(st.Node)
	for _, in := range st.Inner {
		out = append(out, effects(in.Node)...)
	}
	return out
}

// sizedTables returns the populated tables whose size a migration's cost
// depends on: what its statements rewrite (as traced), scan, index or
// change row by row.
func sizedTables(stmts []Stmt, tr *quietRun, populated func(string) bool) []string {
	seen := map[string]bool{}
	var out []string
	add := func(t string) {
		if t != "" && populated(t) && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, st := range stmts {
		for _, e := range allEffects(st) {
			if !e.sized {
				continue
			}
			// A type change or new column whose rewrite the trace ruled
			// out is metadata only (varchar(50) → varchar(100)).
			if tr != nil && tr.OK && !e.dml && onlyRewrites(st) {
				if sl := tr.statement(st.Line); sl != nil && !slices.Contains(sl.Rewrites, e.table) {
					continue
				}
			}
			add(e.table)
		}
		if sl := tr.statement(st.Line); sl != nil {
			for _, t := range sl.Rewrites {
				add(t)
			}
		}
	}
	slices.Sort(out)
	return out
}

// onlyRewrites reports whether a statement's cost grows with the table
// only through a rewrite (a type change, a new column, SET TABLESPACE):
// the trace then tells whether it happens.
func onlyRewrites(st Stmt) bool {
	at := st.Node.GetAlterTableStmt()
	if at == nil || len(st.Inner) > 0 {
		return false
	}
	for _, c := range at.Cmds {
		switch c.GetAlterTableCmd().GetSubtype() {
		case pg.AlterTableType_AT_AlterColumnType, pg.AlterTableType_AT_AddColumn, pg.AlterTableType_AT_SetTableSpace,
			pg.AlterTableType_AT_SetLogged, pg.AlterTableType_AT_SetUnLogged, pg.AlterTableType_AT_SetAccessMethod:
		default:
			return false
		}
	}
	return true
}
