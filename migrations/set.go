// Package migrations is relcheck's schema-migration gate: it loads the
// golang-migrate file sets of the base release and the working tree, checks
// what can be told from the files (released migrations edited, ordering,
// missing downs), replays them on a real throwaway database (SQLite
// in-process, or PostgreSQL), and compares the schemas so that release N-1
// of the application keeps working while operators upgrade.
//
// Where things are:
//
//	check.go    Options, Check, the rule ids and the findings
//	set.go      golang-migrate file sets; parse.go the PostgreSQL parser
//	lint.go     what the statements do (effects.go: lock modes, rewrites)
//	replay.go   up, down, up on a scratch database (engine.go, postgres.go,
//	            sqlite.go, open.go)
//	schema.go   schema snapshots and the N-1 compatibility diff
//	seed.go     seeding tables to the probe sizes
//	measure.go  blocking time per size (trace.go: one quiet run), budget
//	config.go   the migrations and slo sections of relcheck.yaml
package migrations

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"testing/fstest"

	"github.com/golang-migrate/migrate/v4/source"
)

// File is one migration file.
type File struct {
	Name string // base name, e.g. "003_add_email.up.sql"
	Data []byte
}

// Migration is one version of a set: its up and (optional) down file.
type Migration struct {
	Version uint
	Name    string // the identifier, "add_email"
	Up      *File
	Down    *File
}

// Set is a golang-migrate file set.
type Set struct {
	// Dir is the directory the set was read from, relative to the
	// repository root, for locations.
	Dir        string
	Migrations map[uint]*Migration
	// Problems are files that belong to the set but break its rules:
	// duplicate versions, an up and a down with different names.
	Problems []Problem
}

// Problem is a rule broken by the files themselves.
type Problem struct {
	File string
	Msg  string
}

// NameError is a file in the migrations directory whose name golang-migrate
// cannot parse.
type NameError struct{ File string }

func (e *NameError) Error() string {
	return fmt.Sprintf("%s: not a golang-migrate file name: use NNN_name.up.sql and NNN_name.down.sql", e.File)
}

// Versions returns the versions of the set in ascending order.
func (s *Set) Versions() []uint {
	return slices.Sorted(maps.Keys(s.Migrations))
}

// Load reads the migration files in dir of fsys. A missing directory is an
// empty set. Files that are not .sql are ignored; .sql files whose names do
// not parse are a *NameError.
func Load(fsys fs.FS, dir string) (*Set, error) {
	s := &Set{Dir: dir, Migrations: map[uint]*Migration{}}
	entries, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m, err := source.DefaultParse(e.Name())
		if err != nil {
			if strings.HasSuffix(e.Name(), ".sql") {
				return nil, &NameError{File: path.Join(dir, e.Name())}
			}
			continue // README.md and the like: golang-migrate skips them too
		}
		if sm := source.Regex.FindStringSubmatch(e.Name()); sm[4] != "sql" {
			// golang-migrate reads every file whose name parses, whatever
			// its extension: an editor's backup 0071_x.up.sql~ is a
			// migration to it (or a duplicate of 0071_x.up.sql).
			s.Problems = append(s.Problems, Problem{File: path.Join(dir, e.Name()),
				Msg: fmt.Sprintf("golang-migrate reads %s as the %s migration of version %d (its name matches NNN_name.%s.*), although it is not a .sql file: delete it or move it out of %s", e.Name(), m.Direction, m.Version, m.Direction, dir)})
			continue
		}
		data, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		f := &File{Name: e.Name(), Data: data}
		mig := s.Migrations[m.Version]
		if mig == nil {
			mig = &Migration{Version: m.Version, Name: m.Identifier}
			s.Migrations[m.Version] = mig
		} else if mig.Name != m.Identifier {
			s.Problems = append(s.Problems, Problem{File: path.Join(dir, e.Name()),
				Msg: fmt.Sprintf("version %d is used by %q and %q: an up and its down must share one name, and versions must be unique", m.Version, mig.Name, m.Identifier)})
			continue
		}
		switch m.Direction {
		case source.Up:
			if mig.Up != nil {
				s.Problems = append(s.Problems, Problem{File: path.Join(dir, e.Name()), Msg: fmt.Sprintf("version %d has two up files", m.Version)})
				continue
			}
			mig.Up = f
		case source.Down:
			if mig.Down != nil {
				s.Problems = append(s.Problems, Problem{File: path.Join(dir, e.Name()), Msg: fmt.Sprintf("version %d has two down files", m.Version)})
				continue
			}
			mig.Down = f
		}
	}
	for _, m := range s.Migrations {
		if m.Up == nil {
			s.Problems = append(s.Problems, Problem{File: path.Join(dir, m.Down.Name), Msg: fmt.Sprintf("version %d has a down file but no up file", m.Version)})
		}
	}
	return s, nil
}

// FS returns the set as a file system in golang-migrate's layout, holding
// only the migrations up to and including version max (all with max 0).
func (s *Set) FS(max uint) fs.FS {
	m := fstest.MapFS{}
	for v, mig := range s.Migrations {
		if max != 0 && v > max {
			continue
		}
		for _, f := range []*File{mig.Up, mig.Down} {
			if f != nil {
				m[f.Name] = &fstest.MapFile{Data: f.Data, Mode: 0o644}
			}
		}
	}
	return m
}

// Path returns the repository-relative path of a file of the set.
func (s *Set) Path(f *File) string { return path.Join(s.Dir, f.Name) }
