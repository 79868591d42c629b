package perf

import (
	"fmt"
	"math"
	"regexp"

	"gopkg.in/yaml.v3"

	"github.com/relcheck/relcheck/config"
)

// Config is the perf section of relcheck.yaml.
type Config struct {
	Benchmarks BenchmarkConfig `yaml:"benchmarks"`
	// Scenarios are parsed by ParseScenarios, which knows their shape.
	Scenarios []yaml.Node `yaml:"scenarios"`
}

// BenchmarkConfig configures the go test -bench part of the perf gate.
type BenchmarkConfig struct {
	Packages []string `yaml:"packages"`
	// Pattern is the -test.bench regular expression.
	Pattern string `yaml:"pattern"`
	// Rounds is the number of interleaved base/head runs per benchmark.
	Rounds int `yaml:"rounds"`
	// Threshold is the slowdown, in percent, that counts as a regression.
	Threshold config.Percent `yaml:"threshold"`
	// Benchtime is -test.benchtime of each run ("100ms", or "1000x").
	Benchtime string `yaml:"benchtime"`
	// Alpha is the one-sided significance level of a regression.
	Alpha float64 `yaml:"alpha"`
	// Mode is how base and head take turns: "duet" (at the same time, one
	// per CPU, judged on each round's paired ratio) or "interleaved" (one
	// after the other, judged on the two samples).
	Mode string `yaml:"mode"`
}

// Modes of the benchmark rounds.
const (
	ModeDuet        = "duet"
	ModeInterleaved = "interleaved"
)

// DefaultConfig is the perf section when relcheck.yaml does not set it.
func DefaultConfig() Config {
	return Config{Benchmarks: BenchmarkConfig{
		Packages: []string{"./..."}, Pattern: ".", Rounds: 10, Threshold: 5, Benchtime: "100ms", Alpha: 0.01, Mode: ModeInterleaved,
	}}
}

// reBenchtime is what go test accepts as -test.benchtime.
var reBenchtime = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m)|[1-9][0-9]*x)$`)

// Validate checks values whose type is right but whose meaning is not. Its
// error is a *config.Error whose Key is relative to the section.
func (c Config) Validate() error {
	b := c.Benchmarks
	bad := func(key, format string, args ...any) error {
		return &config.Error{Key: "benchmarks." + key, Msg: fmt.Sprintf(format, args...)}
	}
	if b.Rounds < 6 || b.Rounds > 1000 {
		return bad("rounds", "must be between 6 and 1000: fewer samples per side cannot show a significant change")
	}
	if !reBenchtime.MatchString(b.Benchtime) {
		return bad("benchtime", "must be a duration like 100ms or 2s, or an iteration count like 1000x")
	}
	if b.Alpha <= 0 || b.Alpha >= 0.5 {
		return bad("alpha", "must be a significance level above 0 and below 0.5 (e.g. 0.01)")
	}
	if p := minOneSidedP(b.Rounds); b.Alpha <= p {
		return bad("alpha", "with %d rounds the smallest possible p-value is %.2g, so no slowdown could ever be significant: raise rounds or alpha", b.Rounds, p)
	}
	if p := math.Pow(2, -float64(b.Rounds)); b.Mode != ModeInterleaved && b.Alpha <= p {
		return bad("rounds", "with %d duet rounds the smallest possible p-value of the signed-rank test is %.2g, not below alpha %g: raise rounds (or alpha), or set mode: interleaved", b.Rounds, p, b.Alpha)
	}
	if b.Threshold < 0 || b.Threshold > 1000 {
		return bad("threshold", "must be between 0%% and 1000%%")
	}
	if b.Mode != "" && b.Mode != ModeDuet && b.Mode != ModeInterleaved {
		return bad("mode", "must be duet or interleaved, not %q", b.Mode)
	}
	if _, err := regexp.Compile(b.Pattern); err != nil {
		return bad("pattern", "not a valid regular expression: %v", err)
	}
	return nil
}

// minOneSidedP is the smallest one-sided p-value of a Mann-Whitney U test
// with n samples per side: 1 / C(2n, n), when every head sample is slower.
func minOneSidedP(n int) float64 {
	p := 1.0
	for i := 1; i <= n; i++ {
		p *= float64(i) / float64(n+i)
	}
	return p
}
