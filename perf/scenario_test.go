package perf

import (
	"math"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestParseSLO(t *testing.T) {
	for in, want := range map[string]slo{
		"p99 < 50ms":    {metric: "p99", limit: 0.05},
		"p99.9 <= 1s":   {metric: "p99.9", limit: 1, le: true},
		"errors < 0.1%": {metric: "errors", limit: 0.001},
		"mean<200us":    {metric: "mean", limit: 200e-6},
		"max < 2s":      {metric: "max", limit: 2},
	} {
		got, err := parseSLO(in)
		if err != nil || got.metric != want.metric || math.Abs(got.limit-want.limit) > 1e-12 || got.le != want.le {
			t.Errorf("parseSLO(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"p99 > 50ms", "errors < 5ms", "p99 < 1%", "p100 < 1s", "latency < 1s", ""} {
		if _, err := parseSLO(in); err == nil {
			t.Errorf("parseSLO(%q) accepted", in)
		}
	}
	lat := []float64{0.001, 0.002, 0.003, 0.004, 0.1}
	if v := (slo{metric: "p80"}).value(lat, 0, 5); v != 0.004 {
		t.Errorf("p80 = %v", v)
	}
	if v := (slo{metric: "errors"}).value(lat, 1, 5); v != 0.2 {
		t.Errorf("errors = %v", v)
	}
}

func TestParseScenarios(t *testing.T) {
	var doc yaml.Node
	src := "- name: api\n  build: ./cmd/server\n  targets: [{path: /x}]\n  slo: [\"p99 < 50ms\"]\n"
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	scs, err := ParseScenarios("relcheck.yaml", nodes(doc.Content[0].Content))
	if err != nil || len(scs) != 1 {
		t.Fatal(scs, err)
	}
	sc := scs[0]
	if sc.Rate != 50 || sc.Rounds != 6 || sc.Targets[0].Method != "GET" || sc.Ready != "/" || len(sc.slos) != 1 || sc.Line != 1 {
		t.Errorf("defaults: %+v", sc)
	}
	for _, bad := range []string{
		"- {build: ./x, targets: [{path: /x}], rat: 5}",
		"- {build: ./x, targets: [{path: x}]}",
		"- {targets: [{path: /x}]}",
		"- {build: ./x, targets: [{path: /x, methd: GET}]}",
		"- {build: ./x, targets: [{path: /x}], rounds: 3}",
		"- just a string",
	} {
		var d yaml.Node
		if err := yaml.Unmarshal([]byte(bad), &d); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseScenarios("relcheck.yaml", nodes(d.Content[0].Content)); err == nil || !strings.HasPrefix(err.Error(), "relcheck.yaml:1: perf.scenarios[0]") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// FuzzParseScenarios: any perf.scenarios value is accepted or refused with
// a configuration error, never a crash.
func FuzzParseScenarios(f *testing.F) {
	f.Add("- name: api\n  build: ./cmd/server\n  targets: [{path: /x}]\n  slo: [\"p99 < 50ms\", \"errors < 1%\"]\n")
	f.Add("- {build: ./x, targets: [{path: /x}], rate: -1}")
	f.Add("- [1, 2]")
	f.Fuzz(func(t *testing.T, src string) {
		var doc yaml.Node
		if yaml.Unmarshal([]byte(src), &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.SequenceNode {
			return
		}
		ParseScenarios("relcheck.yaml", nodes(doc.Content[0].Content))
	})
}

func nodes(ps []*yaml.Node) []yaml.Node {
	var out []yaml.Node
	for _, p := range ps {
		out = append(out, *p)
	}
	return out
}
