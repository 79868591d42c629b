package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Querier evaluates a PromQL expression at an instant to one value.
type Querier interface {
	Query(ctx context.Context, query string, at time.Time) (float64, error)
}

// NoDataError: the query returned no series (or more than one), so there
// is no value to judge. Never a pass.
type NoDataError struct{ Query, Why string }

func (e *NoDataError) Error() string { return fmt.Sprintf("%s: %s", e.Query, e.Why) }

// Prometheus queries a Prometheus server's HTTP API.
type Prometheus struct {
	api     promv1.API
	timeout time.Duration
}

// NewPrometheus is a client of the Prometheus at url; each query is
// bounded by timeout.
func NewPrometheus(url string, timeout time.Duration) (*Prometheus, error) {
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		return nil, err
	}
	return &Prometheus{api: promv1.NewAPI(c), timeout: timeout}, nil
}

// Query evaluates query at the instant at: one series or scalar, a finite
// value.
func (p *Prometheus) Query(ctx context.Context, query string, at time.Time) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	v, _, _, err := p.api.Query(ctx, query, at, promv1.WithTimeout(p.timeout))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("no answer within %s: %w", p.timeout, err)
		}
		return 0, err
	}
	var f float64
	switch r := v.(type) {
	case model.Vector:
		if len(r) != 1 {
			return 0, &NoDataError{Query: query, Why: fmt.Sprintf("%d series, want one (aggregate it, e.g. with sum())", len(r))}
		}
		f = float64(r[0].Value)
	case *model.Scalar:
		f = float64(r.Value)
	default:
		return 0, &NoDataError{Query: query, Why: fmt.Sprintf("a %s, want one value", v.Type())}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, &NoDataError{Query: query, Why: fmt.Sprintf("the value is %v (no traffic in the window?)", f)}
	}
	return f, nil
}

// QueryRange evaluates query from start to end at step: the values of its
// one series (none: an empty result).
func (p *Prometheus) QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	v, _, _, err := p.api.QueryRange(ctx, query, promv1.Range{Start: start, End: end, Step: step}, promv1.WithTimeout(p.timeout))
	if err != nil {
		return nil, err
	}
	m, ok := v.(model.Matrix)
	if !ok || len(m) != 1 {
		return nil, &NoDataError{Query: query, Why: "no single series over the range"}
	}
	var out []float64
	for _, sp := range m[0].Values {
		if f := float64(sp.Value); !math.IsNaN(f) && !math.IsInf(f, 0) {
			out = append(out, f)
		}
	}
	return out, nil
}
