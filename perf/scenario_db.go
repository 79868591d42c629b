package perf

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/relcheck/relcheck/migrations"
)

// ScenarioDatabase gives a scenario's program a real database at each
// side: a throwaway one (the migrations gate's machinery: SQLite, or a
// PostgreSQL cluster relcheck starts itself unless URL names a server),
// with that side's migrations applied and the declared tables seeded to
// production sizes by the migrations gate's seeder. Seeding happens once
// per side; every round runs on a copy of that database (PostgreSQL's
// CREATE DATABASE … TEMPLATE, a file copy for SQLite), so rounds start
// from the same data whatever the previous one wrote, without seeding
// again. The program gets the copy as $DATABASE_URL and as {dsn} in its
// arguments (a postgres:// URL, or the SQLite file's path).
type ScenarioDatabase struct {
	Dialect    string           `yaml:"dialect"`
	Migrations string           `yaml:"migrations"`
	Sizes      map[string]int64 `yaml:"sizes"`
	URL        string           `yaml:"url"`
}

var databaseKeys = []string{"dialect", "migrations", "sizes", "url"}

var reMetricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// validate checks a scenario's database and metrics; key is the
// scenario's key in the configuration.
func (sc *Scenario) validateDB() (key, msg string) {
	if d := sc.Database; d != nil {
		switch {
		case d.Dialect != "postgres" && d.Dialect != "sqlite":
			return ".database.dialect", fmt.Sprintf("must be postgres or sqlite, not %q", d.Dialect)
		case d.URL != "" && d.Dialect != "postgres":
			return ".database.url", "only a postgres database has a server URL"
		case d.URL != "" && !strings.HasPrefix(d.URL, "postgres://") && !strings.HasPrefix(d.URL, "postgresql://"):
			return ".database.url", "must be a postgres:// URL of a server relcheck may create databases on"
		}
		for t, n := range d.Sizes {
			if n < 0 || n > 100_000_000 {
				return ".database.sizes", fmt.Sprintf("%s: row counts must be between 0 and 100000000", t)
			}
		}
	}
	for _, m := range sc.Metrics {
		if !reMetricName.MatchString(m) {
			return ".metrics", fmt.Sprintf("%q is not a Prometheus metric name", m)
		}
	}
	if !strings.HasPrefix(sc.MetricsPath, "/") {
		return ".metricsPath", "must be a path starting with /"
	}
	return "", ""
}

// scenarioDBs are a scenario's databases: the engine and, per side, the
// seeded database the rounds copy.
type scenarioDBs struct {
	eng  migrations.Engine
	tmpl [2]migrations.DB
	// About says how the databases were made, for the report.
	About string
}

// provision makes each side's database (sides without a program are
// skipped).
func (sc *Scenario) provision(ctx context.Context, dirs [2]string, with [2]bool) (*scenarioDBs, error) {
	d := sc.Database
	eng, err := migrations.OpenEngine(ctx, d.Dialect, d.URL)
	if err != nil {
		return nil, &ScenarioError{Msg: fmt.Sprintf("%s: starting the %s database: %v", sc.Name, d.Dialect, err)}
	}
	dbs := &scenarioDBs{eng: eng}
	var sizes []string
	for _, t := range slices.Sorted(maps.Keys(d.Sizes)) {
		sizes = append(sizes, fmt.Sprintf("%s %d rows", t, d.Sizes[t]))
	}
	var problems []string
	start := time.Now()
	for _, side := range []Side{Base, Head} {
		if !with[side] {
			continue
		}
		set, err := migrations.Load(os.DirFS(dirs[side]), orDefault(d.Migrations, "migrations"))
		if err != nil {
			dbs.Close()
			return nil, &ScenarioError{Msg: fmt.Sprintf("%s: the migrations at the %s: %v", sc.Name, side, err)}
		}
		db, probs, err := migrations.Provision(ctx, eng, set, d.Sizes)
		if err != nil {
			dbs.Close()
			return nil, &ScenarioError{Msg: fmt.Sprintf("%s: the database at the %s: %v", sc.Name, side, err)}
		}
		dbs.tmpl[side] = db
		for _, p := range probs {
			problems = append(problems, fmt.Sprintf("at the %s: %s", side, p))
		}
	}
	dbs.About = fmt.Sprintf("%s, each side's migrations applied and seeded (%s) once in %.1f s; every round ran on a fresh copy", d.Dialect, orDefault(strings.Join(sizes, ", "), "no sizes declared"), time.Since(start).Seconds())
	if len(problems) > 0 {
		dbs.About += "; not seeded: " + strings.Join(problems, "; ")
	}
	return dbs, nil
}

// round is a copy of a side's database for one round, and its URL.
func (dbs *scenarioDBs) round(ctx context.Context, side Side) (url string, done func(), err error) {
	c, err := migrations.Clone(ctx, dbs.tmpl[side])
	if err != nil {
		return "", nil, err
	}
	return migrations.URL(c), func() { c.Close() }, nil
}

func (dbs *scenarioDBs) Close() {
	for _, db := range dbs.tmpl {
		if db != nil {
			db.Close()
		}
	}
	dbs.eng.Close()
}

// scrape reads the program's metrics in the Prometheus text format.
func scrape(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(io.LimitReader(resp.Body, 64<<20))
}

// metricValue is a metric's value summed over its series: a counter's,
// histogram's or summary's total (with name_count, a histogram's or
// summary's count), a gauge's level. cumulative says whether what a
// round did is the difference of two scrapes.
func metricValue(fams map[string]*dto.MetricFamily, name string) (v float64, cumulative, ok bool) {
	fam, count := fams[name], false
	if fam == nil {
		for _, suffix := range []string{"_sum", "_count"} {
			if f := fams[strings.TrimSuffix(name, suffix)]; f != nil && strings.HasSuffix(name, suffix) &&
				(f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
				fam, count = f, suffix == "_count"
			}
		}
	}
	if fam == nil {
		return 0, false, false
	}
	for _, m := range fam.GetMetric() {
		switch fam.GetType() {
		case dto.MetricType_COUNTER:
			v += m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			v += m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			if count {
				v += float64(m.GetHistogram().GetSampleCount())
			} else {
				v += m.GetHistogram().GetSampleSum()
			}
		case dto.MetricType_SUMMARY:
			if count {
				v += float64(m.GetSummary().GetSampleCount())
			} else {
				v += m.GetSummary().GetSampleSum()
			}
		default:
			v += m.GetUntyped().GetValue()
		}
	}
	return v, fam.GetType() != dto.MetricType_GAUGE && fam.GetType() != dto.MetricType_UNTYPED, true
}

// roundMetrics is what the round did to each metric: the increase of a
// cumulative one between the scrapes, a gauge's level at the end.
func roundMetrics(names []string, before, after map[string]*dto.MetricFamily) (map[string]float64, []string) {
	out := map[string]float64{}
	var missing []string
	for _, n := range names {
		a, cumulative, ok := metricValue(after, n)
		if !ok {
			missing = append(missing, n)
			continue
		}
		if cumulative {
			b, _, _ := metricValue(before, n)
			a -= b
		}
		out[n] = a
	}
	return out, missing
}
