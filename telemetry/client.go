package telemetry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/relcheck/relcheck/internal/atomicfile"
)

// Mode is what the operator allows.
type Mode string

// The modes: off records nothing; local records to disk only; on also
// uploads.
const (
	Off   Mode = "off"
	Local Mode = "local"
	On    Mode = "on"
)

// Consent is the operator's choice, in $XDG_CONFIG_HOME/relcheck/telemetry.json.
type Consent struct {
	Mode Mode      `json:"mode"`
	Date time.Time `json:"date"`
	// Format is the report format consented to.
	Format int `json:"format"`
	// URL is the collector the operator configured (else the channel
	// head's).
	URL string `json:"url,omitempty"`
}

// Client records an install's telemetry and uploads it when allowed.
type Client struct {
	// ConfigDir holds telemetry.json; StateDir the weekly records.
	ConfigDir, StateDir string
	Getenv              func(string) string
	Now                 func() time.Time
	HTTP                *http.Client
	// Retries bounds the attempts of one upload (3 when zero); Backoff is
	// the first wait between them (1 s when zero), doubled each time.
	Retries int
	Backoff time.Duration
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

func (c *Client) getenv(k string) string {
	if c.Getenv != nil {
		return c.Getenv(k)
	}
	return os.Getenv(k)
}

func (c *Client) consentPath() string { return filepath.Join(c.ConfigDir, "telemetry.json") }

// Consent reads the operator's choice (off when never chosen).
func (c *Client) Consent() (*Consent, error) {
	raw, err := os.ReadFile(c.consentPath())
	if errors.Is(err, fs.ErrNotExist) {
		return &Consent{Mode: Off}, nil
	}
	if err != nil {
		return nil, err
	}
	var con Consent
	if err := json.Unmarshal(raw, &con); err != nil {
		return nil, fmt.Errorf("%s: %v", c.consentPath(), err)
	}
	return &con, nil
}

// SetMode records the operator's choice, consenting to this Format.
func (c *Client) SetMode(m Mode, url string) (*Consent, error) {
	if m != Off && m != Local && m != On {
		return nil, fmt.Errorf("unknown mode %q: use on, off or local", m)
	}
	old, err := c.Consent()
	if err != nil {
		old = &Consent{} // an unreadable choice is replaced by this one
	}
	con := &Consent{Mode: m, Date: c.now(), Format: Format, URL: old.URL}
	if url != "" {
		con.URL = url
	}
	raw, _ := json.MarshalIndent(con, "", "  ")
	if err := os.MkdirAll(c.ConfigDir, 0o755); err != nil {
		return nil, err
	}
	return con, writeFile(c.consentPath(), raw)
}

// Effective returns the mode in force and why, when it differs from the
// operator's choice.
func (c *Client) Effective() (Mode, string, error) {
	if v := c.getenv("DO_NOT_TRACK"); v != "" && v != "0" {
		return Off, "DO_NOT_TRACK is set", nil
	}
	con, err := c.Consent()
	if err != nil {
		return Off, "", err
	}
	switch {
	case con.Mode == On && con.Format != Format:
		return Local, fmt.Sprintf("consent was given for report format %d; format %d asks again ('relcheck telemetry view', then 'relcheck telemetry on')", con.Format, Format), nil
	case con.Mode != On && con.Mode != Local:
		return Off, "", nil // anything but a clear on or local is off
	}
	return con.Mode, "", nil
}

// lock serialises the client's read-modify-writes of its records across
// processes (an upgrade recording while 'telemetry upload' sends).
func (c *Client) lock() (func(), error) {
	if err := os.MkdirAll(c.StateDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(c.StateDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// Event is an outcome of an operation on an install, as telemetry counts
// it.
type Event struct {
	Program, Channel string
	// Running is the version installed after the operation.
	Running string
	// Action is install, upgrade, rollback or recover; To the version
	// attempted; Result success, rolled_back or failed.
	Action, From, To, Result, ReasonClass string
	Duration                              time.Duration
	Hops                                  int
	// Analyzed: a successful upgrade also passed the metric analysis.
	Analyzed bool
}

// week is a week's record on disk: the next report.
type week struct {
	Report
	Sent time.Time `json:"sent,omitzero"`
}

func (c *Client) pendingDir() string { return filepath.Join(c.StateDir, "pending") }
func (c *Client) sentDir() string    { return filepath.Join(c.StateDir, "sent") }

// Record counts an event into this week's report; nothing happens in mode
// off.
func (c *Client) Record(e Event) error {
	return c.updateWeek(func(w *week, cont bool) bool {
		if w.Program == "" || len(w.Counters) == 0 {
			w.Program, w.Channel = e.Program, e.Channel
		}
		if e.Running != "" && !cont {
			// A week continued after its report was sent does not count
			// the install again.
			w.Running = e.Running
		}
		add := func(name, version string, n int64) {
			if version == "" || n == 0 {
				return
			}
			for i := range w.Counters {
				if w.Counters[i].Name == name && w.Counters[i].Version == version {
					w.Counters[i].Value += n
					return
				}
			}
			w.Counters = append(w.Counters, Counter{Name: name, Version: version, Value: n})
		}
		switch e.Action {
		case "rollback":
			if e.Result == "success" {
				add("rollback.manual", e.From, 1)
			}
		default:
			switch e.Result {
			case "success":
				add("upgrade.success", e.To, 1)
				if e.Analyzed {
					add("upgrade.analysis.passed", e.To, 1)
				}
			case "rolled_back", "failed":
				name := "upgrade.rolled_back." + e.ReasonClass
				if _, ok := Counters[name]; !ok {
					return false // nothing this format may say
				}
				add(name, e.To, 1)
			}
			add(DurationBucket(e.Duration), e.To, 1)
			add("upgrade.hops", e.To, int64(e.Hops))
		}
		slices.SortFunc(w.Counters, func(a, b Counter) int {
			return strings.Compare(a.Name+" "+a.Version, b.Name+" "+b.Version)
		})
		return true
	})
}

// Running notes the version this install runs in this week's report, so
// that an install that did nothing this week still counts (nothing in
// mode off).
func (c *Client) Running(program, channel, version string) error {
	if version == "" {
		return nil
	}
	return c.updateWeek(func(w *week, cont bool) bool {
		if cont || (w.Program == program && w.Channel == channel && w.Running == version) {
			return false // sent already with the running version, or no change
		}
		w.Program, w.Channel, w.Running = program, channel, version
		return true
	})
}

// updateWeek changes this week's pending record, created when there is
// none, under the records' lock; change returns false to leave it as it
// was (cont: the week's report was sent and this record continues it).
// Nothing happens in mode off.
func (c *Client) updateWeek(change func(w *week, cont bool) bool) error {
	m, _, err := c.Effective()
	if err != nil || m == Off {
		return err
	}
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	now := c.now()
	w, path, cont, err := c.current(now)
	if err != nil {
		return err
	}
	if w == nil {
		w = &week{Report: Report{Format: Format, ID: newID(), Week: Week(now), OS: runtime.GOOS, Arch: runtime.GOARCH, Counters: []Counter{}}}
	}
	if !change(w, cont) {
		return nil
	}
	raw, _ := json.MarshalIndent(w, "", "  ")
	if err := os.MkdirAll(c.pendingDir(), 0o755); err != nil {
		return err
	}
	return writeFile(path, raw)
}

// current returns this week's pending record (nil if none yet) and its
// path. A week whose report was already sent continues in a new record
// (2026-W47.1) with a new id; cont says so.
func (c *Client) current(now time.Time) (w *week, path string, cont bool, err error) {
	name := Week(now)
	for i := 0; ; i++ {
		file := name + ".json"
		if i > 0 {
			file = fmt.Sprintf("%s.%d.json", name, i)
		}
		if _, err := os.Stat(filepath.Join(c.sentDir(), file)); err == nil {
			continue
		}
		path = filepath.Join(c.pendingDir(), file)
		w, err = readWeek(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, path, i > 0, nil
		}
		return w, path, i > 0, err
	}
}

func readWeek(path string) (*week, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var w week
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &w, nil
}

// Pending lists the reports not sent yet, oldest first, with their files.
func (c *Client) Pending() ([]Report, []string, error) {
	return c.list(c.pendingDir())
}

// Sent lists the reports sent, oldest first: the local history.
func (c *Client) Sent() ([]Report, []string, error) {
	return c.list(c.sentDir())
}

func (c *Client) list(dir string) ([]Report, []string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var rs []Report
	var paths []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		w, err := readWeek(p)
		if err != nil {
			return nil, nil, err
		}
		rs = append(rs, w.Report)
		paths = append(paths, p)
	}
	return rs, paths, nil
}

// ErrNotOn is an upload refused because the mode is not on.
var ErrNotOn = errors.New("telemetry is not on: nothing is sent")

// Upload sends pending reports to url: every past week's, and with
// current this week's too. Nothing is sent unless the mode is on. A report
// the collector answered is moved to the sent history (a duplicate
// counts as delivered); a refused one stays pending with the reason
// returned.
func (c *Client) Upload(ctx context.Context, url string, current bool) (int, error) {
	m, why, err := c.Effective()
	if err != nil {
		return 0, err
	}
	if m != On {
		if why != "" {
			return 0, fmt.Errorf("%w (%s)", ErrNotOn, why)
		}
		return 0, fmt.Errorf("%w (mode %s)", ErrNotOn, m)
	}
	if url == "" {
		return 0, ErrNoURL
	}
	unlock, err := c.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	_, paths, err := c.Pending()
	if err != nil {
		return 0, err
	}
	this := Week(c.now())
	sent := 0
	for _, path := range paths {
		w, err := readWeek(path)
		if err != nil {
			return sent, err
		}
		if w.Week == this && !current {
			continue
		}
		if start, err := WeekStart(w.Week); err != nil || c.now().Sub(start) > maxAge {
			// Too old for any collector to take: aside, not sent.
			if err := c.moveTo(c.refusedDir(), path, w); err != nil {
				return sent, err
			}
			continue
		}
		body, _ := json.Marshal(w.Report)
		err = c.send(ctx, url, body)
		var refused *RefusedReport
		if errors.As(err, &refused) {
			// Never accepted, never retried: kept aside, the rest goes on.
			if merr := c.moveTo(c.refusedDir(), path, w); merr != nil {
				return sent, merr
			}
			continue
		}
		if err != nil {
			return sent, fmt.Errorf("report %s of %s: %w", w.ID, w.Week, err)
		}
		w.Sent = c.now()
		if err := c.moveTo(c.sentDir(), path, w); err != nil {
			return sent, err
		}
		sent++
	}
	return sent, nil
}

// ErrNoURL is an upload without a collector.
var ErrNoURL = errors.New("no collector URL: give --url, or 'relcheck telemetry on --url URL', or ask the maintainers to announce one in the channel head")

// RefusedReport is a report the collector refused for good (a 4xx other
// than a rate limit): it is kept in the refused/ directory.
type RefusedReport struct{ Msg string }

func (e *RefusedReport) Error() string { return e.Msg }

func (c *Client) refusedDir() string { return filepath.Join(c.StateDir, "refused") }

// moveTo writes w into dir and removes its pending file.
func (c *Client) moveTo(dir, path string, w *week) error {
	raw, _ := json.MarshalIndent(w, "", "  ")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, filepath.Base(path)), raw); err != nil {
		return err
	}
	return os.Remove(path)
}

// Due reports whether a past week's report waits to be sent.
func (c *Client) Due() bool {
	rs, _, err := c.Pending()
	if err != nil {
		return false
	}
	this := Week(c.now())
	return slices.ContainsFunc(rs, func(r Report) bool { return r.Week != this })
}

// send posts one report with bounded retries and backoff.
func (c *Client) send(ctx context.Context, url string, body []byte) error {
	client := c.HTTP
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	retries, backoff := c.Retries, c.Backoff
	if retries == 0 {
		retries = 3
	}
	if backoff == 0 {
		backoff = time.Second
	}
	var last error
	for attempt := 1; attempt <= retries; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(url, "/")+"/v1/reports", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err == nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			switch {
			case resp.StatusCode/100 == 2, resp.StatusCode == http.StatusConflict:
				return nil
			case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests:
				return &RefusedReport{Msg: fmt.Sprintf("refused: %s: %s", resp.Status, strings.TrimSpace(string(msg)))}
			}
			last = fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
		} else {
			last = err
		}
		if attempt < retries {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff << (attempt - 1)):
			}
		}
	}
	return fmt.Errorf("gave up after %d attempts: %w", retries, last)
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// writeFile writes data through a temporary file and a rename.
func writeFile(path string, data []byte) error { return atomicfile.Write(path, data, 0o644) }
