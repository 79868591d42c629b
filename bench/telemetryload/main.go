// Command telemetryload is a load generator for the telemetry collector
// (relcheck telemetry serve): it POSTs unique, valid reports to
// /v1/reports from -c workers over keep-alive connections, until -n
// reports were sent or -duration passed, whichever comes first, and prints
// the rate, the latency distribution and the status codes.
//
//	go run ./bench/telemetryload -url http://127.0.0.1:8080 -n 100000 -c 32
//
// Reports spread over -versions versions (v1.0.0 …) and -weeks ISO weeks
// (the current one and earlier ones, -week-step apart, all within the year
// the collector accepts), so the collector's aggregate cells are realistic.
// Ids are a random per-run prefix and a counter: unique across runs.
//
// With -get PATH it sends GET requests to PATH instead (e.g.
// "/v1/summary?program=load"), with the same bounds and figures.
//
// -json prints the figures as one JSON object (for scripts).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type options struct {
	url      string
	n        int64
	c        int
	duration time.Duration
	program  string
	channel  string
	versions int
	weeks    int
	weekStep int
	get      string
	timeout  time.Duration
	jsonOut  bool
	progress time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8080", "the collector's base URL (POST URL/v1/reports)")
	flag.Int64Var(&o.n, "n", 10000, "total requests (reports) to send")
	flag.IntVar(&o.c, "c", 32, "concurrency: workers, each with its own keep-alive connection")
	flag.DurationVar(&o.duration, "duration", 120*time.Second, "stop after this long even if -n was not reached")
	flag.StringVar(&o.program, "program", "load", "program name in the reports")
	flag.StringVar(&o.channel, "channel", "stable", "channel in the reports (edge, beta or stable)")
	flag.IntVar(&o.versions, "versions", 1, "spread reports over this many versions v1.0.0 … v1.0.N-1")
	flag.IntVar(&o.weeks, "weeks", 1, "spread reports over this many ISO weeks, the current one and earlier")
	flag.IntVar(&o.weekStep, "week-step", 1, "weeks between two of the -weeks (weeks*step must stay under 53)")
	flag.StringVar(&o.get, "get", "", "GET this path (e.g. /v1/summary?program=load) instead of posting reports")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of one request")
	flag.BoolVar(&o.jsonOut, "json", false, "print the figures as one JSON object")
	flag.DurationVar(&o.progress, "progress", 0, "print progress to stderr this often (0: never)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "telemetryload:", err)
		os.Exit(2)
	}
}

// Result is what a run measured.
type Result struct {
	Mode       string         `json:"mode"`
	Sent       int64          `json:"sent"`
	OK         int64          `json:"ok"` // 2xx
	Errors     int64          `json:"errors"`
	Seconds    float64        `json:"seconds"`
	PerSecond  float64        `json:"per_second"` // 2xx answers per second
	P50        float64        `json:"p50_ms"`
	P90        float64        `json:"p90_ms"`
	P99        float64        `json:"p99_ms"`
	Max        float64        `json:"max_ms"`
	Mean       float64        `json:"mean_ms"`
	Status     map[string]int `json:"status"`
	FirstError string         `json:"first_error,omitempty"`
	TimedOut   bool           `json:"stopped_by_duration"`
}

type worker struct {
	lat    []time.Duration
	status map[int]int
	errs   int64
	first  error
}

func run(o options) error {
	if o.c < 1 || o.n < 1 || o.duration <= 0 {
		return errors.New("-n, -c and -duration must be positive")
	}
	if o.versions < 1 || o.weeks < 1 || o.weekStep < 1 || (o.weeks-1)*o.weekStep > 50 {
		return errors.New("-versions and -weeks must be at least 1, and the weeks within the last 50")
	}
	base, err := url.Parse(strings.TrimRight(o.url, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return fmt.Errorf("-url %q: want http://HOST:PORT", o.url)
	}
	target := base.String() + "/v1/reports"
	mode := "post"
	if o.get != "" {
		mode = "get"
		target = base.String() + "/" + strings.TrimLeft(o.get, "/")
	}
	var prefix [8]byte
	if _, err := rand.Read(prefix[:]); err != nil {
		return err
	}
	idPrefix := hex.EncodeToString(prefix[:])
	now := time.Now().UTC()
	weeks := make([]string, o.weeks)
	for i := range weeks {
		y, w := now.AddDate(0, 0, -7*i*o.weekStep).ISOWeek()
		weeks[i] = fmt.Sprintf("%04d-W%02d", y, w)
	}
	versions := make([]string, o.versions)
	for i := range versions {
		versions[i] = "v1.0." + strconv.Itoa(i)
	}

	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        o.c,
		MaxIdleConnsPerHost: o.c,
		MaxConnsPerHost:     o.c,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	client := &http.Client{Transport: tr, Timeout: o.timeout}
	defer tr.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	var next atomic.Int64 // requests handed out
	var done atomic.Int64 // requests answered (any way)
	workers := make([]*worker, o.c)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &worker{status: map[int]int{}, lat: make([]time.Duration, 0, min(o.n/int64(o.c)+1, 1<<20))}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				seq := next.Add(1) - 1
				if seq >= o.n {
					return
				}
				var req *http.Request
				if mode == "get" {
					req, _ = http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
				} else {
					body := appendReport(make([]byte, 0, 512), idPrefix, seq, o.program, o.channel, versions, weeks)
					req, _ = http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body) // read to the end: keeps the connection
					resp.Body.Close()
				}
				d := time.Since(t0)
				done.Add(1)
				if err != nil {
					if ctx.Err() != nil {
						return // cut by -duration: not an error of the collector
					}
					w.errs++
					if w.first == nil {
						w.first = err
					}
					continue
				}
				w.status[resp.StatusCode]++
				w.lat = append(w.lat, d)
			}
		}()
	}
	stopProgress := make(chan struct{})
	if o.progress > 0 {
		go func() {
			t := time.NewTicker(o.progress)
			defer t.Stop()
			last, lastT := int64(0), start
			for {
				select {
				case <-stopProgress:
					return
				case now := <-t.C:
					d := done.Load()
					fmt.Fprintf(os.Stderr, "telemetryload: %d/%d after %.0fs, %.0f/s now\n", d, o.n, now.Sub(start).Seconds(),
						float64(d-last)/now.Sub(lastT).Seconds())
					last, lastT = d, now
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)

	res := Result{Mode: mode, Seconds: elapsed.Seconds(), Status: map[string]int{}}
	var all []time.Duration
	for _, w := range workers {
		all = append(all, w.lat...)
		res.Errors += w.errs
		if w.first != nil && res.FirstError == "" {
			res.FirstError = w.first.Error()
		}
		for code, k := range w.status {
			res.Status[strconv.Itoa(code)] += k
			if code/100 == 2 {
				res.OK += int64(k)
			}
		}
	}
	res.Sent = int64(len(all)) + res.Errors
	res.TimedOut = ctx.Err() != nil && res.Sent < o.n
	if res.Errors > 0 {
		res.Status["error"] = int(res.Errors)
	}
	res.PerSecond = float64(res.OK) / elapsed.Seconds()
	if len(all) > 0 {
		slices.Sort(all)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		q := func(p float64) float64 { // nearest rank
			i := int(math.Ceil(p*float64(len(all)))) - 1
			return ms(all[max(0, min(i, len(all)-1))])
		}
		res.P50, res.P90, res.P99, res.Max = q(0.50), q(0.90), q(0.99), ms(all[len(all)-1])
		var sum time.Duration
		for _, d := range all {
			sum += d
		}
		res.Mean = ms(sum / time.Duration(len(all)))
	}
	if o.jsonOut {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	what := "reports"
	if mode == "get" {
		what = "GET " + o.get
	}
	fmt.Printf("%s: %d sent in %.2fs with %d workers%s\n", what, res.Sent, res.Seconds, o.c,
		map[bool]string{true: " (stopped by -duration)", false: ""}[res.TimedOut])
	fmt.Printf("rate:     %.0f/s (2xx answers)\n", res.PerSecond)
	fmt.Printf("latency:  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (mean %.2f ms)\n", res.P50, res.P90, res.P99, res.Max, res.Mean)
	codes := make([]string, 0, len(res.Status))
	for c := range res.Status {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	var b strings.Builder
	for _, c := range codes {
		fmt.Fprintf(&b, "  %s: %d", c, res.Status[c])
	}
	fmt.Printf("status:  %s\n", b.String())
	if res.FirstError != "" {
		fmt.Printf("first error: %s\n", res.FirstError)
	}
	return nil
}

// appendReport writes report seq: its id is prefix+seq in hex; its version
// and week cycle so that every (week, version) cell fills evenly.
func appendReport(b []byte, prefix string, seq int64, program, channel string, versions, weeks []string) []byte {
	v := versions[seq%int64(len(versions))]
	week := weeks[(seq/int64(len(versions)))%int64(len(weeks))]
	b = append(b, `{"format":1,"id":"`...)
	b = append(b, prefix...)
	var n [8]byte
	for i := range n {
		n[i] = byte(uint64(seq) >> (56 - 8*i))
	}
	b = hex.AppendEncode(b, n[:])
	b = append(b, `","program":`...)
	b = strconv.AppendQuote(b, program)
	b = append(b, `,"channel":`...)
	b = strconv.AppendQuote(b, channel)
	b = append(b, `,"week":"`...)
	b = append(b, week...)
	b = append(b, `","os":"linux","arch":"amd64","running":"`...)
	b = append(b, v...)
	// One report in 20 is a rollback of the version, the others successes;
	// every report carries a duration bucket.
	outcome := "upgrade.success"
	if seq%20 == 19 {
		outcome = "upgrade.rolled_back.health"
	}
	b = append(b, `","counters":[{"name":"`...)
	b = append(b, outcome...)
	b = append(b, `","version":"`...)
	b = append(b, v...)
	b = append(b, `","value":1},{"name":"upgrade.duration.lt_10s","version":"`...)
	b = append(b, v...)
	b = append(b, `","value":1}]}`...)
	return b
}
