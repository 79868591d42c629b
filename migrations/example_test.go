package migrations_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/relcheck/relcheck/migrations"
)

// git runs git in dir, with a fixed identity.
func git(dir string, args ...string) {
	cmd := exec.Command("git", append([]string{"-c", "user.name=ex", "-c", "user.email=ex@example.com", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// The migrations gate replays the migrations the working tree adds since a
// release on a scratch database and judges them: here, on SQLite, a new
// migration drops a column that was never declared deprecated, so
// instances of the release still running would break.
func ExampleCheck() {
	dir, err := os.MkdirTemp("", "relcheck-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	write := func(name, sql string) {
		p := filepath.Join(dir, "migrations", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(sql), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	write("001_users.up.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);\n")
	write("001_users.down.sql", "DROP TABLE users;\n")
	git(dir, "init", "-q")
	git(dir, "add", "-A")
	git(dir, "commit", "-qm", "v1.0.0")
	git(dir, "tag", "v1.0.0")
	write("002_drop_email.up.sql", "ALTER TABLE users DROP COLUMN email;\n")
	write("002_drop_email.down.sql", "ALTER TABLE users ADD COLUMN email TEXT;\n")

	cfg := migrations.DefaultConfig()
	cfg.Dialect = "sqlite"
	chk, err := migrations.Check(context.Background(), migrations.Options{
		Root: dir, Dir: dir, Base: "v1.0.0",
		Config: cfg, SLO: migrations.DefaultSLO(), SeedRows: 3,
		NewEngine: func(ctx context.Context, dialect string) (migrations.Engine, error) {
			return migrations.OpenEngine(ctx, dialect, "")
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(chk.Status)
	for _, f := range chk.Findings {
		if f.Rule == migrations.RuleDestructive {
			fmt.Printf("%s %s at %s:%d\n", f.Severity, f.Rule, f.Location.File, f.Location.Line)
		}
	}
	// Output:
	// fail
	// error migrations/destructive at migrations/002_drop_email.up.sql:1
}
