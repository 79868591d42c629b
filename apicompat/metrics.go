package apicompat

import (
	"fmt"
	"go/types"
	"strings"

	"github.com/relcheck/relcheck/report"
)

type pkgCount struct {
	Base int `json:"base"`
	Head int `json:"head"`
}

// metrics counts exported identifiers per package (API minimisation) and lists
// the newly exported ones in the notes.
func (c *comparison) metrics() map[string]any {
	per := map[string]pkgCount{}
	baseSyms := map[string]bool{}
	total, baseTotal := 0, 0
	for _, side := range []*Module{c.base, c.head} {
		if side == nil {
			continue
		}
		for rel, p := range side.Packages {
			n := countIdentifiers(p)
			pc := per[p.Path]
			if side == c.base {
				pc.Base = n
				baseTotal += n
				for _, f := range p.Features() {
					baseSyms[strings.TrimPrefix(rel+"/", "/")+f.Symbol] = true
				}
			} else {
				pc.Head = n
				total += n
			}
			per[p.Path] = pc
		}
	}
	m := map[string]any{"exportedIdentifiers": total, "packages": len(c.head.Packages), "exportedByPackage": per}
	if c.compat != nil {
		m["compatTests"] = c.compat
	}
	if c.base != nil {
		m["exportedIdentifiersBase"] = baseTotal
		var added []string
		for _, rel := range sortedRels(nil, c.head) {
			p := c.head.Packages[rel]
			if p == nil {
				continue
			}
			seen := map[string]bool{}
			for _, f := range p.Features() {
				key := strings.TrimPrefix(rel+"/", "/") + f.Symbol
				if !baseSyms[key] && !seen[f.Symbol] {
					seen[f.Symbol] = true
					added = append(added, p.Path+"."+f.Symbol)
				}
			}
		}
		m["newlyExported"] = len(added)
		if total != baseTotal || len(added) > 0 {
			line := fmt.Sprintf("exported identifiers: %d → %d (%+d)", baseTotal, total, total-baseTotal)
			if len(added) > 0 {
				shown := added
				if len(shown) > 20 {
					shown = append(shown[:20:20], fmt.Sprintf("and %d more", len(added)-20))
				}
				line += "; newly exported: " + strings.Join(shown, ", ")
			}
			c.notes = append([]string{line}, c.notes...)
		}
	}
	return m
}

// countIdentifiers counts a package's exported package-level identifiers,
// exported methods of exported types and exported struct fields.
func countIdentifiers(p *Package) int {
	n := 0
	scope := p.Types.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		n++
		tn, ok := obj.(*types.TypeName)
		if !ok || tn.IsAlias() {
			continue
		}
		named, ok := tn.Type().(*types.Named)
		if !ok {
			continue
		}
		for i := 0; i < named.NumMethods(); i++ {
			if named.Method(i).Exported() {
				n++
			}
		}
		switch u := named.Underlying().(type) {
		case *types.Struct:
			for i := 0; i < u.NumFields(); i++ {
				if u.Field(i).Exported() {
					n++
				}
			}
		case *types.Interface:
			for i := 0; i < u.NumExplicitMethods(); i++ {
				if u.ExplicitMethod(i).Exported() {
					n++
				}
			}
		}
	}
	return n
}

func (c *comparison) summary(chk *report.Check) string {
	var incompatible, added int
	for _, it := range c.items {
		if it.f.Suppressed != "" {
			continue
		}
		if it.incompatible {
			incompatible++
		}
		if it.compatible {
			added++
		}
	}
	var parts []string
	switch incompatible {
	case 0:
	case 1:
		parts = append(parts, "1 incompatible change")
	default:
		parts = append(parts, fmt.Sprintf("%d incompatible changes", incompatible))
	}
	switch added {
	case 0:
	case 1:
		parts = append(parts, "1 compatible change")
	default:
		parts = append(parts, fmt.Sprintf("%d compatible changes", added))
	}
	if len(c.deprecated) > 0 {
		parts = append(parts, plural(len(c.deprecated), "new deprecation"))
	}
	if len(c.undecided) > 0 {
		parts = append(parts, "not compared: "+strings.Join(c.undecided, ", "))
	} else if incompatible == 0 && added == 0 && len(c.deprecated) == 0 {
		if c.base == nil {
			parts = append(parts, fmt.Sprintf("first release: %s, %s", plural(len(c.head.Packages), "package"), plural(chk.Metrics["exportedIdentifiers"].(int), "exported identifier")))
		} else {
			parts = append(parts, "no API change")
		}
	}
	// The renderers add the finding counts.
	return strings.Join(parts, ", ")
}

func plural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return fmt.Sprintf("%d %ss", n, s)
}
