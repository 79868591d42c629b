package apicompat

import (
	"context"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"sort"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/relcheck/relcheck/report"
)

// typecheck builds a one-package module from source.
func typecheck(t *testing.T, src string) *Module {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "/repo/lib.go", "package lib\n"+src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	conf := types.Config{Importer: importer.Default()}
	tp, err := conf.Check("example.com/lib", fset, []*ast.File{f}, nil)
	if err != nil {
		t.Fatalf("type-checking %q: %v", src, err)
	}
	p := &Package{Path: "example.com/lib", Types: tp, Fset: fset, Files: []*ast.File{f}}
	return &Module{Path: "example.com/lib", Root: "/repo", Packages: map[string]*Package{"": p}, Broken: map[string]string{}}
}

// classify compares old and new source at the given base version and returns
// "severity rule: message" lines and the bump.
func classify(t *testing.T, base, old, new string, api Config) ([]string, string) {
	t.Helper()
	c := &comparison{
		opts: Options{Base: base, BaseVersion: semver.MustParse(base), Config: api, Root: "/repo"},
		base: typecheck(t, old), head: typecheck(t, new),
	}
	res, err := c.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range res.Check.Findings {
		got = append(got, string(f.Severity)+" "+f.Rule+": "+f.Message)
		// Every finding says where and what to do.
		if f.Location == nil || f.Location.File == "" || f.Location.Line < 1 {
			t.Errorf("finding %q has no file:line", f.Message)
		}
		if f.Fix == "" {
			t.Errorf("finding %q has no fix hint", f.Message)
		}
	}
	sort.Strings(got)
	return got, res.Version.Bump
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name     string
		base     string
		old, new string
		api      Config
		want     []string // substrings, one per finding, in sorted order of findings
		bump     string
	}{
		// Type parameters of generic functions: apidiff drops them.
		{name: "constraint tightened", base: "v1.0.0",
			old: "func F[T any](x T) T { return x }", new: "func F[T comparable](x T) T { return x }",
			want: []string{"error api/incompatible: F: type parameter constraint tightened (T from any to comparable: now comparable only)"}, bump: "major"},
		{name: "constraint widened", base: "v1.0.0",
			old: "func F[T comparable](x T) T { return x }", new: "func F[T any](x T) T { return x }",
			bump: "minor"},
		{name: "type parameter renamed", base: "v1.0.0",
			old: "func F[T any](x T) T { return x }", new: "func F[U any](x U) U { return x }",
			bump: "patch"},
		{name: "type parameter added", base: "v1.0.0",
			old: "func F[T any](x T) {}", new: "func F[T, U any](x T) {}",
			want: []string{"error api/incompatible: F: type parameters changed from [T any] to [T any, U any]"}, bump: "major"},
		{name: "type parameters reordered", base: "v1.0.0",
			old: "func F[K comparable, V any](m map[K]V) {}", new: "func F[V any, K comparable](m map[K]V) {}",
			want: []string{"error api/incompatible: F: type parameters reordered from [K comparable, V any] to [V any, K comparable]"}, bump: "major"},
		{name: "union term removed", base: "v1.0.0",
			old: "func F[N ~int | ~int64](x N) {}", new: "func F[N ~int](x N) {}",
			want: []string{"tightened (N from ~int | ~int64 to ~int: ~int64 dropped)"}, bump: "major"},
		{name: "named constraint loses a term", base: "v1.0.0",
			old:  "type Number interface{ ~int | ~float64 }\nfunc Sum[T Number](xs ...T) T { var t T; return t }",
			new:  "type Number interface{ ~int }\nfunc Sum[T Number](xs ...T) T { var t T; return t }",
			want: []string{"Sum: type parameter constraint tightened (T from lib.Number to lib.Number: ~float64 dropped)"}, bump: "major"},
		{name: "constraint gains a method", base: "v1.0.0",
			old: "func F[T any](x T) {}", new: "func F[T interface{ String() string }](x T) {}",
			want: []string{"tightened (T from any to interface{String() string}: method String() string now required)"}, bump: "major"},
		{name: "union term added", base: "v1.0.0",
			old: "func F[N ~int](x N) {}", new: "func F[N ~int | ~int64](x N) {}",
			bump: "minor"},
		{name: "tilde removed", base: "v1.0.0",
			old: "func F[N ~int](x N) {}", new: "func F[N int](x N) {}",
			want: []string{"tightened (N from ~int to int: ~int narrowed to int (other types whose underlying type is int dropped))"}, bump: "major"},
		{name: "tilde added", base: "v1.0.0",
			old: "func F[N int](x N) {}", new: "func F[N ~int](x N) {}",
			bump: "minor"},
		{name: "method added to constraint", base: "v1.0.0",
			old: "func F[T interface{ String() string }](x T) {}", new: "func F[T interface{ String() string; Len() int }](x T) {}",
			want: []string{"tightened"}, bump: "major"},
		{name: "comparable embedded", base: "v1.0.0",
			old: "import \"fmt\"\nfunc F[T fmt.Stringer](x T) {}", new: "import \"fmt\"\nfunc F[T interface{ fmt.Stringer; comparable }](x T) {}",
			want: []string{"tightened"}, bump: "major"},
		{name: "same named constraint", base: "v1.0.0",
			old: "import \"fmt\"\nfunc F[T fmt.Stringer](x T) {}", new: "import \"fmt\"\nvar _ fmt.Stringer\nfunc F[T interface{ String() string }](x T) {}",
			bump: "patch"},
		{name: "type parameter names swapped", base: "v1.0.0",
			old: "func Pair[K, V any](k K, v V) {}", new: "func Pair[V, K any](v V, k K) {}",
			bump: "patch"},
		{name: "generic alias constraint tightened", base: "v1.0.0",
			old: "type List[T any] = []T", new: "type List[T comparable] = []T",
			want: []string{"error api/incompatible: List: type parameter constraint tightened (T from any to comparable: now comparable only)"}, bump: "major"},
		// Interfaces: apidiff misses methods lost with an embedded interface
		// of another package.
		{name: "embedded interface dropped", base: "v1.0.0",
			old: "import \"io\"\ntype RW interface{ io.Reader; io.Writer }", new: "import \"io\"\ntype RW interface{ io.Reader }",
			want: []string{"error api/incompatible: RW.Write: removed (it came from an embedded interface"}, bump: "major"},
		{name: "embedded interface kept", base: "v1.0.0",
			old: "import \"io\"\ntype RW interface{ io.Reader; io.Writer }", new: "import \"io\"\ntype RW interface{ io.Reader; Write([]byte) (int, error) }",
			bump: "patch"},
		// Methods of generic types and promoted methods.
		{name: "deprecated method of a generic type removed", base: "v0.3.0",
			old: "type Box[T any] struct{ v T }\n// Deprecated: Use Value.\nfunc (b *Box[T]) Get() T { return b.v }", new: "type Box[T any] struct{ v T }",
			api:  Config{Deprecation: Deprecation{MinReleases: 0}},
			want: []string{"note api/incompatible: Box.Get removed after its deprecation"}, bump: "minor"},
		{name: "promoted method removed once", base: "v1.0.0",
			old: "type Inner struct{}\nfunc (Inner) Old() {}\ntype Outer struct{ Inner }", new: "type Inner struct{}\ntype Outer struct{ Inner }",
			want: []string{"error api/incompatible: Inner.Old: removed"}, bump: "major"},
		{name: "experimental addition is a minor change", base: "v1.0.0",
			old: "func F() {}", new: "func F() {}\nfunc G() {}", api: Config{Experimental: []string{"./..."}},
			bump: "minor"},
		// Generic types: apidiff reports any constraint change as incompatible.
		{name: "type constraint widened", base: "v1.0.0",
			old: "type Set[E comparable] struct{ m map[string]E }", new: "type Set[E any] struct{ m map[string]E }",
			bump: "minor"},
		{name: "type constraint tightened", base: "v1.0.0",
			old: "type Set[E any] struct{ m map[string]E }", new: "type Set[E comparable] struct{ m map[string]E }",
			want: []string{"error api/incompatible: Set: type parameter constraint tightened (E from any to comparable: now comparable only)"}, bump: "major"},
		// apidiff's own classification, with relcheck's policies.
		{name: "field removed at v1", base: "v1.2.0",
			old: "type T struct{ X, Y int }", new: "type T struct{ X int }",
			want: []string{"error api/incompatible: T.Y: removed"}, bump: "major"},
		{name: "method removed at v0 without deprecation", base: "v0.3.0",
			old: "type T struct{}\nfunc (*T) M() {}", new: "type T struct{}",
			want: []string{"error api/removed-without-deprecation: T.M removed; it was never marked Deprecated"}, bump: "minor"},
		{name: "deprecated type's method removed, window of 0", base: "v0.3.0",
			old: "// Deprecated: Use U.\ntype T struct{}\nfunc (*T) M() {}", new: "// Deprecated: Use U.\ntype T struct{}",
			want: []string{"note api/incompatible: T.M removed after its deprecation"}, api: Config{Deprecation: Deprecation{MinReleases: 0}}, bump: "minor"},
		{name: "deprecated but never released", base: "v0.3.0",
			old: "// Deprecated: Use G.\nfunc F() {}", new: "",
			want: []string{"error api/deprecation-window: F removed too early: deprecated no release yet"}, api: Config{Deprecation: Deprecation{MinReleases: 1}}, bump: "minor"},
		{name: "interface method added", base: "v1.0.0",
			old: "type I interface{ A() }", new: "type I interface{ A(); B() }",
			want: []string{"error api/incompatible: I.B: added"}, bump: "major"},
		{name: "string constant value changed", base: "v1.0.0",
			old: "const Version = \"1.45.0\"", new: "const Version = \"1.46.0\"",
			bump: "patch"},
		{name: "numeric constant value changed", base: "v1.0.0",
			old: "const Size = 8", new: "const Size = 16",
			want: []string{"error api/incompatible: Size: value changed from 8 to 16"}, bump: "major"},
		{name: "string constant retyped", base: "v1.0.0",
			old: "type Name string\nconst Default Name = \"a\"", new: "type Name string\nconst Default = \"b\"",
			want: []string{"error api/incompatible: Default: changed from Name to untyped string"}, bump: "major"},
		{name: "break before v1", base: "v0.9.0",
			old: "func F(int) {}", new: "func F(string) {}",
			want: []string{"warning api/incompatible: F: changed from func(int) to func(string) (allowed before v1"}, bump: "minor"},
		{name: "suppressed", base: "v1.0.0",
			old: "func F(int) {}", new: "func F(string) {}",
			api:  Config{Ignore: []Ignore{{Rule: "api/incompatible", Symbol: "example.com/lib.F", Reason: "nobody calls it"}}},
			want: []string{"error api/incompatible: F: changed"}, bump: "minor"},
		{name: "new deprecation without hint", base: "v1.0.0",
			old: "func F() {}", new: "// Deprecated: do not.\nfunc F() {}",
			want: []string{"warning api/deprecation-hint: F is newly deprecated without saying what to use instead"}, bump: "minor"},
		// A deprecation alone is a minor change (Semantic Versioning 2.0.0,
		// item 7), which apidiff and gorelease call "no change".
		{name: "new deprecation with hint", base: "v1.0.0",
			old: "func F() {}\nfunc G() {}", new: "// Deprecated: Use [G] instead.\nfunc F() {}\nfunc G() {}",
			bump: "minor"},
		{name: "deprecated already", base: "v1.0.0",
			old: "// Deprecated: Use [G] instead.\nfunc F() {}\nfunc G() {}", new: "// Deprecated: Use [G] instead.\nfunc F() {}\nfunc G() {}",
			bump: "patch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bump := classify(t, tt.base, tt.old, tt.new, tt.api)
			if len(got) != len(tt.want) {
				t.Fatalf("findings:\n  %s\nwant %d:\n  %s", strings.Join(got, "\n  "), len(tt.want), strings.Join(tt.want, "\n  "))
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("finding %d = %q, want it to contain %q", i, got[i], tt.want[i])
				}
			}
			if bump != tt.bump {
				t.Errorf("bump = %q, want %q", bump, tt.bump)
			}
		})
	}
}

func TestSuppressedFindingIsMarked(t *testing.T) {
	c := &comparison{
		opts: Options{Base: "v1.0.0", BaseVersion: semver.MustParse("1.0.0"), Root: "/repo",
			Config: Config{Ignore: []Ignore{{Rule: "api/incompatible", Symbol: "example.com/lib.F", Reason: "nobody calls it"}}}},
		base: typecheck(t, "func F(int) {}"), head: typecheck(t, "func F(string) {}"),
	}
	res, err := c.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Check.Status != report.StatusPass || len(res.Check.Findings) != 1 || res.Check.Findings[0].Suppressed != "nobody calls it" {
		t.Errorf("check = %+v", res.Check)
	}
}

func TestDeprecationParagraph(t *testing.T) {
	for doc, want := range map[string]bool{
		"F does things.\n\nDeprecated: Use G.\n": true,
		"Deprecated: Use G.\n":                   true,
		"F is not Deprecated: really.\n":         false,
		"F does things.\nDeprecated: inline.\n":  false,
	} {
		if _, got := deprecation(doc); got != want {
			t.Errorf("deprecation(%q) = %v, want %v", doc, got, want)
		}
	}
}

func TestMatchPattern(t *testing.T) {
	for _, tt := range []struct {
		rel, pattern string
		want         bool
	}{
		{"exp", "./exp/...", true},
		{"exp/sub", "./exp/...", true},
		{"expo", "./exp/...", false},
		{"exp", "example.com/lib/exp", true},
		{"", "./...", true},
		{"a/b", "a", false},
	} {
		if got := matchPattern("example.com/lib", tt.rel, tt.pattern); got != tt.want {
			t.Errorf("matchPattern(%q, %q) = %v", tt.rel, tt.pattern, got)
		}
	}
}
