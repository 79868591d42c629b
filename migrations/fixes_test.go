package migrations

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relcheck/relcheck/internal/gittest"
	"github.com/relcheck/relcheck/internal/gitx"
	"github.com/relcheck/relcheck/internal/yamlfile"
	"github.com/relcheck/relcheck/report"
)

// sharedEngine lets many checks replay on one server: Close leaves it
// running.
type sharedEngine struct{ Engine }

func (sharedEngine) Close() error { return nil }

var (
	sharedPG     *Postgres
	sharedPGErr  error
	sharedPGOnce sync.Once
)

// sharedPostgres is one throwaway cluster for the tests of this package
// that run many checks, stopped by TestMain.
func sharedPostgres(t *testing.T) Engine {
	t.Helper()
	if _, err := FindPostgresBin(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("in CI PostgreSQL must be installed: %v", err)
		}
		t.Skip(err)
	}
	sharedPGOnce.Do(func() { sharedPG, sharedPGErr = NewPostgres(context.Background(), "") })
	if sharedPGErr != nil {
		t.Fatal(sharedPGErr)
	}
	return sharedEngine{sharedPG}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedPG != nil {
		sharedPG.Close()
	}
	os.Exit(code)
}

// checkRepo commits base (path → content), tags it v1.0.0, writes head
// over it (an empty content deletes the file), and runs the gate.
func checkRepo(t *testing.T, eng Engine, base, head map[string]string) *report.Check {
	t.Helper()
	dir := t.TempDir()
	gittest.Init(t, dir)
	write := func(files map[string]string) {
		for p, data := range files {
			full := filepath.Join(dir, p)
			if data == "" {
				os.Remove(full)
				continue
			}
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(base)
	gittest.Git(t, dir, "add", "-A")
	gittest.Git(t, dir, "commit", "-q", "-m", "base")
	gittest.Git(t, dir, "tag", "v1.0.0")
	write(head)
	ctx := context.Background()
	repo, err := gitx.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	// The sections of relcheck.yaml this gate reads.
	type file struct {
		Migrations Config `yaml:"migrations"`
		SLO        SLO    `yaml:"slo"`
	}
	load := func(data string) *file {
		cfg := &file{DefaultConfig(), DefaultSLO()}
		if _, err := yamlfile.Decode("relcheck.yaml", []byte(data), cfg); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Migrations.Validate(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := load(head["relcheck.yaml"])
	if _, ok := head["relcheck.yaml"]; !ok {
		cfg = load(base["relcheck.yaml"])
	}
	baseCfg := load(base["relcheck.yaml"])
	chk, err := Check(ctx, Options{Root: repo.Root, Dir: repo.Root, Base: "v1.0.0", Config: cfg.Migrations, SLO: cfg.SLO,
		BaseConfig: &baseCfg.Migrations, ConfigFile: "relcheck.yaml", SeedRows: 3, Now: time.Now(),
		NewEngine: func(context.Context, string) (Engine, error) { return eng, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return chk
}

// TestFixesClearFindings follows the fix of each rule's finding, as
// written, and checks that the finding is gone.
func TestFixesClearFindings(t *testing.T) {
	eng := sharedPostgres(t)
	const cfg = "migrations:\n  probeSizes: []\n"
	const upOnly = "migrations:\n  probeSizes: []\n  reversible: false\n"
	users := map[string]string{
		"relcheck.yaml":                 cfg,
		"migrations/001_users.up.sql":   "CREATE TABLE users (id bigserial PRIMARY KEY, email text, name text, org_id bigint, age int);\nCREATE TABLE orgs (id bigserial PRIMARY KEY);",
		"migrations/001_users.down.sql": "DROP TABLE users;\nDROP TABLE orgs;",
	}
	upOnlyUsers := map[string]string{
		"relcheck.yaml":               upOnly,
		"migrations/001_users.up.sql": users["migrations/001_users.up.sql"],
	}
	type files = map[string]string
	tests := []struct {
		name, rule string
		want       string // in the finding's fix
		base       files
		bad, fixed files
		// fixedBase, if set, is the base of the fixed case (a fix that
		// takes a release first).
		fixedBase files
	}{
		{name: "released migration edited", rule: RuleModified, want: "restore 001_users.up.sql as released and put the change in a new migration above 1",
			base:  users,
			bad:   files{"migrations/001_users.up.sql": users["migrations/001_users.up.sql"] + "\nCREATE INDEX users_email ON users (email);"},
			fixed: files{"migrations/002_index.up.sql": "CREATE INDEX CONCURRENTLY users_email ON users (email);", "migrations/002_index.down.sql": "DROP INDEX users_email;"}},
		{name: "numbered below the base", rule: RuleOrder, want: "renumber it above 2",
			base:  files{"relcheck.yaml": upOnly, "migrations/002_users.up.sql": users["migrations/001_users.up.sql"]},
			bad:   files{"migrations/001_tags.up.sql": "CREATE TABLE tags (id int);"},
			fixed: files{"migrations/003_tags.up.sql": "CREATE TABLE tags (id int);"}},
		{name: "NOT NULL column on rows", rule: RuleFailed, want: "add columns nullable or with a default",
			base:  upOnlyUsers,
			bad:   files{"migrations/002_plan.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN plan text NOT NULL;"},
			fixed: files{"migrations/002_plan.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';"}},
		{name: "no down file", rule: RuleIrreversible, want: "add 002_2.1.0_plan.down.sql that undoes it",
			base:  users,
			bad:   files{"migrations/002_2.1.0_plan.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN plan text;"},
			fixed: files{"migrations/002_2.1.0_plan.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN plan text;", "migrations/002_2.1.0_plan.down.sql": "ALTER TABLE users DROP COLUMN plan;"}},
		{name: "down that does not undo", rule: RuleIrreversible, want: "make each down file undo exactly what its up file does",
			base:  users,
			bad:   files{"migrations/002_plan.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN plan text;", "migrations/002_plan.down.sql": "SELECT 1;"},
			fixed: files{"migrations/002_plan.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN plan text;", "migrations/002_plan.down.sql": "ALTER TABLE users DROP COLUMN plan;"}},
		{name: "drop of a column in use", rule: RuleDestructive, want: "list it in migrations.deprecated, and drop it in a later release",
			base:      upOnlyUsers,
			bad:       files{"migrations/002_drop.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users DROP COLUMN name;"},
			fixedBase: files{"relcheck.yaml": upOnly + "  deprecated: [users.name]\n", "migrations/001_users.up.sql": users["migrations/001_users.up.sql"]},
			fixed:     files{"migrations/002_drop.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users DROP COLUMN name;"}},
		{name: "rename", rule: RuleBackwardIncompatible, want: "expand/contract: add the new name",
			base:  upOnlyUsers,
			bad:   files{"migrations/002_rename.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users RENAME COLUMN name TO full_name;"},
			fixed: files{"migrations/002_rename.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN full_name text;"}},
		{name: "new NOT NULL", rule: RuleBackwardIncompatible, want: "accept this finding there with migrations.ignore",
			base: upOnlyUsers,
			bad:  files{"migrations/002_email.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;", "migrations/003_email.up.sql": "ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;", "migrations/004_email.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN email SET NOT NULL;"},
			fixed: files{"relcheck.yaml": upOnly + "  ignore:\n    - {rule: migrations/backward-incompatible, file: \"migrations/00[24]_email.up.sql\", reason: 1.0.0 writes users.email on every insert}\n",
				"migrations/002_email.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;", "migrations/003_email.up.sql": "ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;", "migrations/004_email.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN email SET NOT NULL;"}},
		{name: "CREATE INDEX", rule: RuleLocking, want: "use CREATE INDEX CONCURRENTLY, alone in its own migration file",
			base:  upOnlyUsers,
			bad:   files{"migrations/002_index.up.sql": "SET lock_timeout = '2s';\nCREATE INDEX users_email ON users (email);"},
			fixed: files{"migrations/002_index.up.sql": "CREATE INDEX CONCURRENTLY users_email ON users (email);"}},
		{name: "CONCURRENTLY not alone", rule: RuleLocking, want: "move it into a migration file of its own",
			base:  upOnlyUsers,
			bad:   files{"migrations/002_index.up.sql": "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY users_email ON users (email);"},
			fixed: files{"migrations/002_index.up.sql": "CREATE INDEX CONCURRENTLY users_email ON users (email);"}},
		{name: "foreign key validated at once", rule: RuleLocking, want: "add it NOT VALID in this migration, and VALIDATE CONSTRAINT in a separate migration",
			base:  upOnlyUsers,
			bad:   files{"migrations/002_fk.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT users_org FOREIGN KEY (org_id) REFERENCES orgs (id);"},
			fixed: files{"migrations/002_fk.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT users_org FOREIGN KEY (org_id) REFERENCES orgs (id) NOT VALID;", "migrations/003_fk.up.sql": "ALTER TABLE users VALIDATE CONSTRAINT users_org;"}},
		{name: "validated in the same file", rule: RuleLocking, want: "move VALIDATE CONSTRAINT into a separate, later migration",
			base:  upOnlyUsers,
			bad:   files{"migrations/002_age.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT users_age CHECK (age >= 0) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT users_age;"},
			fixed: files{"migrations/002_age.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT users_age CHECK (age >= 0) NOT VALID;", "migrations/003_age.up.sql": "ALTER TABLE users VALIDATE CONSTRAINT users_age;"}},
		{name: "unique constraint", rule: RuleLocking, want: "CREATE UNIQUE INDEX CONCURRENTLY in its own migration, then ADD CONSTRAINT … USING INDEX",
			base:  upOnlyUsers,
			bad:   files{"migrations/002_unique.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);"},
			fixed: files{"migrations/002_unique.up.sql": "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);", "migrations/003_unique.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;"}},
		{name: "SET NOT NULL", rule: RuleLocking, want: "first ADD CONSTRAINT … CHECK (email IS NOT NULL) NOT VALID, VALIDATE it in a later migration; then SET NOT NULL",
			base:  upOnlyUsers,
			bad:   files{"migrations/002_email.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN email SET NOT NULL;"},
			fixed: files{"migrations/002_email.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;", "migrations/003_email.up.sql": "ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;", "migrations/004_email.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN email SET NOT NULL;"}},
		{name: "backfill after DDL", rule: RuleLocking, want: "move the backfill into a migration of its own",
			base:  upOnlyUsers,
			bad:   files{"migrations/002_plan.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN plan text;\nUPDATE users SET plan = 'free';"},
			fixed: files{"migrations/002_plan.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN plan text;", "migrations/003_plan.up.sql": "UPDATE users SET plan = 'free' WHERE id <= 10000;"}},
		{name: "type change", rule: RuleLocking, want: "add a new column of the new type, backfill it in batches",
			base:  upOnlyUsers,
			bad:   files{"migrations/002_age.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN age TYPE bigint;"},
			fixed: files{"migrations/002_age.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN age_big bigint;", "migrations/003_age.up.sql": "UPDATE users SET age_big = age WHERE id <= 10000;"}},
		{name: "volatile default", rule: RuleLocking, want: "add the column without a default (or with a constant one), set the default in a second statement",
			base:  upOnlyUsers,
			bad:   files{"migrations/002_token.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();"},
			fixed: files{"migrations/002_token.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN token uuid;\nALTER TABLE users ALTER COLUMN token SET DEFAULT gen_random_uuid();"}},
		{name: "stored generated column", rule: RuleLocking, want: "add a plain nullable column, fill it in batches in later migrations, and keep it current with a trigger",
			base: upOnlyUsers,
			bad:  files{"migrations/002_lower.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN email_lower text GENERATED ALWAYS AS (lower(email)) STORED;"},
			fixed: files{"migrations/002_lower.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN email_lower text;\n" +
				"CREATE FUNCTION users_email_lower() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.email_lower := lower(NEW.email); RETURN NEW; END $$;\n" +
				"CREATE TRIGGER users_email_lower BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION users_email_lower();"}},
		{name: "no lock_timeout", rule: RuleLocking, want: "start the file with SET lock_timeout = '2s'",
			base:  upOnlyUsers,
			bad:   files{"migrations/002_plan.up.sql": "ALTER TABLE users ADD COLUMN plan text;"},
			fixed: files{"migrations/002_plan.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN plan text;"}},
		{name: "row by row", rule: RuleLocking, want: "change the rows with one set-based statement per batch",
			base:  upOnlyUsers,
			bad:   files{"migrations/002_lower.up.sql": "DO $$\nDECLARE r record;\nBEGIN\n  FOR r IN SELECT id FROM users LOOP\n    UPDATE users SET email = lower(email) WHERE id = r.id;\n  END LOOP;\nEND $$;"},
			fixed: files{"migrations/002_lower.up.sql": "UPDATE users SET email = lower(email) WHERE id BETWEEN 1 AND 10000;"}},
		{name: "over the error budget", rule: RuleBudget, want: "data changes in batches of a bounded number of rows",
			base: map[string]string{"relcheck.yaml": "migrations:\n  reversible: false\n  probeSizes: [1000, 20000]\n  sizes: {users: 200000000}\nslo: {budgetRemaining: 0.01}\n",
				"migrations/001_users.up.sql": users["migrations/001_users.up.sql"]},
			bad:   files{"migrations/002_names.up.sql": "UPDATE users SET name = email;"},
			fixed: files{"migrations/002_names.up.sql": "UPDATE users SET name = email WHERE id <= 1000;", "migrations/003_names.up.sql": "UPDATE users SET name = email WHERE id > 1000 AND id <= 2000;"}},
		{name: "expired acceptance", rule: RuleSuppressionExpired, want: "extend until with a new reason",
			base:  upOnlyUsers,
			bad:   files{"relcheck.yaml": upOnly + "  ignore:\n    - {rule: migrations/locking, file: 002_plan.up.sql, reason: tiny table, until: 2020-01-01}\n", "migrations/002_plan.up.sql": "ALTER TABLE users ADD COLUMN plan text;"},
			fixed: files{"relcheck.yaml": upOnly + "  ignore:\n    - {rule: migrations/locking, file: 002_plan.up.sql, reason: tiny table, until: 2999-01-01}\n", "migrations/002_plan.up.sql": "ALTER TABLE users ADD COLUMN plan text;"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chk := checkRepo(t, eng, tt.base, tt.bad)
			var fix string
			for _, f := range chk.Findings {
				if f.Rule == tt.rule && f.Suppressed == "" && strings.Contains(f.Fix, tt.want) {
					fix = f.Fix
				}
			}
			if fix == "" {
				t.Fatalf("no %s finding whose fix says %q: %s", tt.rule, tt.want, describe(chk))
			}
			base := tt.base
			if tt.fixedBase != nil {
				base = tt.fixedBase
			}
			fixed := map[string]string{}
			for p := range tt.bad {
				if _, inBase := base[p]; !inBase {
					fixed[p] = "" // the bad case's new files go
				}
			}
			for p, d := range tt.fixed {
				fixed[p] = d
			}
			if _, ok := tt.bad["migrations/001_users.up.sql"]; ok {
				fixed["migrations/001_users.up.sql"] = base["migrations/001_users.up.sql"]
			}
			chk = checkRepo(t, eng, base, fixed)
			for _, f := range chk.Findings {
				if f.Rule == tt.rule && f.Suppressed == "" {
					t.Errorf("after the fix %q: %s", fix, describe(chk))
					break
				}
			}
			if chk.Status == report.StatusError {
				t.Errorf("the fixed case errored: %s", chk.Summary)
			}
		})
	}
}

func describe(chk *report.Check) string {
	var b strings.Builder
	b.WriteString(string(chk.Status) + ": " + chk.Summary)
	for _, f := range chk.Findings {
		b.WriteString("\n  " + string(f.Severity) + " " + f.Rule + ": " + f.Message)
		if f.Suppressed != "" {
			b.WriteString(" (accepted: " + f.Suppressed + ")")
		}
	}
	return b.String()
}
