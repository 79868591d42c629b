package perf

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
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
// the module at modDir that have benchmarks, into out; the packages whose
// tests do not build are returned apart.
func binaries(ctx context.Context, modDir string, patterns []string, out string) ([]*pkgBin, []*BuildError, error) {
	args := append([]string{"list", "-e", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{len .TestGoFiles}}\t{{len .XTestGoFiles}}\t{{if .Error}}{{.Error.Err | printf \"%q\"}}{{end}}"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = modDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	listing, err := cmd.Output()
	if err != nil {
		return nil, nil, fmt.Errorf("go list %s: %v: %s", strings.Join(patterns, " "), err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []*pkgBin
	var failed []*BuildError
	for _, line := range strings.Split(strings.TrimRight(string(listing), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 5 || (f[2] == "0" && f[3] == "0") || !hasBenchmarks(f[1]) {
			continue
		}
		if f[4] != "" {
			failed = append(failed, &BuildError{Package: f[0], Output: f[4]})
			continue
		}
		rel, err := filepath.Rel(modDir, f[1])
		if err != nil {
			return nil, nil, err
		}
		p := &pkgBin{ImportPath: f[0], Rel: filepath.ToSlash(rel), Dir: f[1], Bin: filepath.Join(out, fmt.Sprintf("%d.test", len(pkgs)))}
		build := exec.CommandContext(ctx, "go", "test", "-c", "-o", p.Bin, p.ImportPath)
		build.Dir = modDir
		if msg, err := build.CombinedOutput(); err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			failed = append(failed, &BuildError{Package: p.ImportPath, Output: strings.TrimSpace(string(msg))})
			continue
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, failed, nil
}

// BuildError is a test binary that does not build.
type BuildError struct {
	Package string
	Output  string
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("building the tests of %s: %s", e.Package, lastLines(e.Output, 15))
}

var reBenchFunc = regexp.MustCompile(`(?m)^func\s+(Benchmark[\p{L}\p{N}_]*)\s*\(\s*(?:[\p{L}\p{N}_]+\s+)?\*testing\.B\s*,?\s*\)`)

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

// HasBenchmarks reports whether any Go package of the module at dir
// (skipping vendor, testdata, hidden directories and nested modules) has
// benchmark functions.
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
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != dir {
				return filepath.SkipDir // another module
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
	Pkg    string             // the "pkg:" configuration in effect
	Values map[string]float64 // by unit: sec/op, B/op, allocs/op, custom
}

// procs is the GOMAXPROCS the benchmarks run with (-test.cpu), so that the
// "-N" suffix the testing package adds (only when N ≠ 1) is known.
var procs = runtime.GOMAXPROCS(0)

// runBinary runs the benchmarks of one package once, with GOMAXPROCS
// cpus, pinned to CPU pin (unpinned when pin < 0).
func runBinary(ctx context.Context, p *pkgBin, pattern, benchtime string, cpus, pin int) (*run, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute) // one run is bounded
	defer cancel()
	cmd := exec.CommandContext(ctx, p.Bin, "-test.run=^$", "-test.bench="+pattern, "-test.benchtime="+benchtime, "-test.benchmem", "-test.count=1", fmt.Sprintf("-test.cpu=%d", cpus))
	cmd.Dir = p.Dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := startPinned(cmd, pin)
	if err == nil {
		err = cmd.Wait()
	}
	r := &run{Raw: out.Bytes(), Elapsed: time.Since(start)}
	if err != nil {
		return r, fmt.Errorf("%s: %v: %s", p.ImportPath, err, lastLines(out.String(), 15))
	}
	r.Results, err = parse(out.Bytes(), p.ImportPath, cpus)
	return r, err
}

// parse reads Go benchmark output; with procs set, the "-procs" suffix of
// the names is removed. Results with values that are not finite are left
// out.
func parse(data []byte, name string, procs int) ([]result, error) {
	var out []result
	rd := benchfmt.NewReader(bytes.NewReader(data), name)
	for rd.Scan() {
		res, ok := rd.Result().(*benchfmt.Result)
		if !ok {
			continue
		}
		// benchfmt drops the "Benchmark" prefix; -test.bench and the
		// source need it.
		n := "Benchmark" + res.Name.String()
		if procs > 1 {
			n = strings.TrimSuffix(n, fmt.Sprintf("-%d", procs))
		}
		r := result{Name: n, Pkg: res.GetConfig("pkg"), Values: map[string]float64{}}
		finite := true
		for _, v := range res.Values {
			r.Values[v.Unit] = v.Value
			finite = finite && !math.IsNaN(v.Value) && !math.IsInf(v.Value, 0) && v.Value >= 0
		}
		if finite {
			out = append(out, r)
		}
	}
	return out, rd.Err()
}

// anchored is a -test.bench pattern that selects exactly these benchmarks
// (full names, sub-benchmarks included): one anchored pattern per name,
// joined by the top-level "|" the testing package splits on.
func anchored(names []string) string {
	var alts []string
	for _, n := range names {
		var levels []string
		for _, part := range strings.Split(n, "/") {
			levels = append(levels, "^"+regexp.QuoteMeta(part)+"$")
		}
		alts = append(alts, strings.Join(levels, "/"))
	}
	return strings.Join(alts, "|")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
