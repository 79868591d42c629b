package apicompat

import (
	"fmt"

	"github.com/Masterminds/semver/v3"

	"github.com/relcheck/relcheck/config"
	"github.com/relcheck/relcheck/report"
)

// applySuppressions marks findings matched by api.ignore entries and reports
// expired entries. A suppression's "until" version is compared with the next
// version as it is with the suppressions in force: an entry that allowed a
// break "until v2.0.0" holds while the next version stays below v2.0.0.
func (c *comparison) applySuppressions(v *report.Version) {
	if len(c.opts.Config.Ignore) == 0 {
		return
	}
	type entry struct {
		ig      Ignore
		until   config.Until
		matched []*item
	}
	var entries []*entry
	for _, ig := range c.opts.Config.Ignore {
		e := &entry{ig: ig}
		e.until, _ = config.ParseUntil(ig.Until)
		entries = append(entries, e)
		if ig.Until != "" && e.until.Version == nil && e.until.Expired(nil, c.opts.Now) {
			continue // expired by date: never applied
		}
		for _, it := range c.items {
			if it.f.Rule == ig.Rule && (ig.Symbol == "" || ig.Symbol == it.f.Symbol) && it.f.Suppressed == "" {
				it.f.Suppressed = ig.Reason
				e.matched = append(e.matched, it)
			}
		}
	}
	*v = c.version()
	var next *semver.Version
	if v.Next != "" {
		next, _ = semver.NewVersion(v.Next)
	}
	for _, e := range entries {
		ig := e.ig
		if ig.Until != "" && e.until.Expired(next, c.opts.Now) {
			for _, it := range e.matched {
				it.f.Suppressed = ""
			}
			c.add(&item{f: report.Finding{
				Rule: RuleSuppressionExpired, Severity: report.SeverityError,
				Message:  fmt.Sprintf("suppression of %s for %s expired (until %s); its reason was: %s", ig.Rule, orAll(ig.Symbol), ig.Until, ig.Reason),
				Symbol:   ig.Symbol,
				Location: &report.Location{File: c.opts.ConfigFile, Line: ig.Line},
				Fix:      "fix what it suppressed, or extend until with a new reason",
			}})
			continue
		}
		if len(e.matched) == 0 {
			c.notes = append(c.notes, fmt.Sprintf("suppression of %s for %s (%s:%d) matched nothing; remove it", ig.Rule, orAll(ig.Symbol), c.opts.ConfigFile, ig.Line))
		}
	}
	*v = c.version()
}

func orAll(s string) string {
	if s == "" {
		return "every symbol"
	}
	return s
}
