package analysis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/relcheck/relcheck/config"
)

// fake answers queries from a script of values per query, one per call;
// an error value is returned as the query's error.
type fake struct {
	values map[string][]any
	calls  map[string]int
}

func (f *fake) Query(_ context.Context, q string, _ time.Time) (float64, error) {
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	vs := f.values[q]
	i := f.calls[q]
	f.calls[q]++
	if i >= len(vs) {
		i = len(vs) - 1
	}
	switch v := vs[i].(type) {
	case float64:
		return v, nil
	case error:
		return 0, v
	}
	panic("bad fake value")
}

func analyzer(q Querier, limit int) *Analyzer {
	c := Config{Prometheus: "http://127.0.0.1:9090", Bake: config.Duration(5 * time.Minute), Interval: config.Duration(time.Minute), FailureLimit: limit,
		SLIs: []SLI{{Name: "error_ratio", Query: "errors", Condition: "< 0.01"}, {Name: "p99_seconds", Query: "p99", Condition: "<= 0.3"}}}
	return &Analyzer{Config: c, Querier: q, Sleep: func(context.Context, time.Duration) error { return nil }}
}

func TestBake(t *testing.T) {
	ctx := context.Background()
	noData := &NoDataError{Query: "errors", Why: "0 series"}
	tests := []struct {
		name    string
		errors  []any
		p99     []any
		limit   int
		failSLI string
		samples int
	}{
		{"passes", []any{0.001}, []any{0.2}, 0, "", 10},
		{"fails at once without tolerance", []any{0.001, 0.05}, []any{0.2}, 0, "error_ratio", 3},
		{"tolerates failureLimit", []any{0.05, 0.001, 0.05, 0.001}, []any{0.2}, 2, "", 10},
		{"fails past failureLimit", []any{0.05, 0.05, 0.05}, []any{0.2}, 2, "error_ratio", 5},
		{"latency", []any{0.001}, []any{0.2, 0.2, 0.5}, 0, "p99_seconds", 6},
		{"no data is a failure", []any{noData}, []any{0.2}, 0, "error_ratio", 1},
		{"at the bound", []any{0.001}, []any{0.3}, 0, "", 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := analyzer(&fake{values: map[string][]any{"errors": tt.errors, "p99": tt.p99}}, tt.limit)
			samples, err := a.Bake(ctx, Baseline{"error_ratio": 0.001}, nil)
			if len(samples) != tt.samples {
				t.Errorf("%d samples, want %d", len(samples), tt.samples)
			}
			var fe *FailedError
			if tt.failSLI == "" {
				if err != nil {
					t.Fatalf("failed: %v", err)
				}
				return
			}
			if !errors.As(err, &fe) || fe.SLI != tt.failSLI {
				t.Fatalf("err %v, want a failure of %s", err, tt.failSLI)
			}
		})
	}
}

func TestFailedMessage(t *testing.T) {
	a := analyzer(&fake{values: map[string][]any{"errors": {0.05}, "p99": {0.2}}}, 0)
	_, err := a.Bake(context.Background(), Baseline{"error_ratio": 0.001}, nil)
	want := "SLI error_ratio failed its condition < 0.01 in 1 sample(s) (failureLimit 0): 0.05 after it, 0.001 before the switch"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestPreflight(t *testing.T) {
	a := analyzer(&fake{values: map[string][]any{"errors": {0.002}, "p99": {errors.New("connection refused")}}}, 0)
	if _, err := a.Preflight(context.Background()); err == nil || !strings.Contains(err.Error(), "SLI p99_seconds cannot be measured before the upgrade, so nothing was switched: connection refused") {
		t.Errorf("preflight: %v", err)
	}
	a = analyzer(&fake{values: map[string][]any{"errors": {0.002}, "p99": {0.1}}}, 0)
	b, err := a.Preflight(context.Background())
	if err != nil || b["error_ratio"] != 0.002 || b["p99_seconds"] != 0.1 {
		t.Errorf("baseline %v, %v", b, err)
	}
}

func TestConditions(t *testing.T) {
	for in, want := range map[string]Condition{"< 0.01": {"<", 0.01}, "<=0.3": {"<=", 0.3}, " > 99.9 ": {">", 99.9}, ">= 1e3": {">=", 1000}} {
		got, err := ParseCondition(in)
		if err != nil || got != want {
			t.Errorf("ParseCondition(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0.01", "< x", "== 1", "< NaN", "<"} {
		if _, err := ParseCondition(bad); err == nil {
			t.Errorf("ParseCondition(%q) accepted", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	good := Config{Prometheus: "http://127.0.0.1:9090", Bake: config.Duration(time.Minute), Interval: config.Duration(10 * time.Second), SLIs: []SLI{{Name: "e", Query: "up", Condition: "> 0"}}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for want, c := range map[string]Config{
		"prometheus":        {Prometheus: "127.0.0.1:9090", SLIs: good.SLIs},
		"slis":              {Prometheus: good.Prometheus},
		"slis[0].condition": {Prometheus: good.Prometheus, SLIs: []SLI{{Name: "e", Query: "up", Condition: "0.01"}}},
		"slis[0].query":     {Prometheus: good.Prometheus, SLIs: []SLI{{Name: "e", Condition: "< 1"}}},
		"slis[1].name":      {Prometheus: good.Prometheus, SLIs: []SLI{good.SLIs[0], good.SLIs[0]}},
		"bake":              {Prometheus: good.Prometheus, SLIs: good.SLIs, Bake: config.Duration(time.Second), Interval: config.Duration(time.Minute)},
		"interval":          {Prometheus: good.Prometheus, SLIs: good.SLIs, Interval: config.Duration(time.Millisecond)},
		"failureLimit":      {Prometheus: good.Prometheus, SLIs: good.SLIs, FailureLimit: -1},
		"baseline":          {Prometheus: good.Prometheus, SLIs: good.SLIs, Baseline: config.Duration(time.Millisecond)},
	} {
		var ce *config.Error
		if err := c.Validate(); !errors.As(err, &ce) || ce.Key != want {
			t.Errorf("%s: %v", want, err)
		}
	}
}

func FuzzParseCondition(f *testing.F) {
	for _, s := range []string{"< 0.01", ">= 3", "<=", "> -1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCondition(s)
		if err != nil {
			return
		}
		if again, err := ParseCondition(c.String()); err != nil || again != c {
			t.Errorf("%q → %v → %v, %v", s, c, again, err)
		}
	})
}

func TestBurnAlerts(t *testing.T) {
	slo := &SLO{Objective: 99.9, Errors: "e[$window]", Total: "t[$window]"}
	run := func(long, short float64) error {
		f := &fake{values: map[string][]any{"e[3600s]": {long}, "t[3600s]": {1.0}, "e[300s]": {short}, "t[300s]": {1.0}, "errors": {0.001}, "p99": {0.1}}}
		a := analyzer(f, 0)
		a.Config.SLO = slo
		_, err := a.Bake(context.Background(), nil, nil)
		return err
	}
	var be *BurnError
	if err := run(0.02, 0.03); !errors.As(err, &be) || !strings.Contains(err.Error(), "burning 20× too fast over 1h0m0s and 30× over 5m0s") {
		t.Errorf("both windows burn: %v", err)
	}
	if err := run(0.005, 0.03); err != nil {
		t.Errorf("only the short window burns (a blip): %v", err)
	}
	if err := run(0.02, 0.001); err != nil {
		t.Errorf("only the long window burns (already over): %v", err)
	}
	bad := Config{Prometheus: "http://127.0.0.1:9090", SLIs: []SLI{{Name: "e", Query: "up", Condition: "> 0"}},
		SLO: &SLO{Objective: 100, Errors: "e[$window]", Total: "t[$window]"}}
	var ce *config.Error
	if err := bad.Validate(); !errors.As(err, &ce) || ce.Key != "slo.objective" {
		t.Errorf("objective 100: %v", err)
	}
	bad.SLO = &SLO{Objective: 99.9, Errors: "e", Total: "t[$window]"}
	if err := bad.Validate(); !errors.As(err, &ce) || ce.Key != "slo.errors" {
		t.Errorf("errors without $window: %v", err)
	}
}
