package perf

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/perf/benchfmt"
)

// Side is the base or the head.
type Side int

const (
	Base Side = iota
	Head
)

func (s Side) String() string { return [...]string{"base", "head"}[s] }

// pkgBin is one package's test binary on one side.
type pkgBin struct {
	ImportPath string
	Rel        string // the package directory relative to the module root
	Dir        string // the package directory in that side's tree
	Bin        string
}

// binaries builds the test binaries of the packages matching patterns in
// the module at modDir that have benchmarks, into out.
func binaries(ctx context.Context, modDir string, patterns []string, out string) ([]*pkgBin, error) {
	args := append([]string{"list", "-e", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{len .TestGoFiles}}\t{{len .XTestGoFiles}}\t{{if .Error}}{{.Error}}{{end}}"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = modDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	listing, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %v: %s", strings.Join(patterns, " "), err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []*pkgBin
	for _, line := range strings.Split(strings.TrimRight(string(listing), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 5 || (f[2] == "0" && f[3] == "0") || !hasBenchmarks(f[1]) {
			continue
		}
		if f[4] != "" {
			return nil, fmt.Errorf("package %s: %s", f[0], f[4])
		}
		rel, err := filepath.Rel(modDir, f[1])
		if err != nil {
			return nil, err
		}
		p := &pkgBin{ImportPath: f[0], Rel: filepath.ToSlash(rel), Dir: f[1], Bin: filepath.Join(out, fmt.Sprintf("%d.test", len(pkgs)))}
		build := exec.CommandContext(ctx, "go", "test", "-c", "-o", p.Bin, p.ImportPath)
		build.Dir = modDir
		if msg, err := build.CombinedOutput(); err != nil {
			return nil, &BuildError{Package: p.ImportPath, Output: strings.TrimSpace(string(msg))}
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// BuildError is a test binary that does not build.
type BuildError struct {
	Package string
	Output  string
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("building the tests of %s: %s", e.Package, lastLines(e.Output, 15))
}

var reBenchFunc = regexp.MustCompile(`(?m)^func (Benchmark\w*)\(\s*\w+\s+\*testing\.B\s*\)`)

// hasBenchmarks reports whether a package directory has benchmark
// functions in its test files.
func hasBenchmarks(dir string) bool {
	files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil && reBenchFunc.Match(data) {
			return true
		}
	}
	return false
}

// HasBenchmarks reports whether any Go package under dir (skipping
// vendor, testdata and hidden directories) has benchmark functions.
func HasBenchmarks(dir string) bool {
	found := false
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return filepath.SkipDir
		}
		if d.IsDir() {
			n := d.Name()
			if path != dir && (n == "vendor" || n == "testdata" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return filepath.SkipDir
			}
			if hasBenchmarks(path) {
				found = true
				return filepath.SkipAll
			}
		}
		return nil
	})
	return found
}

// locate finds a benchmark function's file and line in a package directory.
func locate(dir, name string) (file string, line int) {
	top, _, _ := strings.Cut(name, "/")
	files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, m := range reBenchFunc.FindAllSubmatchIndex(data, -1) {
			if string(data[m[2]:m[3]]) == top {
				return f, 1 + bytes.Count(data[:m[0]], []byte("\n"))
			}
		}
	}
	return "", 0
}

// run is one execution of a test binary: its benchmark results and output.
type run struct {
	Results []result
	Raw     []byte
	Elapsed time.Duration
}

// result is one benchmark line.
type result struct {
	Name   string             // without the -GOMAXPROCS suffix
	Values map[string]float64 // by unit: sec/op, B/op, allocs/op, custom
}

var reProcs = regexp.MustCompile(`-\d+$`)

// runBinary runs the benchmarks of one package once.
func runBinary(ctx context.Context, p *pkgBin, pattern, benchtime string) (*run, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute) // one run is bounded
	defer cancel()
	cmd := exec.CommandContext(ctx, p.Bin, "-test.run=^$", "-test.bench="+pattern, "-test.benchtime="+benchtime, "-test.benchmem", "-test.count=1")
	cmd.Dir = p.Dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	r := &run{Raw: out.Bytes(), Elapsed: time.Since(start)}
	if err != nil {
		return r, fmt.Errorf("%s: %v: %s", p.ImportPath, err, lastLines(out.String(), 15))
	}
	r.Results, err = parse(out.Bytes(), p.ImportPath)
	return r, err
}

// parse reads Go benchmark output.
func parse(data []byte, name string) ([]result, error) {
	var out []result
	rd := benchfmt.NewReader(bytes.NewReader(data), name)
	for rd.Scan() {
		res, ok := rd.Result().(*benchfmt.Result)
		if !ok {
			continue
		}
		// benchfmt drops the "Benchmark" prefix; -test.bench and the
		// source need it.
		r := result{Name: "Benchmark" + reProcs.ReplaceAllString(res.Name.String(), ""), Values: map[string]float64{}}
		for _, v := range res.Values {
			r.Values[v.Unit] = v.Value
		}
		out = append(out, r)
	}
	return out, rd.Err()
}

// anchored is a -test.bench pattern that selects exactly these benchmarks
// (full names, sub-benchmarks included).
func anchored(names []string) string {
	levels := map[int][]string{}
	depth := 0
	for _, n := range names {
		parts := strings.Split(n, "/")
		depth = max(depth, len(parts))
		for i, p := range parts {
			q := regexp.QuoteMeta(p)
			if !slices.Contains(levels[i], q) {
				levels[i] = append(levels[i], q)
			}
		}
	}
	var out []string
	for i := 0; i < depth; i++ {
		out = append(out, "^("+strings.Join(levels[i], "|")+")$")
	}
	return strings.Join(out, "/")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
