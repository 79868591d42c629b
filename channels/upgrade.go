package channels

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relcheck/relcheck/analysis"
	"github.com/relcheck/relcheck/report"
	"github.com/relcheck/relcheck/telemetry"
)

// Client is an operator's install: its subscription, the repository it
// follows and what it has seen.
type Client struct {
	Sub       *Subscription
	Store     Store
	Verifier  *Verifier
	Installer *Installer
	trust     *Trust
}

// NewClient opens the repository and key of a subscription.
func NewClient(sub *Subscription, log *slog.Logger) (*Client, error) {
	st, err := OpenWith(sub.Repo, sub.Insecure, sub.network())
	if err != nil {
		return nil, err
	}
	v, err := LoadVerifier(sub.Key)
	if err != nil {
		return nil, err
	}
	in := &Installer{Sub: sub, Store: st, Verifier: v, Log: log}
	if sub.Analysis != nil {
		if in.Analyzer, err = analysis.New(*sub.Analysis); err != nil {
			return nil, &report.InputError{Err: fmt.Errorf("analysis: %w", err)}
		}
	}
	// A key this install followed a rotation to replaces the subscribed
	// one: the rotated-out key is not trusted again.
	if _, err := os.Stat(in.followedKeyFile()); err == nil {
		if v, err = LoadVerifier(in.followedKeyFile()); err != nil {
			return nil, err
		}
		in.Verifier = v
	}
	return &Client{Sub: sub, Store: st, Verifier: v, Installer: in, trust: OpenTrust(in.meta())}, nil
}

// Checked is a verified head and the decision taken from it.
type Checked struct {
	Head       *Head
	HeadDigest string
	State      *LocalState
	Decision   *Decision
}

// Check fetches and verifies the channel's head — signature, expiry, no
// rollback below the newest seq seen here — and decides. With record, what
// was seen is remembered: the head's seq, when each release was first seen
// (staging), the time of the check; bad marks from an older head are
// dropped, so a changed head retries them.
func (c *Client) Check(ctx context.Context, o DecideOptions, record bool) (*Checked, error) {
	st, err := c.Installer.LoadState()
	if err != nil {
		return nil, err
	}
	now := c.Installer.now()
	if err := c.followRotations(ctx, record); err != nil {
		return nil, err
	}
	h, d, err := VerifyHead(ctx, c.Store, c.Sub.Repo, c.Sub.Channel, c.Verifier, c.trust, now)
	if err != nil {
		return nil, err
	}
	if err := CheckProject(h, c.Sub.Project); err != nil {
		return nil, err
	}
	if st.FirstSeen == nil {
		st.FirstSeen = map[string]time.Time{}
	}
	for _, r := range h.Releases {
		if _, ok := st.FirstSeen[r.Version]; !ok {
			st.FirstSeen[r.Version] = now
		}
	}
	// Bad marks stay (by digest) through head refreshes and halts of
	// other releases; holds end at their date or when superseded.
	st.expireHolds(h, now)
	st.LastCheck = now
	st.Program, st.Collector = h.Project, h.Collector
	if record {
		if err := c.trust.Record(c.Sub.Repo, h, d.String(), now); err != nil {
			return nil, err
		}
		if err := c.Installer.SaveState(st); err != nil {
			return nil, err
		}
	}
	if c.Sub.Require != nil && o.To == "" && o.Shared == nil {
		o.Shared = c.shared(ctx, h, now)
	}
	dec, err := Decide(c.Sub, st, h, now, o)
	if err != nil {
		return nil, err
	}
	return &Checked{Head: h, HeadDigest: d.String(), State: st, Decision: dec}, nil
}

// WriteMetrics writes the install's state in the Prometheus textfile
// collector's format (node_exporter --collector.textfile.directory),
// atomically.
func WriteMetrics(path string, sub *Subscription, st *LocalState) error {
	var b strings.Builder
	w := func(help, typ, name, labels string, v float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s%s %v\n", name, help, name, typ, name, labels, v)
	}
	lbl := func(kv ...string) string {
		var parts []string
		for i := 0; i+1 < len(kv); i += 2 {
			parts = append(parts, fmt.Sprintf("%s=%q", kv[i], kv[i+1]))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	w("The release this install runs.", "gauge", "relcheck_installed_info", lbl("repo", sub.Repo, "channel", sub.Channel, "version", st.Installed), 1)
	w("Unix time of the last check of the channel.", "gauge", "relcheck_last_check_timestamp_seconds", "", unix(st.LastCheck))
	w("Unix time of the last successful upgrade.", "gauge", "relcheck_last_success_timestamp_seconds", "", unix(st.LastSuccess))
	if n := len(st.Outcomes); n > 0 {
		o := st.Outcomes[n-1]
		w("The last operation's outcome.", "gauge", "relcheck_last_outcome_info", lbl("action", string(o.Action), "result", string(o.Result), "reason_class", o.ReasonClass, "to", o.To), 1)
		w("Unix time of the last operation.", "gauge", "relcheck_last_outcome_timestamp_seconds", "", unix(o.Time))
	}
	w("Releases that failed here and are not tried again until the operator unholds them.", "gauge", "relcheck_bad_releases", "", float64(len(st.Bad)))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeAtomic(path, []byte(b.String()), 0o644)
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.Unix())
}

// shared judges versions against the subscription's requirements, from
// the shared telemetry of the channel's program.
func (c *Client) shared(ctx context.Context, h *Head, now time.Time) func(string) (bool, string) {
	url := c.Sub.Require.Collector
	if url == "" {
		url = h.Collector
	}
	gate, err := telemetry.NewGate(c.Sub.Require.Expr(), url)
	if err != nil {
		return func(string) (bool, string) { return false, err.Error() }
	}
	if url == "" {
		return func(string) (bool, string) {
			return false, "no collector: the channel head announces none and the subscription names none (require.collector)"
		}
	}
	// One bounded request per candidate version, only for the versions
	// Decide asks about.
	return func(version string) (bool, string) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var soak time.Duration
		if r := h.Find(version); r != nil {
			soak = now.Sub(r.Published)
		}
		v, err := gate.Judge(ctx, h.Project, version, soak)
		if err != nil {
			return false, err.Error()
		}
		return v.Result == telemetry.Pass, strings.Join(v.Lines, "; ")
	}
}
