package analysis

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/relcheck/relcheck/config"
)

// SLO is the operator's objective, and the multi-window burn-rate alerts
// evaluated at each sample of a bake (the SRE workbook's: the error
// budget burning B times too fast over a long window and a short one).
type SLO struct {
	// Objective is the share of good events, in percent (99.9).
	Objective float64 `yaml:"objective"`
	// Window is the SLO's period (30d): the budget B× burns in Window/B.
	Window config.Duration `yaml:"window"`
	// Errors and Total are PromQL rates (or counts) of bad and of all
	// events over $window.
	Errors string `yaml:"errors"`
	Total  string `yaml:"total"`
	// Alerts default to the page alert: 14.4× over 1h and 5m.
	Alerts []BurnAlert `yaml:"alerts,omitempty"`
}

// BurnAlert fires when the burn rate exceeds Burn over both windows.
type BurnAlert struct {
	Burn  float64         `yaml:"burn"`
	Long  config.Duration `yaml:"long"`
	Short config.Duration `yaml:"short"`
}

// DefaultAlerts is the SRE workbook's fast-burn page: 2% of a 30-day
// budget in an hour.
var DefaultAlerts = []BurnAlert{{Burn: 14.4, Long: config.Duration(time.Hour), Short: config.Duration(5 * time.Minute)}}

func (s SLO) alerts() []BurnAlert {
	if len(s.Alerts) == 0 {
		return DefaultAlerts
	}
	return s.Alerts
}

// validate checks an SLO; keys are relative to slo.
func (s SLO) validate() (key string, err error) {
	switch {
	case !(s.Objective > 0 && s.Objective < 100):
		return "objective", fmt.Errorf("must be a percentage between 0 and 100 (exclusive), like 99.9")
	case s.Window != 0 && (time.Duration(s.Window) < time.Hour || time.Duration(s.Window) > 366*24*time.Hour):
		return "window", fmt.Errorf("must be between 1h and 366d")
	case !strings.Contains(s.Errors, "$window"):
		return "errors", fmt.Errorf("give the rate of bad events over $window, like sum(rate(http_requests_total{code=~\"5..\"}[$window]))")
	case !strings.Contains(s.Total, "$window"):
		return "total", fmt.Errorf("give the rate of all events over $window, like sum(rate(http_requests_total[$window]))")
	}
	for i, a := range s.Alerts {
		if !(a.Burn > 0) || a.Short <= 0 || a.Long <= a.Short {
			return fmt.Sprintf("alerts[%d]", i), fmt.Errorf("needs burn above 0 and a long window longer than the short one, like {burn: 14.4, long: 1h, short: 5m}")
		}
	}
	return "", nil
}

// BurnError is a burn-rate alert that fired during a bake.
type BurnError struct {
	Alert       BurnAlert
	Long, Short float64
	SLO         SLO
}

func (e *BurnError) Error() string {
	return fmt.Sprintf("burn-rate alert: the error budget of %v%% is burning %.3g× too fast over %s and %.3g× over %s (the alert fires above %v× over both)",
		e.SLO.Objective, e.Long, e.Alert.Long, e.Short, e.Alert.Short, e.Alert.Burn)
}

// burn is the burn rate over window d at at: the error ratio over the
// error budget (1 − objective).
func (a *Analyzer) burn(ctx context.Context, s SLO, d time.Duration, at time.Time) (float64, error) {
	w := promDuration(d)
	bad, err := a.Querier.Query(ctx, strings.ReplaceAll(s.Errors, "$window", w), at)
	if err != nil {
		return 0, err
	}
	all, err := a.Querier.Query(ctx, strings.ReplaceAll(s.Total, "$window", w), at)
	if err != nil {
		return 0, err
	}
	if all <= 0 {
		return 0, nil // no traffic: nothing burns
	}
	return bad / all / (1 - s.Objective/100), nil
}

// checkBurn evaluates the SLO's alerts at at.
func (a *Analyzer) checkBurn(ctx context.Context, at time.Time) error {
	s := a.Config.SLO
	if s == nil {
		return nil
	}
	for _, al := range s.alerts() {
		long, err := a.burn(ctx, *s, time.Duration(al.Long), at)
		if err != nil {
			return fmt.Errorf("slo: %w", err)
		}
		short, err := a.burn(ctx, *s, time.Duration(al.Short), at)
		if err != nil {
			return fmt.Errorf("slo: %w", err)
		}
		if long > al.Burn && short > al.Burn {
			return &BurnError{Alert: al, Long: long, Short: short, SLO: *s}
		}
	}
	return nil
}

// promDuration writes d as a PromQL duration in whole seconds.
func promDuration(d time.Duration) string {
	return fmt.Sprintf("%ds", int64(math.Max(1, math.Round(d.Seconds()))))
}
