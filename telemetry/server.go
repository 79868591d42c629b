package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is the collector: it validates reports, stores them in batches
// and serves the aggregates, a dashboard and its own metrics.
type Server struct {
	store *Store
	// MinInstalls suppresses summary cells fewer reports speak of.
	minInstalls int
	limiter     *limiter
	quota       *netQuota
	noise       *noiser
	now         func() time.Time
	log         *slog.Logger

	maxBatch  int
	batchWait time.Duration
	queue     chan *pending
	done      chan struct{}
	pruneStop chan struct{}
	closeOnce sync.Once
	// stopping turns new reports away (503) once Close began; mu orders
	// it with the senders, so no report is queued after the queue closed.
	mu       sync.RWMutex
	stopping bool

	stats struct {
		stored, duplicate, invalid, tooLarge, limited, failed atomic.Int64
		batches, batched                                      atomic.Int64
		// inStore is the store\'s count at start plus what was stored
		// since: /metrics must not count a million rows per scrape.
		inStore atomic.Int64
	}
}

// ServerOptions configure a collector.
type ServerOptions struct {
	// MinInstalls is k: cells with fewer reports are suppressed (10 when 0).
	MinInstalls int
	// RateLimit is how many reports one client address may send per
	// minute (0: no limit). Addresses are only held in memory, keyed by a
	// per-process secret, and forgotten when idle.
	RateLimit int
	// PerNetworkDay is how many reports one source network (an IPv4 /24,
	// an IPv6 /48) may have counted per day (DefaultPerNetworkDay when 0,
	// no limit when negative).
	PerNetworkDay int
	// Epsilon is the differential-privacy parameter of each published
	// figure (DefaultEpsilon when 0; negative: exact figures, for a
	// private collector or tests).
	Epsilon float64
	// Retention is how long received reports are kept (DefaultRetention
	// when 0); their figures stay in the aggregates. Reports more than a
	// year old are refused anyway, so a pruned id cannot be replayed.
	Retention time.Duration
	// MaxBatch and BatchWait bound a write batch: at most MaxBatch
	// reports (256), and after taking what is queued the writer waits at
	// most BatchWait (200 µs) for more. Every sender waits for its batch,
	// so a longer wait only adds latency.
	MaxBatch  int
	BatchWait time.Duration
	Now       func() time.Time
	Log       *slog.Logger
}

type pending struct {
	r     *Report
	reply chan result
}

type result struct {
	added bool
	err   error
}

// NewServer starts a collector's writer on store.
func NewServer(store *Store, o ServerOptions) *Server {
	s := &Server{store: store, minInstalls: o.MinInstalls, now: o.Now, log: o.Log, maxBatch: o.MaxBatch, batchWait: o.BatchWait,
		queue: make(chan *pending, 4096), done: make(chan struct{})}
	if s.minInstalls == 0 {
		s.minInstalls = 10
	}
	if s.maxBatch == 0 {
		s.maxBatch = 256
	}
	if s.batchWait == 0 {
		s.batchWait = 200 * time.Microsecond
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.RateLimit > 0 {
		s.limiter = newLimiter(o.RateLimit)
	}
	switch {
	case o.PerNetworkDay == 0:
		s.quota = newNetQuota(DefaultPerNetworkDay)
	default:
		s.quota = newNetQuota(max(o.PerNetworkDay, 0))
	}
	eps := o.Epsilon
	if eps == 0 {
		eps = DefaultEpsilon
	}
	s.noise = newNoiser(eps)
	retention := o.Retention
	if retention <= 0 {
		retention = DefaultRetention
	}
	s.prune(retention)
	if n, err := store.Count(context.Background()); err == nil {
		s.stats.inStore.Store(n)
	}
	s.pruneStop = make(chan struct{})
	go func() {
		t := time.NewTicker(24 * time.Hour)
		defer t.Stop()
		for {
			select {
			case <-s.pruneStop:
				return
			case <-t.C:
				s.prune(retention)
			}
		}
	}()
	go s.writer()
	return s
}

// DefaultRetention is how long a collector keeps received reports.
const DefaultRetention = 400 * 24 * time.Hour

// prune deletes the reports older than retention.
func (s *Server) prune(retention time.Duration) {
	n, err := s.store.Prune(context.Background(), s.now().Add(-retention))
	switch {
	case err != nil:
		s.log.Error("pruning old reports", "err", err)
	case n > 0:
		s.log.Info("pruned old reports: their figures stay in the aggregates", "reports", n, "retention", retention)
		s.stats.inStore.Add(-n)
	}
}

// Close stops the writer after the queued reports are stored. Call it
// after the HTTP server shut down.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		close(s.queue)
		close(s.pruneStop)
		s.mu.Unlock()
	})
	<-s.done
}

// writer stores queued reports in batches: one transaction per batch,
// and every sender hears back only after its batch committed.
func (s *Server) writer() {
	defer close(s.done)
	for first := range s.queue {
		batch := []*pending{first}
		// Take what is queued already, then wait a little for more.
	queued:
		for len(batch) < s.maxBatch {
			select {
			case p, ok := <-s.queue:
				if !ok {
					break queued
				}
				batch = append(batch, p)
			default:
				break queued
			}
		}
		timer := time.NewTimer(s.batchWait)
	gather:
		for len(batch) < s.maxBatch {
			select {
			case p, ok := <-s.queue:
				if !ok {
					break gather
				}
				batch = append(batch, p)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		rs := make([]*Report, len(batch))
		for i, p := range batch {
			rs[i] = p.r
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		added, err := s.store.Add(ctx, rs, s.now())
		cancel()
		s.stats.batches.Add(1)
		s.stats.batched.Add(int64(len(batch)))
		if err != nil {
			s.log.Error("storing a batch", "reports", len(batch), "error", err)
		}
		for i, p := range batch {
			if err != nil {
				p.reply <- result{err: err}
				continue
			}
			if added[i] {
				s.stats.inStore.Add(1)
			}
			p.reply <- result{added: added[i]}
		}
	}
}

// Handler serves POST /v1/reports, GET /v1/summary, GET /metrics and the
// dashboard at GET /.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/reports", s.postReport)
	mux.HandleFunc("GET /v1/summary", s.getSummary)
	mux.HandleFunc("GET /metrics", s.getMetrics)
	mux.HandleFunc("GET /{$}", s.getDashboard)
	return mux
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...)})
}

func (s *Server) postReport(w http.ResponseWriter, req *http.Request) {
	if s.limiter != nil && !s.limiter.allow(clientKey(req), s.now()) {
		s.stats.limited.Add(1)
		httpError(w, http.StatusTooManyRequests, "too many reports from this address: at most %d per minute", s.limiter.perMinute)
		return
	}
	// Only JSON: a cross-site form post (text/plain, form encodings)
	// cannot be one.
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.stats.invalid.Add(1)
		httpError(w, http.StatusUnsupportedMediaType, "a report is sent as Content-Type: application/json")
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxReportBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		s.stats.tooLarge.Add(1)
		httpError(w, http.StatusRequestEntityTooLarge, "a report is at most %d bytes", MaxReportBytes)
		return
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, "reading the report: %v", err)
		return
	}
	r, err := Decode(raw, s.now())
	if err != nil {
		s.stats.invalid.Add(1)
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	ok, first := s.quota.take(clientNetwork(req), s.now())
	if !ok {
		s.stats.limited.Add(1)
		httpError(w, http.StatusTooManyRequests, "this network's reports for today are counted (%d): no one network decides the shared figures", s.quota.perDay)
		return
	}
	r.newNetwork = first
	p := &pending{r: r, reply: make(chan result, 1)}
	s.mu.RLock()
	if s.stopping {
		s.mu.RUnlock()
		httpError(w, http.StatusServiceUnavailable, "the collector is stopping; try again later")
		return
	}
	select {
	case s.queue <- p:
	case <-req.Context().Done():
		s.mu.RUnlock()
		return
	}
	s.mu.RUnlock()
	res := <-p.reply
	switch {
	case res.err != nil:
		s.stats.failed.Add(1)
		httpError(w, http.StatusServiceUnavailable, "the report could not be stored; try again later")
	case !res.added:
		s.stats.duplicate.Add(1)
		httpError(w, http.StatusConflict, "report %s was already received: nothing stored", r.ID)
	default:
		s.stats.stored.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "{\"id\":%q,\"stored\":true}\n", r.ID)
	}
}

func (s *Server) query(req *http.Request) Query {
	v := req.URL.Query()
	return Query{Program: v.Get("program"), Channel: v.Get("channel"), Version: v.Get("version"), MinInstalls: s.minInstalls}
}

// Summary is the answer of GET /v1/summary.
type Summary struct {
	MinInstalls int `json:"minInstalls"`
	// Withheld counts the cells with fewer than MinInstalls reports,
	// which are left out.
	Withheld int    `json:"withheld"`
	Cells    []Cell `json:"cells"`
	// Noise, when set, says how the figures were perturbed.
	Noise *Noise `json:"noise,omitempty"`
}

func (s *Server) getSummary(w http.ResponseWriter, req *http.Request) {
	cells, err := s.store.Summary(req.Context(), s.query(req))
	if err != nil {
		httpError(w, http.StatusInternalServerError, "summary: %v", err)
		return
	}
	cells = s.noise.cells(cells)
	shown := []Cell{}
	withheld := 0
	for _, c := range cells {
		if c.Suppressed {
			withheld++
			continue
		}
		shown = append(shown, c)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(Summary{MinInstalls: s.minInstalls, Withheld: withheld, Cells: shown, Noise: s.noise.info()})
}

func (s *Server) getMetrics(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# HELP relcheck_collector_reports_total Reports received, by what became of them.\n# TYPE relcheck_collector_reports_total counter\n")
	for _, r := range []struct {
		label string
		v     *atomic.Int64
	}{{"stored", &s.stats.stored}, {"duplicate", &s.stats.duplicate}, {"invalid", &s.stats.invalid}, {"too_large", &s.stats.tooLarge}, {"rate_limited", &s.stats.limited}, {"failed", &s.stats.failed}} {
		fmt.Fprintf(w, "relcheck_collector_reports_total{result=%q} %d\n", r.label, r.v.Load())
	}
	fmt.Fprintf(w, "# HELP relcheck_collector_batches_total Write transactions.\n# TYPE relcheck_collector_batches_total counter\nrelcheck_collector_batches_total %d\n", s.stats.batches.Load())
	fmt.Fprintf(w, "# HELP relcheck_collector_batched_reports_total Reports written in batches.\n# TYPE relcheck_collector_batched_reports_total counter\nrelcheck_collector_batched_reports_total %d\n", s.stats.batched.Load())
	fmt.Fprintf(w, "# HELP relcheck_collector_queue_length Reports waiting for the writer.\n# TYPE relcheck_collector_queue_length gauge\nrelcheck_collector_queue_length %d\n", len(s.queue))
	fmt.Fprintf(w, "# HELP relcheck_collector_stored_reports Reports in the store: counted at start, plus those this collector stored since.\n# TYPE relcheck_collector_stored_reports gauge\nrelcheck_collector_stored_reports %d\n", s.stats.inStore.Load())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(w, "# HELP relcheck_collector_heap_bytes Go heap in use.\n# TYPE relcheck_collector_heap_bytes gauge\nrelcheck_collector_heap_bytes %d\n", ms.HeapInuse)
	fmt.Fprintf(w, "# HELP relcheck_collector_goroutines Goroutines.\n# TYPE relcheck_collector_goroutines gauge\nrelcheck_collector_goroutines %d\n", runtime.NumGoroutine())
}

// clientKey identifies a request's address for rate limiting only: an
// IPv4 address, or the /64 of an IPv6 one (one host's usual share).
func clientKey(req *http.Request) string { return remotePrefix(req, 32, 64) }

// limiter is a token bucket per client address, in memory only: the
// addresses are keyed by an HMAC with a secret made at start, so not even
// memory holds them in the clear. A bucket idle for a minute is full
// again, so it is dropped: a sweep once a minute keeps only the active.
type limiter struct {
	perMinute int
	secret    []byte
	mu        sync.Mutex
	buckets   map[[32]byte]*bucket
	swept     time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(perMinute int) *limiter {
	secret := make([]byte, 32)
	rand.Read(secret)
	return &limiter{perMinute: perMinute, secret: secret, buckets: map[[32]byte]*bucket{}}
}

func (l *limiter) allow(addr string, now time.Time) bool {
	k := keyed(l.secret, strings.ToLower(addr))
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) >= time.Minute {
		l.swept = now
		for key, b := range l.buckets {
			if now.Sub(b.last) >= time.Minute {
				delete(l.buckets, key)
			}
		}
	}
	b, ok := l.buckets[k]
	if !ok {
		b = &bucket{tokens: float64(l.perMinute), last: now}
		l.buckets[k] = b
	}
	b.tokens = min(float64(l.perMinute), b.tokens+now.Sub(b.last).Minutes()*float64(l.perMinute))
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
