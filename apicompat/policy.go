package apicompat

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/relcheck/relcheck/report"
)

// breaksAllowed reports whether the version policy allows incompatible
// changes at all: in v0, for a first release, or with a new major path.
func (c *comparison) breaksAllowed() bool {
	if c.base == nil {
		return true
	}
	if c.opts.BaseVersion == nil {
		return majorOf(c.head.Path) < 2
	}
	return c.opts.BaseVersion.Major() == 0 || c.pathMoved()
}

func (c *comparison) experimental(rel string) bool {
	for _, p := range c.opts.Config.Experimental {
		if matchPattern(c.head.Path, rel, p) {
			return true
		}
	}
	return false
}

// matchPattern matches a package (module-relative rel) against a pattern like
// "./x/...", "x", or a full import path "example.com/m/x/...".
func matchPattern(modPath, rel, pattern string) bool {
	p := strings.TrimPrefix(pattern, "./")
	if p == "." {
		p = ""
	}
	if strings.HasPrefix(p, modPath) {
		p = strings.TrimPrefix(strings.TrimPrefix(p, modPath), "/")
	}
	if strings.HasSuffix(p, "...") {
		prefix := strings.TrimSuffix(strings.TrimSuffix(p, "..."), "/")
		return prefix == "" || rel == prefix || strings.HasPrefix(rel, prefix+"/")
	}
	return rel == p
}

// version applies gorelease's version policy.
func (c *comparison) version() report.Version {
	v := report.Version{}
	// A suppressed or experimental incompatible change is still a change:
	// it cannot ask for a new major version, but it is at least a minor one.
	var breaking, added, tolerated int
	for _, it := range c.items {
		switch {
		case it.incompatible && !it.experimental && it.f.Suppressed == "":
			breaking++
		case it.incompatible:
			tolerated++
		case it.compatible:
			added++
		}
	}
	headMajor := majorOf(c.head.Path)
	if c.opts.Base == "" {
		v.Bump = "initial"
		if headMajor >= 2 {
			v.Next = fmt.Sprintf("v%d.0.0", headMajor)
		} else {
			v.Next = "v0.1.0"
		}
		v.Reasons = append(v.Reasons, "no release tag yet: this is the first release")
		return v
	}
	v.Base = c.opts.Base
	bv := c.opts.BaseVersion
	switch {
	case bv == nil:
		v.Reasons = append(v.Reasons, fmt.Sprintf("base %s is not a release tag: no version can be derived", c.opts.Base))
	case c.pathMoved():
		v.Bump = "major"
		v.Next = fmt.Sprintf("v%d.0.0", headMajor)
		v.Reasons = append(v.Reasons, fmt.Sprintf("module path moved to %s", c.head.Path))
	case breaking > 0 && bv.Major() == 0:
		v.Bump = "minor"
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d incompatible change(s), allowed before v1 as a minor bump", breaking))
	case breaking > 0:
		// Under this module path there is no valid next version: v%d.0.0
		// needs the path to end in /v%d.
		v.Bump = "major"
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d incompatible change(s): no release is possible under %s; v%d.0.0 needs module path %s/v%d",
			breaking, c.head.Path, bv.Major()+1, strings.TrimSuffix(c.head.Path, fmt.Sprintf("/v%d", bv.Major())), bv.Major()+1))
	case added > 0 || tolerated > 0 || len(c.deprecated) > 0:
		v.Bump = "minor"
		if added > 0 {
			v.Reasons = append(v.Reasons, fmt.Sprintf("%d compatible change(s)", added))
		}
		if tolerated > 0 {
			v.Reasons = append(v.Reasons, fmt.Sprintf("%d incompatible change(s) suppressed or in experimental packages", tolerated))
		}
	default:
		v.Bump = "patch"
		v.Reasons = append(v.Reasons, "no API change")
	}
	if len(c.deprecated) > 0 && v.Bump != "initial" {
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d identifier(s) newly deprecated (%s): a deprecation takes a minor release (Semantic Versioning 2.0.0, item 7)", len(c.deprecated), strings.Join(c.deprecated, ", ")))
	}
	if len(c.undecided) > 0 {
		// The changes of a package that could not be loaded are unknown:
		// no version can be promised.
		v.Reasons = append(v.Reasons, fmt.Sprintf("not compared: %s (could not be loaded), so no version can be derived", strings.Join(c.undecided, ", ")))
		v.Next = ""
		return v
	}
	if bv != nil && v.Next == "" && v.Bump != "major" {
		n := *bv
		switch v.Bump {
		case "minor":
			n = bv.IncMinor()
		case "patch":
			n = bv.IncPatch()
		}
		v.Next = "v" + n.String()
	}
	return v
}

// checkTag checks the release tag on HEAD against the version the changes
// allow: it must not be lower than the next version (a patch tag on new API,
// a minor tag on a break).
func (c *comparison) checkTag(v *report.Version) {
	t := c.opts.Tagged
	if t == nil {
		return
	}
	loc := &report.Location{File: "go.mod", Line: 1}
	if rel, err := filepath.Rel(c.opts.Root, filepath.Join(c.opts.ModDir, "go.mod")); err == nil {
		loc.File = filepath.ToSlash(rel)
	}
	prefix := strings.TrimSuffix(t.Name, "v"+t.Version.String())
	switch {
	case c.opts.Base == "":
		// A first release may start at any version of its major.
		v.Reasons = append(v.Reasons, fmt.Sprintf("HEAD is tagged %s, the first release", t.Name))
		v.Next = "v" + t.Version.String()
	case v.Next == "":
		c.add(&item{f: report.Finding{
			Rule: RuleTagVersion, Severity: report.SeverityError, Location: loc,
			Message: fmt.Sprintf("HEAD is tagged %s, but no version under %s allows the changes since %s", t.Name, c.head.Path, orNone(c.opts.Base)),
			Fix:     "delete the tag, fix the findings above, and tag again",
		}})
	default:
		next, err := semver.NewVersion(v.Next)
		if err == nil && t.Version.LessThan(next) {
			c.add(&item{f: report.Finding{
				Rule: RuleTagVersion, Severity: report.SeverityError, Location: loc,
				Message: fmt.Sprintf("HEAD is tagged %s, but the changes since %s need at least %s (%s)", t.Name, orNone(c.opts.Base), v.Next, v.Bump),
				Fix:     fmt.Sprintf("tag %s%s instead (git tag -d %s && git tag %s%s)", prefix, v.Next, t.Name, prefix, v.Next),
			}})
		} else {
			v.Reasons = append(v.Reasons, fmt.Sprintf("HEAD is tagged %s, which the changes since %s allow", t.Name, orNone(c.opts.Base)))
			v.Next = "v" + t.Version.String()
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "the first release"
	}
	return s
}
