package apicompat

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/oasdiff/oasdiff/checker"
	"github.com/oasdiff/oasdiff/diff"
	"github.com/oasdiff/oasdiff/load"
	"gopkg.in/yaml.v3"

	"github.com/relcheck/relcheck/report"
)

// OpenAPI as an API surface (api.openapi): each OpenAPI 3.x document
// (YAML or JSON; Swagger 2.0 is converted with kin-openapi's openapi2conv)
// is compared at the base and at head with oasdiff's checker, and its
// changes join the Go API's in the one version verdict:
//
//   - oasdiff's errors (breaking changes) are incompatible changes, under
//     the same version policy as Go's (a warning and a minor bump before
//     v1, an error at v1 and later);
//   - its warnings are warnings that take a minor release; its infos
//     (additions) are compatible changes;
//   - a removal follows the deprecation policy: an operation, parameter or
//     property must have been `deprecated: true` in api.deprecation's
//     releases and days (counted on the release tags' documents), and not
//     before its `x-sunset` date (oasdiff's own check), before it goes;
//   - a newly deprecated operation, parameter or property takes a minor
//     release, like a Go deprecation.
//
// Each finding names oasdiff's rule id and points at the document's line.

// removalIDs maps oasdiff's ids of a removal without a deprecation to the
// id the same removal has when it was deprecated.
var removalIDs = map[string]string{
	"api-path-removed-without-deprecation": "api-path-removed-with-deprecation",
	"api-removed-without-deprecation":      "api-removed-with-deprecation",
	"request-parameter-removed":            "request-parameter-removed-with-deprecation",
	"request-property-removed":             "request-property-removed-with-deprecation",
	"response-required-property-removed":   "response-required-property-removed-with-deprecation",
}

// deprecationIDs are oasdiff's ids of a newly deprecated element.
var deprecationIDs = []string{"endpoint-deprecated", "endpoint-deprecated-with-sunset", "request-parameter-deprecated", "request-property-deprecated", "response-property-deprecated"}

// loadHTTPDoc loads an OpenAPI document with the locations of its
// elements; a Swagger 2.0 document is converted to OpenAPI 3.
func loadHTTPDoc(file string) (spec *load.SpecInfo, err error) {
	defer func() {
		if r := recover(); r != nil { // a document the loader cannot take
			spec, err = nil, fmt.Errorf("the OpenAPI loader failed on it: %v", r)
		}
	}()
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var head struct {
		Swagger string `yaml:"swagger"`
	}
	if yaml.Unmarshal(data, &head) == nil && head.Swagger != "" {
		var raw any
		if err := yaml.Unmarshal(data, &raw); err != nil {
			return nil, err
		}
		js, err := json.Marshal(raw)
		if err != nil {
			return nil, fmt.Errorf("Swagger %s: %v", head.Swagger, err)
		}
		var d2 openapi2.T
		if err := json.Unmarshal(js, &d2); err != nil {
			return nil, fmt.Errorf("Swagger %s: %v", head.Swagger, err)
		}
		d3, err := openapi2conv.ToV3(&d2)
		if err != nil {
			return nil, fmt.Errorf("converting Swagger %s to OpenAPI 3: %v", head.Swagger, err)
		}
		v := ""
		if d3.Info != nil {
			v = d3.Info.Version
		}
		return &load.SpecInfo{Source: load.NewSource(file), Spec: d3, Version: v}, nil
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = true
	// $refs to files only: no network during a check, and none of
	// kin-openapi's process-wide cache, which would serve a document's
	// earlier contents at the same path.
	loader.ReadFromURIFunc = openapi3.ReadFromFile
	// allOf stays as written (oasdiff's default): merging it would lose
	// the lines the findings point at.
	spec, err = load.NewSpecInfo(loader, load.NewSource(file))
	if err != nil {
		return nil, err
	}
	if spec.Spec != nil && !strings.HasPrefix(spec.Spec.OpenAPI, "3.") {
		return nil, fmt.Errorf("not an OpenAPI 3.x or Swagger 2.0 document (openapi: %q)", spec.Spec.OpenAPI)
	}
	return spec, nil
}

// httpChanges compares two loaded documents with oasdiff's checker, down
// to its infos.
func httpChanges(base, head *load.SpecInfo) (changes checker.Changes, err error) {
	defer func() {
		if r := recover(); r != nil {
			changes, err = nil, fmt.Errorf("oasdiff failed on these documents: %v", r)
		}
	}()
	d, sources, err := diff.GetWithOperationsSourcesMap(diff.NewConfig(), base, head)
	if err != nil {
		return nil, err
	}
	return checker.CheckBackwardCompatibilityUntilLevel(checker.NewConfig(checker.GetAllChecks()), d, sources, checker.INFO), nil
}

// compareOpenAPI compares every api.openapi document at the base and at
// head.
func (c *comparison) compareOpenAPI(ctx context.Context, hist *History) error {
	for _, doc := range c.opts.Config.OpenAPI {
		headFile := filepath.Join(c.opts.ModDir, filepath.FromSlash(doc))
		head, err := loadHTTPDoc(headFile)
		if err != nil {
			return report.Inputf("api.openapi: %s: %v", doc, tidyHTTPError(err, c.opts.ModDir))
		}
		c.http = append(c.http, httpFeatures(doc, head.Spec, c.opts.Root)...)
		if c.base == nil {
			continue
		}
		baseFile := filepath.Join(c.base.Dir, filepath.FromSlash(doc))
		if _, err := os.Stat(baseFile); err != nil {
			c.notes = append(c.notes, fmt.Sprintf("%s is new since %s: its operations are additions", doc, c.opts.Base))
			c.add(&item{compatible: true})
			continue
		}
		base, err := loadHTTPDoc(baseFile)
		if err != nil {
			c.notes = append(c.notes, fmt.Sprintf("%s at %s could not be loaded (%v): compared as if it were new", doc, c.opts.Base, tidyHTTPError(err, c.base.Dir)))
			c.add(&item{compatible: true})
			continue
		}
		changes, err := httpChanges(base, head)
		if err != nil {
			return fmt.Errorf("comparing %s: %w", doc, err)
		}
		since := &httpHistory{c: c, hist: hist, doc: doc, head: head}
		for _, ch := range changes {
			c.httpChange(ctx, doc, ch, since)
		}
	}
	return nil
}

// tidyHTTPError names files relative to dir.
func tidyHTTPError(err error, dir string) string {
	return strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
}

// httpChange turns one of oasdiff's changes into a finding, a note or a
// deprecation, with the version and deprecation policies.
func (c *comparison) httpChange(ctx context.Context, doc string, ch checker.Change, since *httpHistory) {
	l := checker.NewDefaultLocalizer()
	id := ch.GetId()
	op := strings.TrimSpace(ch.GetOperation() + " " + ch.GetPath())
	what := doc
	if op != "" {
		what += ": " + op
	}
	text := ch.GetUncolorizedText(l)
	msg := fmt.Sprintf("%s: %s (oasdiff %s)", what, text, id)
	sym := "http " + doc
	if op != "" {
		sym += " " + op
	}
	loc := c.httpLocation(ch)
	exp := c.experimental(doc)
	it := &item{experimental: exp, f: report.Finding{Symbol: sym, Location: loc}}
	f := &it.f
	_, withoutDeprecation := removalIDs[id]
	switch {
	case slices.Contains(deprecationIDs, id):
		c.deprecated = append(c.deprecated, what+" ("+text+")")
		return
	case ch.GetLevel() == checker.INFO && !strings.HasSuffix(id, "-removed-with-deprecation"):
		c.add(&item{compatible: true, experimental: exp})
		c.notes = append(c.notes, fmt.Sprintf("%s: %s", what, text))
		return
	case ch.GetLevel() == checker.WARN && !withoutDeprecation:
		// A change that may break some clients: said, and a minor release.
		it.compatible = true
		f.Rule, f.Severity, f.Message = RuleIncompatible, report.SeverityWarning, msg+" (a warning: it may break some clients; a minor release)"
		f.Fix = "check the clients that use it, and say so in the release notes"
		c.add(it)
		return
	}
	it.incompatible = true
	f.Rule = RuleIncompatible
	c.add(it)
	switch {
	case exp:
		f.Severity = report.SeverityNote
		f.Message = msg + " (experimental: reported, not enforced)"
	case withoutDeprecation && c.breaksAllowed():
		f.Rule, f.Severity = RuleRemovedUndeprecated, report.SeverityError
		f.Message = msg
		if !strings.Contains(text, "without deprecation") {
			f.Message = fmt.Sprintf("%s: %s; it was never marked deprecated (oasdiff %s)", what, text, id)
		}
		f.Fix = "restore it and mark it `deprecated: true` (with an `x-sunset` date, if you announce one) first; remove it after the deprecation has been released"
	case strings.HasSuffix(id, "-removed-before-sunset"):
		f.Rule, f.Severity = RuleDeprecationWindow, report.SeverityError
		f.Message = msg + ": removed before its x-sunset date"
		f.Fix = "restore it until its x-sunset date has passed"
	case strings.HasSuffix(id, "-removed-with-deprecation"):
		rels := since.deprecatedSince(ctx, ch)
		min := c.opts.Config.Deprecation
		ok, releases, days := windowMet(rels, min.MinReleases, min.MinDays, c.opts.Now)
		first := "in no release yet"
		if len(rels) > 0 {
			first = fmt.Sprintf("since %s, %d release(s), %d day(s) ago", rels[0].Name, releases, days)
		}
		switch {
		case !ok:
			f.Rule, f.Severity = RuleDeprecationWindow, report.SeverityError
			f.Message = fmt.Sprintf("%s: %s too early: deprecated %s; the policy asks for %d release(s) and %d day(s) (oasdiff %s)", what, text, first, min.MinReleases, min.MinDays, id)
			f.Fix = fmt.Sprintf("restore it: %s (api.deprecation)", remaining(releases, days, min.MinReleases, min.MinDays, c.opts.Now, rels))
		case c.breaksAllowed():
			f.Severity = report.SeverityNote
			f.Message = fmt.Sprintf("%s: %s (deprecated %s, the window kept) (oasdiff %s)", what, text, first, id)
			f.Fix = "nothing to do: the deprecation policy was kept; list the removal in the release notes"
		default:
			f.Severity = report.SeverityError
			f.Message = fmt.Sprintf("%s: %s (deprecated %s); at v%s a deprecated operation or property stays until the next major version (oasdiff %s)", what, text, first, c.opts.BaseVersion, id)
			f.Fix = fmt.Sprintf("restore it; remove it in the next major version (module path %s)", c.nextMajorPath())
		}
	case c.breaksAllowed():
		f.Severity = report.SeverityWarning
		f.Message = msg + " (allowed before v1: the next version is a minor bump)"
		f.Fix = "clients must change; say so in the release notes"
	default:
		f.Severity = report.SeverityError
		f.Message = fmt.Sprintf("%s; incompatible changes are not allowed at v%s without a new major version", msg, c.opts.BaseVersion)
		if withoutDeprecation {
			f.Fix = fmt.Sprintf("restore it and mark it `deprecated: true` instead; remove it in the next major version (module path %s)", c.nextMajorPath())
		} else {
			f.Fix = fmt.Sprintf("keep the old form and add the new one beside it, or release a new major version (module path %s)", c.nextMajorPath())
		}
	}
}

// nextMajorPath is the module path of the next major version.
func (c *comparison) nextMajorPath() string {
	major := majorOf(c.head.Path)
	if c.opts.BaseVersion != nil {
		major = int(c.opts.BaseVersion.Major())
	}
	return fmt.Sprintf("%s/v%d", strings.TrimSuffix(c.head.Path, fmt.Sprintf("/v%d", majorOf(c.head.Path))), max(major, 1)+1)
}

// httpLocation is where a change is: the head's line, or the base's for a
// removal (in the repository's path of the document).
func (c *comparison) httpLocation(ch checker.Change) *report.Location {
	rel := func(root, file string) string {
		if r, err := filepath.Rel(root, file); err == nil && !strings.HasPrefix(r, "..") {
			return filepath.ToSlash(r)
		}
		return filepath.ToSlash(file)
	}
	if s := ch.GetRevisionSource(); s != nil && s.File != "" {
		return &report.Location{File: rel(c.opts.Root, s.File), Line: s.Line}
	}
	if s := ch.GetBaseSource(); s != nil && s.File != "" && c.base != nil {
		return &report.Location{File: rel(c.base.Root, s.File), Line: s.Line}
	}
	return nil
}

// httpHistory answers "since which release has this element been
// deprecated?": the release tags' documents compared with head show the
// same removal as a removal with deprecation, counting back from the
// newest tag until the first that does not.
type httpHistory struct {
	c    *comparison
	hist *History
	doc  string
	head *load.SpecInfo
	// changes caches each tag's comparison with head (nil: not loadable).
	changes map[string]checker.Changes
}

func (h *httpHistory) deprecatedSince(ctx context.Context, ch checker.Change) []Release {
	l := checker.NewDefaultLocalizer()
	key := ch.GetId() + "\x00" + ch.GetOperation() + " " + ch.GetPath() + "\x00" + ch.GetUncolorizedText(l)
	var since []Release
	for i := len(h.hist.Tags) - 1; i >= 0 && i >= len(h.hist.Tags)-50; i-- {
		changes := h.at(ctx, h.hist.Tags[i])
		found := slices.ContainsFunc(changes, func(o checker.Change) bool {
			return o.GetId()+"\x00"+o.GetOperation()+" "+o.GetPath()+"\x00"+o.GetUncolorizedText(l) == key
		})
		if !found {
			break
		}
		since = append([]Release{h.hist.Tags[i]}, since...)
	}
	return since
}

// at compares the document at tag with head.
func (h *httpHistory) at(ctx context.Context, tag Release) checker.Changes {
	if ch, ok := h.changes[tag.Name]; ok {
		return ch
	}
	if h.changes == nil {
		h.changes = map[string]checker.Changes{}
	}
	var out checker.Changes
	if dir, err := os.MkdirTemp("", "relcheck-openapi-"); err == nil {
		defer os.RemoveAll(dir)
		if file, err := h.extract(ctx, tag, dir); err == nil {
			if spec, err := loadHTTPDoc(file); err == nil {
				out, _ = httpChanges(spec, h.head)
			}
		}
	}
	h.changes[tag.Name] = out
	return out
}

// extract writes the document at tag, and the YAML and JSON files beside
// and below it (its relative $refs), into dir.
func (h *httpHistory) extract(ctx context.Context, tag Release, dir string) (string, error) {
	docPath := path.Join(h.hist.ModDir, h.doc)
	docDir := path.Dir(docPath)
	names, err := h.hist.repo().ListFiles(ctx, tag.Commit, docDir)
	if err != nil {
		return "", err
	}
	for _, n := range names {
		full := n
		if !strings.HasPrefix(n, docDir+"/") && docDir != "." {
			full = path.Join(docDir, n)
		}
		switch strings.ToLower(path.Ext(full)) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		data, err := h.hist.repo().ReadFile(ctx, tag.Commit, full)
		if err != nil {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(full, docDir), "/")
		out := filepath.Join(dir, filepath.FromSlash(rel))
		if os.MkdirAll(filepath.Dir(out), 0o755) == nil {
			os.WriteFile(out, data, 0o644)
		}
	}
	file := filepath.Join(dir, filepath.FromSlash(path.Base(docPath)))
	if _, err := os.Stat(file); err != nil {
		return "", err
	}
	return file, nil
}

// HTTPFeatures lists the HTTP API of the module's api.openapi documents as
// API report lines, one per operation, parameter and schema property:
//
//	http api/openapi.yaml, GET /users/{id}
//	http api/openapi.yaml, GET /users/{id}, param query limit integer
//	http api/openapi.yaml, POST /users, request application/json .email string required
//	http api/openapi.yaml, GET /users/{id}, response 200 application/json .name string
func HTTPFeatures(modDir, root string, docs []string) ([]Feature, error) {
	var all []Feature
	for _, doc := range docs {
		spec, err := loadHTTPDoc(filepath.Join(modDir, filepath.FromSlash(doc)))
		if err != nil {
			return nil, report.Inputf("api.openapi: %s: %v", doc, tidyHTTPError(err, modDir))
		}
		all = append(all, httpFeatures(doc, spec.Spec, root)...)
	}
	return all, nil
}

// maxHTTPFeatures bounds a document's report lines (a schema that
// fans out at every level could otherwise list millions).
const maxHTTPFeatures = 50000

func httpFeatures(doc string, t *openapi3.T, root string) []Feature {
	var out []Feature
	add := func(line string, deprecated bool, origin *openapi3.Origin) {
		if len(out) >= maxHTTPFeatures {
			return
		}
		f := Feature{Pkg: "http " + doc, Line: "http " + doc + ", " + line, Deprecated: deprecated}
		if origin != nil && origin.Key != nil && origin.Key.File != "" {
			file := origin.Key.File
			if r, err := filepath.Rel(root, file); err == nil && !strings.HasPrefix(r, "..") {
				file = filepath.ToSlash(r)
			}
			f.Loc = &report.Location{File: file, Line: origin.Key.Line}
		}
		out = append(out, f)
	}
	if t.Paths == nil {
		return nil
	}
	for _, p := range t.Paths.InMatchingOrder() {
		item := t.Paths.Value(p)
		for _, method := range slices.Sorted(maps.Keys(item.Operations())) {
			op := item.Operations()[method]
			name := method + " " + p
			add(name, op.Deprecated, op.Origin)
			params := slices.Clone(item.Parameters)
			params = append(params, op.Parameters...)
			for _, pr := range params {
				if pr.Value == nil {
					continue
				}
				line := fmt.Sprintf("%s, param %s %s %s", name, pr.Value.In, pr.Value.Name, schemaType(pr.Value.Schema))
				if pr.Value.Required {
					line += " required"
				}
				add(line, pr.Value.Deprecated, pr.Value.Origin)
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for _, mt := range slices.Sorted(maps.Keys(op.RequestBody.Value.Content)) {
					props(fmt.Sprintf("%s, request %s ", name, mt), op.RequestBody.Value.Content[mt].Schema, "", 0, add)
				}
			}
			if op.Responses != nil {
				for _, code := range slices.Sorted(maps.Keys(op.Responses.Map())) {
					r := op.Responses.Value(code)
					if r == nil || r.Value == nil {
						continue
					}
					for _, mt := range slices.Sorted(maps.Keys(r.Value.Content)) {
						props(fmt.Sprintf("%s, response %s %s ", name, code, mt), r.Value.Content[mt].Schema, "", 0, add)
					}
				}
			}
		}
	}
	return sortFeatures(out)
}

// props adds a line per property of a schema, with its dotted path, down
// to five levels; a schema already on the path (a $ref cycle) is not
// entered again.
func props(prefix string, s *openapi3.SchemaRef, at string, depth int, add func(string, bool, *openapi3.Origin)) {
	propsOn(prefix, s, at, depth, add, nil)
}

func propsOn(prefix string, s *openapi3.SchemaRef, at string, depth int, add func(string, bool, *openapi3.Origin), path []*openapi3.Schema) {
	if s == nil || s.Value == nil || depth > 5 || slices.Contains(path, s.Value) {
		return
	}
	v := s.Value
	path = append(path, v)
	props := func(prefix string, s *openapi3.SchemaRef, at string, depth int, add func(string, bool, *openapi3.Origin)) {
		propsOn(prefix, s, at, depth, add, path)
	}
	if v.Type.Is("array") && v.Items != nil {
		props(prefix, v.Items, at+"[]", depth+1, add)
		return
	}
	for _, sub := range append(append(slices.Clone(v.AllOf), v.OneOf...), v.AnyOf...) {
		props(prefix, sub, at, depth+1, add)
	}
	for _, name := range slices.Sorted(maps.Keys(v.Properties)) {
		p := v.Properties[name]
		if p == nil || p.Value == nil {
			continue
		}
		line := prefix + at + "." + name + " " + schemaType(p)
		if slices.Contains(v.Required, name) {
			line += " required"
		}
		add(line, p.Value.Deprecated, p.Value.Origin)
		props(prefix, p, at+"."+name, depth+1, add)
	}
}

func schemaType(s *openapi3.SchemaRef) string {
	if s == nil || s.Value == nil {
		return "any"
	}
	v := s.Value
	t := "any"
	if v.Type != nil && len(*v.Type) > 0 {
		t = strings.Join(*v.Type, "|")
	}
	if v.Type.Is("array") && v.Items != nil {
		t = "[]" + schemaType(v.Items)
	}
	if v.Format != "" {
		t += "(" + v.Format + ")"
	}
	if v.Nullable {
		t += "?"
	}
	return t
}

func sortFeatures(fs []Feature) []Feature {
	slices.SortStableFunc(fs, func(a, b Feature) int { return strings.Compare(a.String(), b.String()) })
	// A schema reached twice under one operation is one line.
	return slices.CompactFunc(fs, func(a, b Feature) bool { return a.String() == b.String() })
}
