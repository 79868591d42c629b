package apicompat

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/relcheck/relcheck/report"
)

// Features lists the exported API of every public package of the module, in
// report-file order.
func (m *Module) Features() []Feature {
	var all []Feature
	for _, r := range slices.Sorted(maps.Keys(m.Packages)) {
		all = append(all, m.Packages[r].Features()...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].String() < all[j].String() })
	return all
}

// ReportPath returns the API report file's path for a module directory.
func ReportPath(modDir, file string) string {
	if filepath.IsAbs(file) {
		return file
	}
	return filepath.Join(modDir, filepath.FromSlash(file))
}

// reportFile compares the code with the committed API report file.
func (c *comparison) reportFile() {
	file := c.opts.Config.Report
	if file == "" {
		return
	}
	path := ReportPath(c.opts.ModDir, file)
	relFile := file
	if r, err := filepath.Rel(c.opts.Root, path); err == nil {
		relFile = filepath.ToSlash(r)
	}
	fix := fmt.Sprintf("run `relcheck api update` and commit %s, so the API change shows up in review", relFile)
	data, err := os.ReadFile(path)
	if err != nil {
		msg := fmt.Sprintf("cannot read the API report file %s: %v", relFile, err)
		if errors.Is(err, fs.ErrNotExist) {
			msg = fmt.Sprintf("the API report file %s does not exist", relFile)
		}
		c.add(&item{f: report.Finding{Rule: RuleReportMismatch, Severity: report.SeverityError, Message: msg, Location: &report.Location{File: relFile}, Fix: fix}})
		return
	}
	lines, err := ParseReport(data)
	if err != nil {
		c.add(&item{f: report.Finding{Rule: RuleReportMismatch, Severity: report.SeverityError,
			Message: fmt.Sprintf("the API report file %s is malformed: %v", relFile, err), Location: &report.Location{File: relFile}, Fix: fix}})
		return
	}
	inFile := map[string]int{}
	for _, l := range lines {
		inFile[l.Text] = l.Line
	}
	// Group the differences by symbol, so a changed signature is one
	// finding showing both lines rather than a "-" and a "+" far apart.
	type diff struct {
		added   []Feature
		removed []ReportLine
	}
	diffs := map[string]*diff{}
	var order []string
	get := func(sym string) *diff {
		d, ok := diffs[sym]
		if !ok {
			d = &diff{}
			diffs[sym] = d
			order = append(order, sym)
		}
		return d
	}
	inCode := map[string]bool{}
	for _, f := range append(c.head.Features(), c.http...) {
		s := f.String()
		inCode[s] = true
		if _, ok := inFile[s]; !ok {
			d := get(symbolOfLine(f.Line))
			d.added = append(d.added, f)
		}
	}
	for _, l := range lines {
		if !inCode[l.Text] {
			d := get(symbolOfLine(l.Text))
			d.removed = append(d.removed, l)
		}
	}
	for _, sym := range order {
		d := diffs[sym]
		if it := c.changeOf(sym); it != nil {
			// One finding per change: the comparison reported it already.
			// The file is updated once the change is settled; an error's
			// fix undoes the change, and the file then matches again.
			if it.f.Severity != report.SeverityError {
				it.f.Fix += fmt.Sprintf("; record it in %s with `relcheck api update`", relFile)
			}
			continue
		}
		var b strings.Builder
		for _, l := range d.removed {
			b.WriteString("\n- " + l.Text)
		}
		for _, f := range d.added {
			b.WriteString("\n+ " + f.String())
		}
		var msg string
		switch {
		case len(d.added) > 0 && len(d.removed) > 0:
			msg = "changed in the code but not in " + relFile + ":"
		case len(d.added) > 0:
			msg = "not declared in " + relFile + ":"
		default:
			msg = "declared in " + relFile + " but not in the code:"
		}
		var loc *report.Location
		if len(d.added) > 0 {
			f := d.added[0]
			loc = f.Loc
			if loc == nil {
				loc = c.loc(c.head, f.Pos, c.head.Packages[relPath(c.head.Path, f.Pkg)])
			}
		} else {
			loc = &report.Location{File: relFile, Line: d.removed[0].Line}
		}
		c.add(&item{f: report.Finding{
			Rule: RuleReportMismatch, Severity: report.SeverityError,
			Message: msg + b.String(), Symbol: sym, Location: loc, Fix: fix,
		}})
	}
}

// changeOf is the comparison's finding of an API change to sym (a report
// line's "pkg.Name") or to a member of it, or nil.
func (c *comparison) changeOf(sym string) *item {
	for _, it := range c.items {
		if !it.incompatible || it.f.Rule == "" {
			continue
		}
		s := normSymbol(it.f.Symbol)
		if s == sym || strings.HasPrefix(s, sym+".") {
			return it
		}
	}
	return nil
}

// normSymbol writes a finding's symbol ("path.(*T).M", "path.Box[T].Get")
// as a report line's ("path.T.M", "path.Box.Get").
func normSymbol(s string) string {
	if strings.HasPrefix(s, "http ") {
		return s
	}
	i := strings.LastIndex(s, "/")
	j := strings.IndexByte(s[i+1:], '.')
	if j < 0 {
		return s
	}
	cut := i + 1 + j
	return s[:cut+1] + normSym(s[cut+1:])
}

// symbolOfLine extracts "pkg.Name" from a report line, for suppressions;
// an HTTP line's is "http DOC METHOD PATH".
func symbolOfLine(l string) string {
	if rest, ok := strings.CutPrefix(strings.TrimSuffix(l, " //deprecated"), "http "); ok {
		parts := strings.SplitN(rest, ", ", 3)
		if len(parts) >= 2 {
			return "http " + parts[0] + " " + parts[1]
		}
		return "http " + parts[0]
	}
	rest := strings.TrimPrefix(l, "pkg ")
	path, feat, _ := strings.Cut(rest, ", ")
	fields := strings.Fields(feat)
	if len(fields) < 2 {
		return path
	}
	name := fields[1]
	if fields[0] == "method" && len(fields) >= 3 {
		recv := strings.Trim(fields[1], "()*")
		name = recv + "." + fields[2]
	}
	if i := strings.IndexAny(name, "[("); i >= 0 {
		name = name[:i]
	}
	return path + "." + name
}
