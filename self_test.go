package relcheck_test

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/relcheck/relcheck/check"
	"github.com/relcheck/relcheck/migrations"
	"github.com/relcheck/relcheck/report"
)

// TestOwnMigrations runs relcheck's migrations gate on relcheck itself:
// the telemetry collector's schema (relcheck.yaml points the gate at
// telemetry/migrations).
func TestOwnMigrations(t *testing.T) {
	if _, err := exec.Command("git", "rev-parse", "--git-dir").Output(); err != nil {
		t.Skip("not a git checkout")
	}
	if _, err := migrations.FindPostgresBin(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("in CI PostgreSQL must be installed: %v", err)
		}
		t.Skip(err)
	}
	ctx := context.Background()
	env, err := check.Resolve(ctx, check.Options{Dir: "."})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := check.Run(ctx, env, []string{"migrations"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Checks {
		if c.Name != "migrations" {
			continue
		}
		if c.Status != report.StatusPass {
			t.Errorf("relcheck's own migrations: %s: %s\n%+v", c.Status, c.Summary, c.Findings)
		}
		return
	}
	t.Fatalf("no migrations check in %+v", rep.Checks)
}
