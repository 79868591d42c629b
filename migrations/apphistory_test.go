package migrations_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/relcheck/relcheck/check"
	"github.com/relcheck/relcheck/internal/gittest"
	"github.com/relcheck/relcheck/migrations"
)

// TestAppHistory checks an application's migration history release step
// by release step, as `relcheck check migrations` does at each release
// commit (a tag push): each testdata/apphistory/N-vX.Y.Z.txtar holds the
// files that release adds or changes, and its EXPECT section the findings
// of the step from the release before it ("severity rule file:line").
// The history is messy on purpose: an application module without /v2,
// up-only files with dotted names, plpgsql functions, a trigger and a DO
// block, unique keys over columns with defaults, a json cast, a drop after
// a deprecation, an int to bigint change.
func TestAppHistory(t *testing.T) {
	if _, err := migrations.FindPostgresBin(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("in CI PostgreSQL must be installed: %v", err)
		}
		t.Skip(err)
	}
	files, err := filepath.Glob(filepath.Join("..", "testdata", "apphistory", "*.txtar"))
	if err != nil || len(files) < 7 {
		t.Fatalf("the history needs at least seven releases: %v %v", files, err)
	}
	slices.SortFunc(files, func(a, b string) int { return releaseIndex(a) - releaseIndex(b) })
	ctx := context.Background()
	// One server for every step: each run makes and drops its own
	// databases on it.
	pg, err := migrations.NewPostgres(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()

	dir := t.TempDir()
	gittest.Init(t, dir)
	var tags []string
	expect := map[string][]string{}
	for _, f := range files {
		ar, err := txtar.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tag := strings.TrimSuffix(filepath.Base(f), ".txtar")
		tag = tag[strings.IndexByte(tag, '-')+1:]
		for _, af := range ar.Files {
			if af.Name == "EXPECT" {
				expect[tag] = strings.Fields(strings.ReplaceAll(string(af.Data), "\n", "\t"))
				continue
			}
			p := filepath.Join(dir, af.Name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, af.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		gittest.Git(t, dir, "add", "-A")
		gittest.Git(t, dir, "commit", "-q", "-m", "release "+tag)
		gittest.Git(t, dir, "tag", tag)
		tags = append(tags, tag)
	}
	for i, tag := range tags[1:] {
		t.Run(tags[i]+"→"+tag, func(t *testing.T) {
			gittest.Git(t, dir, "checkout", "-q", tag)
			env, err := check.Resolve(ctx, check.Options{Dir: dir, DatabaseURL: pg.URL()})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := check.Run(ctx, env, []string{"migrations"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Base != tags[i] {
				t.Errorf("base %q, want %s", rep.Base, tags[i])
			}
			chk := rep.Checks[0]
			var got []string
			for _, f := range chk.Findings {
				if f.Suppressed == "" {
					got = append(got, fmt.Sprintf("%s %s %s:%d", f.Severity, f.Rule, f.Location.File, f.Location.Line))
				}
			}
			slices.Sort(got)
			var want []string
			for j := 0; j+2 < len(expect[tag]); j += 3 {
				want = append(want, strings.Join(expect[tag][j:j+3], " "))
			}
			slices.Sort(want)
			var b strings.Builder
			for _, f := range chk.Findings {
				fmt.Fprintf(&b, "  %s %s %s:%d: %s\n", f.Severity, f.Rule, f.Location.File, f.Location.Line, f.Message)
			}
			for _, n := range chk.Notes {
				fmt.Fprintf(&b, "  - %s\n", n)
			}
			t.Logf("%s → %s: %s\n%s", tags[i], tag, chk.Summary, b.String())
			if !slices.Equal(got, want) {
				t.Errorf("%s: %s\ngot  %q\nwant %q", tag, chk.Status, got, want)
			}
			if chk.Status == "error" {
				t.Errorf("%s: the gate could not decide: %s", tag, chk.Summary)
			}
		})
	}
}

func releaseIndex(path string) int {
	var n int
	fmt.Sscanf(filepath.Base(path), "%d-", &n)
	return n
}
