package apicompat

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/oasdiff/oasdiff/checker"

	"github.com/relcheck/relcheck/internal/gittest"
	"github.com/relcheck/relcheck/internal/gitx"
	"github.com/relcheck/relcheck/report"
)

// copyDoc writes testdata/openapi/notes/VERSION's documents to dir/api.
func copyDoc(t *testing.T, dir, version string) {
	t.Helper()
	src := filepath.Join("..", "testdata", "openapi", "notes", version)
	for _, f := range []string{"openapi.yaml", "schemas.yaml"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, "api"), 0o755)
		if err := os.WriteFile(filepath.Join(dir, "api", f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenAPIReleases checks a realistic HTTP API (21 operations, shared
// schemas in a second file, $refs, deprecations with and without x-sunset)
// release by release, and candidate heads on its last release, each
// verdict as the version policy wants it. The same documents at v0 allow
// a removal after the deprecation window as a minor bump.
func TestOpenAPIReleases(t *testing.T) {
	for _, major := range []int{1, 0} {
		t.Run("v"+string(rune('0'+major)), func(t *testing.T) {
			dir := t.TempDir()
			gittest.Init(t, dir)
			os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/notes\n\ngo 1.22\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "notes.go"), []byte("// Package notes serves notes.\npackage notes\n"), 0o644)
			ctx := context.Background()
			tag := func(v string) string { return strings.Replace(v, "v1.", "v"+string(rune('0'+major))+".", 1) }
			day := 0
			release := func(version string) {
				copyDoc(t, dir, version)
				when := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 30*day).Format(time.RFC3339)
				day++
				env := []string{"GIT_AUTHOR_DATE=" + when, "GIT_COMMITTER_DATE=" + when}
				gittest.GitEnv(t, dir, env, "add", "-A")
				gittest.GitEnv(t, dir, env, "commit", "-qm", version)
				gittest.GitEnv(t, dir, env, "tag", tag(version))
			}
			cfg := DefaultConfig()
			cfg.OpenAPI = []string{"api/openapi.yaml"}
			check := func(base string) *Result {
				t.Helper()
				repo, err := gitx.Open(ctx, dir)
				if err != nil {
					t.Fatal(err)
				}
				tags, _ := repo.ReleaseTags(ctx, "", "HEAD")
				res, err := Check(ctx, Options{Root: dir, ModDir: dir, Base: base, BaseVersion: semver.MustParse(strings.TrimPrefix(base, "v")),
					Tags: releases(tags), Config: cfg, Now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)})
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			rules := func(res *Result) []string {
				var out []string
				for _, f := range res.Check.Findings {
					if f.Suppressed == "" {
						out = append(out, string(f.Severity)+" "+f.Rule)
					}
				}
				slices.Sort(out)
				return slices.Compact(out)
			}
			release("v1.0.0")
			// Each release against the one before.
			copyDoc(t, dir, "v1.1.0")
			res := check(tag("v1.0.0"))
			if res.Version.Bump != "minor" || len(rules(res)) != 0 {
				t.Errorf("v1.1.0 (additions, deprecations): %s %v\n%v", res.Version.Bump, rules(res), res.Version.Reasons)
			}
			if !slices.ContainsFunc(res.Version.Reasons, func(r string) bool {
				return strings.Contains(r, "newly deprecated") && strings.Contains(r, "api/openapi.yaml: GET /notes/search") && strings.Contains(r, "POST /admin/export")
			}) {
				t.Errorf("v1.1.0's deprecations are not named: %v", res.Version.Reasons)
			}
			release("v1.1.0")
			copyDoc(t, dir, "v1.2.0")
			res = check(tag("v1.1.0"))
			if res.Version.Bump != "minor" || !slices.Equal(rules(res), []string{"warning api/incompatible"}) {
				t.Errorf("v1.2.0 (a tag name pattern changed: oasdiff warns): %s %v\n%v", res.Version.Bump, rules(res), res.Check.Findings)
			}
			release("v1.2.0")

			// Candidate heads on the last release.
			breaking := "major"
			if major == 0 {
				breaking = "minor"
			}
			for _, c := range []struct {
				head, bump string
				rules      []string
				msg        string
			}{
				{"head-remove-before-sunset", breaking, []string{"error api/deprecation-window"}, "api/openapi.yaml: GET /notes/search: API path removed before the sunset date `2027-06-30`"},
				{"head-remove-undeprecated", breaking, []string{"error " + map[int]string{1: RuleIncompatible, 0: RuleRemovedUndeprecated}[major]}, "DELETE /tags/{tagId}"},
				{"head-required-request-property", breaking, []string{map[int]string{1: "error", 0: "warning"}[major] + " api/incompatible"}, "new-required-request-property"},
				{"head-response-property", "minor", nil, ""},
				// Deprecated since v1.1.0 (two releases, 60 days): the window
				// is kept; at v1 a removal still needs a new major version.
				{"head-remove-deprecated", breaking, map[int][]string{1: {"error api/incompatible"}, 0: {"note api/incompatible"}}[major], "POST /admin/export"},
			} {
				copyDoc(t, dir, c.head)
				res := check(tag("v1.2.0"))
				got := rules(res)
				if res.Version.Bump != c.bump || !slices.Equal(got, c.rules) {
					t.Errorf("%s: %s %v, want %s %v\n%v", c.head, res.Version.Bump, got, c.bump, c.rules, res.Check.Findings)
				}
				if c.msg != "" && !slices.ContainsFunc(res.Check.Findings, func(f report.Finding) bool {
					return strings.Contains(f.Message, c.msg) && f.Location != nil && strings.HasPrefix(f.Location.File, "api/") && f.Location.Line > 0
				}) {
					t.Errorf("%s: no finding says %q at a line of the document: %+v", c.head, c.msg, res.Check.Findings)
				}
			}
		})
	}
}

// BenchmarkOpenAPICompare loads two versions of the notes API and compares
// them with oasdiff's checker, as the api gate does (compare with
// `oasdiff breaking v1.1.0/openapi.yaml v1.2.0/openapi.yaml`).
func BenchmarkOpenAPICompare(b *testing.B) {
	dir := filepath.Join("..", "testdata", "openapi", "notes")
	for b.Loop() {
		base, err := loadHTTPDoc(filepath.Join(dir, "v1.1.0", "openapi.yaml"))
		if err != nil {
			b.Fatal(err)
		}
		head, err := loadHTTPDoc(filepath.Join(dir, "v1.2.0", "openapi.yaml"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := httpChanges(base, head); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSwagger2: a Swagger 2.0 document is converted to OpenAPI 3 and
// compared like one.
func TestSwagger2(t *testing.T) {
	dir := t.TempDir()
	doc := func(name string, extra string) string {
		f := filepath.Join(dir, name)
		os.WriteFile(f, []byte(`swagger: "2.0"
info: {title: Pets, version: "1.0"}
basePath: /v1
paths:
  /pets:
    get:
      produces: [application/json]
      responses:
        "200":
          description: pets
          schema:
            type: array
            items: {$ref: "#/definitions/Pet"}
`+extra+`definitions:
  Pet:
    type: object
    required: [name]
    properties:
      name: {type: string}
`), 0o644)
		return f
	}
	base, err := loadHTTPDoc(doc("base.yaml", "  /pets/{id}:\n    delete:\n      parameters:\n        - {name: id, in: path, required: true, type: string}\n      responses:\n        \"204\": {description: deleted}\n"))
	if err != nil {
		t.Fatal(err)
	}
	head, err := loadHTTPDoc(doc("head.yaml", ""))
	if err != nil {
		t.Fatal(err)
	}
	changes, err := httpChanges(base, head)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(changes, func(c checker.Change) bool { return c.GetId() == "api-path-removed-without-deprecation" }) {
		t.Errorf("the removed operation is not seen: %v", changes)
	}
	if _, err := loadHTTPDoc(doc("bad.yaml", "")[:0] + filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing document loaded")
	}
}

func FuzzLoadHTTPDoc(f *testing.F) {
	for _, v := range []string{"v1.0.0"} {
		data, _ := os.ReadFile(filepath.Join("..", "testdata", "openapi", "notes", v, "openapi.yaml"))
		f.Add(data)
	}
	f.Add([]byte("swagger: '2.0'\npaths: {/a: {get: {responses: {'200': {description: x}}}}}\n"))
	f.Add([]byte("openapi: 3.1.0\npaths: {}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file := filepath.Join(t.TempDir(), "openapi.yaml")
		os.WriteFile(file, data, 0o644)
		done := make(chan struct{})
		go func() {
			defer close(done)
			spec, err := loadHTTPDoc(file)
			if err != nil {
				return
			}
			httpFeatures("openapi.yaml", spec.Spec, filepath.Dir(file))
			httpChanges(spec, spec) // the library's own failure is an error, not a panic
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("no answer in 20 s for %q", data)
		}
	})
}
