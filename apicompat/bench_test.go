package apicompat

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/relcheck/relcheck/internal/gittest"
	"github.com/relcheck/relcheck/internal/gitx"
)

// synthModule writes a module of npkg packages with nfunc functions each, in
// a chain of imports, commits and tags it v1.0.0, then changes one function
// per package in the working tree (half of them incompatibly).
func synthModule(tb testing.TB, npkg, nfunc int) string {
	tb.Helper()
	dir := tb.TempDir()
	gittest.Init(tb, dir)
	write := func(changed bool) {
		os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/big\n\ngo 1.22\n"), 0o644)
		for p := 0; p < npkg; p++ {
			var b strings.Builder
			fmt.Fprintf(&b, "package p%d\n\nimport \"strings\"\n", p)
			if p > 0 {
				fmt.Fprintf(&b, "import prev \"example.com/big/p%d\"\n\nvar _ = prev.F0\n", p-1)
			}
			for f := 0; f < nfunc; f++ {
				sig := "(s string) string"
				if changed && f == 0 && p%2 == 0 {
					sig = "(s string, n int) string"
				}
				fmt.Fprintf(&b, "\n// F%d does things.\nfunc F%d%s { return strings.ToUpper(s) }\n", f, f, sig)
				fmt.Fprintf(&b, "\n// T%d is a type.\ntype T%d struct{ Name string; n int }\n\nfunc (t *T%d) M(x int) error { return nil }\n", f, f, f)
			}
			if changed {
				b.WriteString("\n// Added is new.\nfunc Added() {}\n")
			}
			pd := filepath.Join(dir, fmt.Sprintf("p%d", p))
			os.MkdirAll(pd, 0o755)
			os.WriteFile(filepath.Join(pd, "p.go"), []byte(b.String()), 0o644)
		}
	}
	git := func(args ...string) { gittest.Git(tb, dir, args...) }
	write(false)
	git("add", "-A")
	git("commit", "-qm", "v1")
	git("tag", "v1.0.0")
	write(true)
	return dir
}

// BenchmarkCheck measures the whole API gate (extract the base, load and
// type-check both sides, compare, decide) on a synthetic 40-package module.
// Compare with bench/compare-api.sh for real modules against gorelease.
func BenchmarkCheck(b *testing.B) {
	dir := synthModule(b, 40, 30)
	ctx := context.Background()
	repo, err := gitx.Open(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	tags, _ := repo.ReleaseTags(ctx, "", "HEAD")
	opts := Options{Root: repo.Root, ModDir: repo.Root, Base: "v1.0.0",
		BaseVersion: semver.MustParse("1.0.0"), Tags: releases(tags), Config: DefaultConfig(), ConfigFile: "relcheck.yaml"}
	b.ReportAllocs()
	for b.Loop() {
		res, err := Check(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		if res.Version.Bump != "major" {
			b.Fatalf("bump = %s", res.Version.Bump)
		}
	}
}

func TestSynthModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a synthetic module")
	}
	dir := synthModule(t, 4, 3)
	ctx := context.Background()
	repo, err := gitx.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Check(ctx, Options{Root: repo.Root, ModDir: repo.Root, Base: "v1.0.0",
		BaseVersion: semver.MustParse("1.0.0"), Config: DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	e, _, _ := res.Check.Counts()
	if e != 2 || res.Version.Bump != "major" || res.Version.Next != "" || res.Check.Metrics["newlyExported"] != 4 {
		t.Errorf("errors %d, next %s, metrics %v", e, res.Version.Next, res.Check.Metrics)
	}
}
