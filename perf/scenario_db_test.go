package perf

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func families(t testing.TB, text string) map[string]*dto.MetricFamily {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

const before = `# TYPE db_query_duration_seconds histogram
db_query_duration_seconds_bucket{query="a",le="0.01"} 3
db_query_duration_seconds_bucket{query="a",le="+Inf"} 4
db_query_duration_seconds_sum{query="a"} 0.5
db_query_duration_seconds_count{query="a"} 4
db_query_duration_seconds_bucket{query="b",le="+Inf"} 1
db_query_duration_seconds_sum{query="b"} 0.25
db_query_duration_seconds_count{query="b"} 1
# TYPE go_goroutines gauge
go_goroutines 12
# TYPE http_requests_total counter
http_requests_total{code="200"} 100
http_requests_total{code="500"} 2
`

const after = `# TYPE db_query_duration_seconds histogram
db_query_duration_seconds_bucket{query="a",le="+Inf"} 14
db_query_duration_seconds_sum{query="a"} 2.5
db_query_duration_seconds_count{query="a"} 14
db_query_duration_seconds_bucket{query="b",le="+Inf"} 1
db_query_duration_seconds_sum{query="b"} 0.25
db_query_duration_seconds_count{query="b"} 1
# TYPE go_goroutines gauge
go_goroutines 30
# TYPE http_requests_total counter
http_requests_total{code="200"} 180
http_requests_total{code="500"} 2
`

// TestRoundMetrics: what a round did to the program's metrics — the
// increase of a histogram's sum (all series) or count, of a counter, and
// a gauge's level at the end; a metric the program lacks is named.
func TestRoundMetrics(t *testing.T) {
	got, missing := roundMetrics([]string{"db_query_duration_seconds", "db_query_duration_seconds_count", "http_requests_total", "go_goroutines", "nope_total"},
		families(t, before), families(t, after))
	want := map[string]float64{"db_query_duration_seconds": 2, "db_query_duration_seconds_count": 10, "http_requests_total": 80, "go_goroutines": 30}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(missing) != 1 || missing[0] != "nope_total" {
		t.Errorf("missing %v", missing)
	}
}

func FuzzMetricValue(f *testing.F) {
	f.Add(before)
	f.Add("# TYPE x summary\nx_sum 1\nx_count 2\n")
	f.Fuzz(func(t *testing.T, text string) {
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(text))
		if err != nil {
			return
		}
		for name := range fams {
			for _, n := range []string{name, name + "_sum", name + "_count"} {
				metricValue(fams, n)
			}
		}
	})
}
