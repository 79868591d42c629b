package apicompat

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/relcheck/relcheck/internal/gitx"
)

// History answers "since which release has this symbol been deprecated?" from
// the release tags, reading package sources at each tag without type-checking.
type History struct {
	// Root is the git repository's top-level directory.
	Root string
	// Tags are the release tags up to and including the base, ascending.
	Tags []Release
	// ModDir is the module directory relative to the repository root ("" or "sub").
	ModDir string

	cache map[string]*docIndex // tag + "\x00" + package dir
}

// DeprecatedSince returns the releases (ascending) in which sym of the package
// at rel was marked deprecated, counting back from the newest tag until the
// first one without the marker.
func (h *History) DeprecatedSince(ctx context.Context, rel, sym string) []Release {
	if h == nil || h.Root == "" {
		return nil
	}
	var since []Release
	for i := len(h.Tags) - 1; i >= 0; i-- {
		ix := h.index(ctx, h.Tags[i], rel)
		if ix == nil {
			break
		}
		if _, ok := ix.deprecated(sym); !ok || (sym != "" && !ix.has(sym) && !ix.has(parentSym(sym))) {
			break
		}
		since = append([]Release{h.Tags[i]}, since...)
	}
	return since
}

// Release is a release tag.
type Release struct {
	Name    string          // as in git, e.g. "v1.4.0" or "sub/v1.4.0"
	Version *semver.Version // parsed from the name without its prefix
	Time    time.Time       // tagger date for annotated tags, else commit date
	Commit  string
}

func (h *History) repo() *gitx.Repo { return &gitx.Repo{Root: h.Root} }

func parentSym(sym string) string {
	if i := strings.IndexByte(sym, '.'); i >= 0 {
		return sym[:i]
	}
	return sym
}

func (h *History) index(ctx context.Context, tag Release, rel string) *docIndex {
	dir := path.Join(h.ModDir, rel)
	key := tag.Name + "\x00" + dir
	if ix, ok := h.cache[key]; ok {
		return ix
	}
	if h.cache == nil {
		h.cache = map[string]*docIndex{}
	}
	var ix *docIndex
	names, err := h.repo().ListFiles(ctx, tag.Commit, dir)
	if err == nil {
		fset := token.NewFileSet()
		var files []*ast.File
		for _, n := range names {
			base := path.Base(n)
			if !strings.HasSuffix(base, ".go") || strings.HasSuffix(base, "_test.go") {
				continue
			}
			src, err := h.repo().ReadFile(ctx, tag.Commit, path.Join(dir, base))
			if err != nil {
				continue
			}
			f, err := parser.ParseFile(fset, base, src, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				continue
			}
			files = append(files, f)
		}
		if len(files) > 0 {
			ix = newDocIndex(files)
		}
	}
	h.cache[key] = ix
	return ix
}

// windowMet reports whether a removal respects the deprecation window, and
// if not, why.
func windowMet(since []Release, minReleases, minDays int, now time.Time) (ok bool, releases int, days int) {
	releases = len(since)
	if releases > 0 {
		days = int(now.Sub(since[0].Time).Hours() / 24)
	}
	return releases >= minReleases && (minDays == 0 || (releases > 0 && days >= minDays)), releases, days
}

// remaining says how much longer a deprecated identifier must stay: the
// releases and days still missing from the deprecation window.
func remaining(releases, days, minReleases, minDays int, now time.Time, since []Release) string {
	var parts []string
	if n := minReleases - releases; n > 0 {
		parts = append(parts, fmt.Sprintf("%d more release(s) with the deprecation", n))
	}
	if minDays > 0 {
		switch {
		case len(since) == 0:
			parts = append(parts, fmt.Sprintf("%d day(s) after the first release that has it", minDays))
		case days < minDays:
			until := since[0].Time.AddDate(0, 0, minDays)
			parts = append(parts, fmt.Sprintf("%d more day(s), until %s", minDays-days, until.Format("2006-01-02")))
		}
	}
	if len(parts) == 0 {
		return "keep it one more release"
	}
	return "keep it for " + strings.Join(parts, " and ")
}
