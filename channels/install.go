package channels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relcheck/relcheck/analysis"
	"github.com/relcheck/relcheck/report"
)

// LocalState is what an install remembers between runs, in
// DIR/.relcheck/state.json.
type LocalState struct {
	// Program and Collector are what the channel head last said: the
	// project's name and its telemetry collector.
	Program   string `json:"program,omitempty"`
	Collector string `json:"collector,omitempty"`
	Installed string `json:"installed,omitempty"`
	Digest    string `json:"digest,omitempty"`
	Previous  string `json:"previous,omitempty"`
	// PreviousDigest is the digest of Previous.
	PreviousDigest string `json:"previousDigest,omitempty"`
	// FirstSeen is when each release was first seen on the channel: the
	// start of its local staging schedule.
	FirstSeen map[string]time.Time `json:"firstSeen,omitempty"`
	// Bad are releases that failed here, by version (and digest): not
	// tried again until the operator unholds them.
	Bad map[string]BadMark `json:"bad,omitempty"`
	// Holds are the operator's holds (holds.go).
	Holds       []HoldMark `json:"holds,omitempty"`
	LastCheck   time.Time  `json:"lastCheck,omitzero"`
	LastSuccess time.Time  `json:"lastSuccess,omitzero"`
	// Outcomes are the latest outcomes, newest last.
	Outcomes []Outcome `json:"outcomes,omitempty"`
}

// BadMark is a release that failed on this install.
type BadMark struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	// Digest is the release's: the mark follows it to other version names.
	Digest string `json:"digest,omitempty"`
	// HeadDigest is the head the release was taken from.
	HeadDigest string `json:"headDigest"`
}

// Outcome is the typed result of an operation on an install: what the
// operator's logs and metrics show, and the input of opt-in telemetry.
type Outcome struct {
	Time   time.Time `json:"time"`
	Action Action    `json:"action"`
	From   string    `json:"from,omitempty"`
	To     string    `json:"to,omitempty"`
	// Result is success, rolled_back (switched back after a failure) or
	// failed (nothing changed).
	Result Result `json:"result"`
	// ReasonClass is what failed: download, verify, pre, post, health.
	ReasonClass string `json:"reasonClass,omitempty"`
	Reason      string `json:"reason,omitempty"`
	DurationMs  int64  `json:"durationMs"`
	Hops        int    `json:"hops"`
	// Analysis is what decided a rollback by the metric analysis.
	Analysis *AnalysisFigures `json:"analysis,omitempty"`
	// Analyzed says that a successful outcome's hops also passed the
	// metric analysis (not only their health check).
	Analyzed bool `json:"analyzed,omitempty"`
}

// AnalysisFigures are the figures behind an analysis rollback: the SLI,
// its condition, its values before and after the switch (when it had
// them), or the comparison or alert that decided.
type AnalysisFigures struct {
	SLI       string   `json:"sli"`
	Condition string   `json:"condition,omitempty"`
	Before    *float64 `json:"before,omitempty"`
	After     *float64 `json:"after,omitempty"`
	Why       string   `json:"why,omitempty"`
}

// analysisFigures extracts the figures of an analysis failure, nil for
// any other error.
func analysisFigures(err error) *AnalysisFigures {
	var fe *analysis.FailedError
	var we *analysis.WorseError
	var be *analysis.BurnError
	switch {
	case errors.As(err, &fe):
		f := &AnalysisFigures{SLI: fe.SLI, Condition: fe.Condition.String()}
		if fe.HasBefore {
			b := fe.Before
			f.Before = &b
		}
		if fe.Last.Err == "" {
			a := fe.Last.Value
			f.After = &a
		} else {
			f.Why = fe.Last.Err
		}
		return f
	case errors.As(err, &we):
		return &AnalysisFigures{SLI: we.SLI, Why: we.Why}
	case errors.As(err, &be):
		return &AnalysisFigures{SLI: "slo", Why: be.Error()}
	}
	return nil
}

const maxOutcomes = 50

// hookTimeout bounds a pre, post or rollback hook.
const hookTimeout = 30 * time.Minute

// HopError is a hop that failed and was undone (exit 1).
type HopError struct {
	Outcome Outcome
}

// ExitCode is report.ExitFindings: the hop failed, and was undone.
func (e *HopError) ExitCode() int { return report.ExitFindings }

func (e *HopError) Error() string {
	return fmt.Sprintf("%s %s → %s %s (%s): %s", e.Outcome.Action, orNone(e.Outcome.From), e.Outcome.To, strings.ReplaceAll(string(e.Outcome.Result), "_", " "), e.Outcome.ReasonClass, e.Outcome.Reason)
}

func orNone(v string) string {
	if v == "" {
		return "(nothing)"
	}
	return v
}

// journal is the operation in progress, written before every step so a
// crash can be finished or undone.
type journal struct {
	Action  Action    `json:"action"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to"`
	Digest  string    `json:"digest"`
	Step    string    `json:"step"`
	Started time.Time `json:"started"`
	Head    string    `json:"head,omitempty"`
	// Undo is why a hop is being undone (step "undo").
	Undo string `json:"undo,omitempty"`
	// Baseline is the SLIs' values before the switch and Switched when
	// it first happened, so that a bake interrupted by a crash is judged
	// again on recovery against the same "before".
	Baseline analysis.Baseline `json:"baseline,omitempty"`
	Switched time.Time         `json:"switched,omitzero"`
}

// Steps of a hop, in order, as the journal records them.
var Steps = []string{"download", "pre", "switch", "post", "health", "commit", "undo"}

// Installer installs verified releases into an install directory:
// DIR/versions/VERSION/ holds each version's files, DIR/current links to
// the running one, DIR/.relcheck/ keeps the state, the journal and the
// lock.
type Installer struct {
	Sub      *Subscription
	Store    Store
	Verifier *Verifier
	Log      *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Progress is told of downloaded bytes.
	Progress func(n int64)
	// AfterStep, when set, is called right after the journal durably
	// records a step ("download", "pre", "switch", "post", "health",
	// "commit", …): the crash-safety tests kill the process there.
	AfterStep func(step string)
	// Analyzer, when set, judges each hop after its health check (from
	// the subscription's analysis; NewClient sets it). Sample is told of
	// each of its samples.
	Analyzer *analysis.Analyzer
	Sample   func(analysis.Sample)
	// baseline is the SLIs' values before the first switch of Apply.
	baseline analysis.Baseline
}

func (in *Installer) now() time.Time {
	if in.Now != nil {
		return in.Now().UTC()
	}
	return time.Now().UTC()
}

func (in *Installer) dir(parts ...string) string {
	return filepath.Join(append([]string{in.Sub.InstallDir}, parts...)...)
}

func (in *Installer) meta(parts ...string) string {
	return in.dir(append([]string{".relcheck"}, parts...)...)
}

// Lock takes the install's lock (one operation at a time) and returns its
// release. The lock file records the holder's pid.
func (in *Installer) Lock() (func(), error) {
	if err := os.MkdirAll(in.meta(), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(in.meta("lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(in.meta("lock"))
		f.Close()
		return nil, fmt.Errorf("another relcheck operation is running on %s (pid %s)", in.Sub.InstallDir, strings.TrimSpace(string(pid)))
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		f.Truncate(0)
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// LoadState reads the install's state (empty when new).
func (in *Installer) LoadState() (*LocalState, error) {
	st := &LocalState{}
	raw, err := os.ReadFile(in.meta("state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, st); err != nil {
		return nil, fmt.Errorf("%s: %v", in.meta("state.json"), err)
	}
	return st, nil
}

// SaveState writes the install's state atomically.
func (in *Installer) SaveState(st *LocalState) error {
	if err := os.MkdirAll(in.meta(), 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(in.meta("state.json"), raw, 0o644)
}

func (in *Installer) loadJournal() (*journal, error) {
	raw, err := os.ReadFile(in.meta("journal.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var j journal
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("%s: %v", in.meta("journal.json"), err)
	}
	return &j, nil
}

// step records step in the journal (durably) before it runs.
func (in *Installer) step(j *journal, step string) error {
	j.Step = step
	raw, _ := json.Marshal(j)
	if err := writeAtomic(in.meta("journal.json"), raw, 0o644); err != nil {
		return err
	}
	if in.AfterStep != nil {
		in.AfterStep(step)
	}
	return nil
}

// Current returns the version DIR/current links to ("" when none).
func (in *Installer) Current() (string, error) {
	target, err := os.Readlink(in.dir("current"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return filepath.Base(target), nil
}

// switchTo points DIR/current at version atomically (a new link renamed
// over the old one); "" removes it.
func (in *Installer) switchTo(version string) error {
	cur := in.dir("current")
	if version == "" {
		err := os.Remove(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	tmp := in.dir(".current.tmp")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Join("versions", version), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, cur); err != nil {
		return err
	}
	if d, err := os.Open(in.Sub.InstallDir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Apply carries out a decision hop by hop. A hop that fails after the
// switch is undone: current goes back, the rollback hook runs, the release
// is marked bad here. headDigest identifies the head the decision came
// from.
func (in *Installer) Apply(ctx context.Context, st *LocalState, d *Decision, headDigest string) (*Outcome, error) {
	start := in.now()
	if in.Analyzer != nil && len(d.Path) > 0 {
		// Every SLI is measured once before anything is switched: a
		// Prometheus that cannot answer stops the upgrade here (exit 2).
		b, err := in.Analyzer.Preflight(ctx)
		if err != nil {
			return nil, err
		}
		in.baseline = b
	}
	out := &Outcome{Time: start, Action: d.Action, From: d.From, To: d.Target}
	for _, hop := range d.Path {
		if err := in.hop(ctx, st, d.Action, hop, headDigest); err != nil {
			var he *HopError
			if errors.As(err, &he) {
				he.Outcome.Time, he.Outcome.Action, he.Outcome.From, he.Outcome.To = start, d.Action, d.From, hop.Version
				he.Outcome.DurationMs = time.Since(start).Milliseconds()
				he.Outcome.Hops = out.Hops
				in.record(st, he.Outcome)
			}
			return nil, err
		}
		out.Hops++
	}
	out.Result = Success
	out.Analyzed = in.Analyzer != nil && out.Hops > 0
	out.DurationMs = time.Since(start).Milliseconds()
	st.LastSuccess = in.now()
	in.record(st, *out)
	return out, in.SaveState(st)
}

// record keeps an outcome in the state and logs it.
func (in *Installer) record(st *LocalState, o Outcome) {
	st.Outcomes = append(st.Outcomes, o)
	if len(st.Outcomes) > maxOutcomes {
		st.Outcomes = st.Outcomes[len(st.Outcomes)-maxOutcomes:]
	}
	in.SaveState(st)
	if in.Log != nil {
		level := slog.LevelInfo
		if o.Result != Success {
			level = slog.LevelError
		}
		in.Log.Log(context.Background(), level, "outcome", "event", "outcome", "action", o.Action, "from", o.From, "to", o.To,
			"result", o.Result, "reasonClass", o.ReasonClass, "reason", o.Reason, "durationMs", o.DurationMs, "hops", o.Hops)
	}
}

func (in *Installer) logf(msg string, args ...any) {
	if in.Log != nil {
		in.Log.Info(msg, args...)
	}
}

// hop installs one release and switches to it.
func (in *Installer) hop(ctx context.Context, st *LocalState, action Action, hop Hop, headDigest string) error {
	from := st.Installed
	j := &journal{Action: action, From: from, To: hop.Version, Digest: hop.Digest, Started: in.now(), Head: headDigest, Baseline: in.baseline}
	fail := func(class string, err error) error {
		return &HopError{Outcome: Outcome{Result: Failed, ReasonClass: class, Reason: err.Error()}}
	}
	if err := in.step(j, "download"); err != nil {
		return err
	}
	if err := in.download(ctx, hop, st.Program); err != nil {
		os.Remove(in.meta("journal.json"))
		var ve *VerifyError
		if errors.As(err, &ve) {
			return fail("verify", err)
		}
		return fail("download", err)
	}
	if err := in.step(j, "pre"); err != nil {
		return err
	}
	if err := in.hook(ctx, "pre", in.Sub.PreCmd, from, hop.Version); err != nil {
		os.Remove(in.meta("journal.json"))
		return fail("pre", err)
	}
	return in.finish(ctx, st, j, true)
}

// finish runs a hop from the switch on: switch, post hook, health check,
// commit; or, on failure, undo. post says whether the post hook still has
// to run.
func (in *Installer) finish(ctx context.Context, st *LocalState, j *journal, post bool) error {
	if j.Switched.IsZero() {
		j.Switched = in.now()
	}
	if err := in.step(j, "switch"); err != nil {
		return err
	}
	if err := in.switchTo(j.To); err != nil {
		return err
	}
	in.logf("switched", "event", "switch", "from", j.From, "to", j.To)
	if post {
		if err := in.step(j, "post"); err != nil {
			return err
		}
		if err := in.hook(ctx, "post", in.Sub.PostCmd, j.From, j.To); err != nil {
			return in.undo(ctx, st, j, "post", err)
		}
	}
	if err := in.step(j, "health"); err != nil {
		return err
	}
	if err := in.health(ctx, j.To); err != nil {
		return in.undo(ctx, st, j, "health", err)
	}
	if err := in.analyze(ctx, j); err != nil {
		if ctx.Err() != nil {
			return err // interrupted: the journal has the hop at health
		}
		return in.undo(ctx, st, j, "analysis", err)
	}
	return in.commit(st, j)
}

// analyze bakes the hop: the operator's SLIs sampled for the bake time;
// the deciding failed sample rolls the hop back at once.
func (in *Installer) analyze(ctx context.Context, j *journal) error {
	if in.Analyzer == nil {
		return nil
	}
	in.logf("analysis started", "event", "analysis", "to", j.To, "plan", in.Analyzer.Config.Plan())
	switched := j.Switched
	if switched.IsZero() {
		switched = in.now()
	}
	_, err := in.Analyzer.BakeSince(ctx, j.Baseline, switched, func(s analysis.Sample) {
		in.logf("sample", "event", "sample", "sli", s.SLI, "value", s.Value, "met", s.Met, "error", s.Err)
		if in.Sample != nil {
			in.Sample(s)
		}
	})
	if err == nil {
		in.logf("analysis passed", "event", "analysis", "to", j.To)
	}
	return err
}

// commit records a finished hop.
func (in *Installer) commit(st *LocalState, j *journal) error {
	if err := in.step(j, "commit"); err != nil {
		return err
	}
	if j.From != j.To && st.Installed != j.To { // not again when a crash replays the commit
		st.Previous, st.PreviousDigest = j.From, st.Digest
	}
	st.Installed, st.Digest = j.To, j.Digest
	if err := in.SaveState(st); err != nil {
		return err
	}
	if err := os.Remove(in.meta("journal.json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	in.prune(st)
	return nil
}

// undo switches back after a failed hop, runs the rollback hook and marks
// the release bad here.
func (in *Installer) undo(ctx context.Context, st *LocalState, j *journal, class string, cause error) error {
	// Journalled first: a crash from here on finishes the undo, never
	// goes forward to the release that just failed.
	j.Undo = class + ": " + cause.Error()
	if err := in.step(j, "undo"); err != nil {
		return err
	}
	if err := in.switchTo(j.From); err != nil {
		return fmt.Errorf("%s failed (%v), and switching back to %s failed too: %w", j.To, cause, j.From, err)
	}
	in.logf("switched back", "event", "switch", "from", j.To, "to", j.From)
	if err := in.hook(ctx, "rollback", in.Sub.RollbackCmd, j.To, j.From); err != nil {
		in.logf("rollback hook failed", "event", "hook", "error", err.Error())
	}
	if st.Bad == nil {
		st.Bad = map[string]BadMark{}
	}
	st.Bad[j.To] = BadMark{At: in.now(), Reason: class + ": " + cause.Error(), Digest: j.Digest, HeadDigest: j.Head}
	if err := in.SaveState(st); err != nil {
		return err
	}
	os.Remove(in.meta("journal.json"))
	return &HopError{Outcome: Outcome{Result: RolledBack, ReasonClass: class, Reason: cause.Error(), Analysis: analysisFigures(cause)}}
}

// hook runs a configured command with the hop in its environment.
func (in *Installer) hook(ctx context.Context, name, command, from, to string) error {
	if command == "" {
		return nil
	}
	in.logf("running "+name+" hook", "event", "hook", "hook", name, "command", command)
	if name != "health" { // the health check has its own deadline
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, hookTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	// Its own process group, killed whole at the deadline: a child
	// holding the output pipe must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Dir = in.Sub.InstallDir
	cmd.Env = append(os.Environ(), "RELCHECK_FROM="+from, "RELCHECK_TO="+to, "RELCHECK_INSTALL_DIR="+in.Sub.InstallDir,
		"RELCHECK_CURRENT="+in.dir("current"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s hook %q: %v%s", name, command, err, tail(out))
	}
	return nil
}

func tail(out []byte) string {
	s := strings.TrimSpace(string(out))
	if s == "" {
		return ""
	}
	if len(s) > 500 {
		s = "…" + s[len(s)-500:]
	}
	return ": " + s
}

// health runs the health check until it passes, with retries and a
// deadline.
func (in *Installer) health(ctx context.Context, version string) error {
	if in.Sub.HealthCmd == "" {
		return nil
	}
	timeout := time.Duration(in.Sub.HealthTimeout)
	if timeout == 0 {
		timeout = DefaultHealthTimeout
	}
	retries := in.Sub.HealthRetries
	if retries == 0 {
		retries = DefaultHealthRetries
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	for attempt := 1; attempt <= retries; attempt++ {
		if err = in.hook(ctx, "health", in.Sub.HealthCmd, "", version); err == nil {
			in.logf("healthy", "event", "health", "version", version, "attempt", attempt)
			return nil
		}
		if attempt == retries {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no healthy answer within %s: %v", timeout, err)
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		}
	}
	return fmt.Errorf("unhealthy after %d attempts: %v", retries, err)
}

// download fetches release hop into DIR/versions/VERSION, verifying its
// signature, its metadata and every file's digest. Files already complete
// from an interrupted download are kept.
func (in *Installer) download(ctx context.Context, hop Hop, project string) error {
	final := in.dir("versions", hop.Version)
	if _, err := os.Stat(final); err == nil {
		return nil // verified before it was moved there
	}
	d, err := v1.NewHash(hop.Digest)
	if err != nil {
		return verifyErrorf("%s: %v", hop.Version, err)
	}
	if err := in.Verifier.Verify(ctx, in.Store, d); err != nil {
		return err
	}
	if in.Sub.Policy != nil {
		stmts, err := in.Verifier.Attestations(ctx, in.Store, d)
		if err != nil {
			return err
		}
		if err := in.Sub.Policy.Check(stmts); err != nil {
			return verifyErrorf("%s: %v", hop.Version, err)
		}
	}
	img, err := in.Store.Get(ctx, d)
	if err != nil {
		return err
	}
	meta, err := ReadMetadata(img)
	if err != nil {
		return verifyErrorf("%s (%s): %v: only relcheck releases can be installed", hop.Version, d, err)
	}
	if Core(meta.Version) != Core(hop.Version) {
		return verifyErrorf("the channel lists %s with digest %s, but that artifact is release %s", hop.Version, d, meta.Version)
	}
	if project != "" && meta.Project != "" && meta.Project != project {
		return verifyErrorf("the channel of %s lists %s, a release of %s", project, hop.Version, meta.Project)
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	partial := in.meta("downloads", hop.Version)
	if err := os.MkdirAll(partial, 0o755); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, l := range m.Layers {
		name := l.Annotations[AnnotationTitle]
		if name == "" || name != filepath.Base(name) || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
			return verifyErrorf("%s: a file named %q", hop.Version, name)
		}
		if seen[name] {
			return verifyErrorf("%s: two files named %q", hop.Version, name)
		}
		seen[name] = true
	}
	for _, l := range m.Layers {
		name := l.Annotations[AnnotationTitle]
		mode, err := strconv.ParseUint(l.Annotations[AnnotationMode], 8, 32)
		if err != nil {
			mode = 0o644
		}
		if err := in.fetch(ctx, img, l, filepath.Join(partial, name), os.FileMode(mode)&0o777); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return err
	}
	in.logf("downloaded", "event", "download", "version", hop.Version, "digest", hop.Digest)
	if err := os.Rename(partial, final); err != nil {
		return err
	}
	return syncDir(filepath.Dir(final))
}

// syncDir makes a directory's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// fetch writes one layer to path, unless a complete, verified copy is
// there from an earlier attempt. An interrupted download (path.part) is
// resumed from where it stopped when the store can read a blob from an
// offset; the whole file is verified against the signed digest either way.
func (in *Installer) fetch(ctx context.Context, img v1.Image, l v1.Descriptor, path string, mode os.FileMode) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() == l.Size {
		if h, err := fileDigest(path); err == nil && h == l.Digest.Hex {
			return os.Chmod(path, mode)
		}
	}
	tmp := path + ".part"
	h := sha256.New()
	var have int64
	ranger, canResume := in.Store.(blobRanger)
	if fi, err := os.Stat(tmp); err == nil && canResume && fi.Size() > 0 && fi.Size() < l.Size {
		f, err := os.Open(tmp)
		if err != nil {
			return err
		}
		have, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
	} else {
		h.Reset()
		os.Remove(tmp)
	}
	var rc io.ReadCloser
	var err error
	switch {
	case have > 0:
		rc, err = ranger.BlobFrom(ctx, l.Digest, have)
		if err == nil {
			in.logf("resuming a download", "event", "download", "file", filepath.Base(path), "offset", have)
		}
	case canResume:
		// Straight from the store: the image's LayerByDigest parses the
		// manifest again for every layer.
		rc, err = ranger.BlobFrom(ctx, l.Digest, 0)
	default:
		var layer v1.Layer
		if layer, err = img.LayerByDigest(l.Digest); err == nil {
			rc, err = layer.Compressed()
		}
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	var w io.Writer = io.MultiWriter(f, h)
	if in.Progress != nil {
		w = io.MultiWriter(w, progressWriter(in.Progress))
	}
	n, err := io.Copy(w, io.LimitReader(rc, l.Size-have+1))
	if err == nil {
		err = f.Sync() // on disk before the version can become current
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("downloading %s (kept %d bytes to resume from): %w", filepath.Base(path), have+n, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); have+n != l.Size || got != l.Digest.Hex {
		os.Remove(tmp)
		return verifyErrorf("tampered download: %s has %d bytes with digest sha256:%s, the signed manifest says %d bytes, %s", filepath.Base(path), have+n, got, l.Size, l.Digest)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

type progressWriter func(n int64)

func (p progressWriter) Write(b []byte) (int, error) { p(int64(len(b))); return len(b), nil }

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// prune removes old versions beyond Keep, never the running or the
// previous one.
func (in *Installer) prune(st *LocalState) {
	entries, err := os.ReadDir(in.dir("versions"))
	if err != nil {
		return
	}
	var vs []string
	for _, e := range entries {
		vs = append(vs, e.Name())
	}
	slices.SortFunc(vs, func(a, b string) int { return -compareVersions(a, b) })
	kept := 0
	for _, v := range vs {
		if v == st.Installed || v == st.Previous {
			kept++
			continue
		}
		if kept < in.Sub.keep() {
			kept++
			continue
		}
		os.RemoveAll(in.dir("versions", v))
	}
}

// Recover finishes or undoes an operation a crash interrupted: before the
// switch it is dropped (current never moved); after it, the release is
// checked again and kept if healthy, switched back otherwise. It returns
// nil when there was nothing to recover.
func (in *Installer) Recover(ctx context.Context, st *LocalState) (*Outcome, error) {
	j, err := in.loadJournal()
	if err != nil || j == nil {
		return nil, err
	}
	start := in.now()
	out := &Outcome{Time: start, Action: ActionRecover, From: j.From, To: j.To, Hops: 1}
	cur, err := in.Current()
	if err != nil {
		return nil, err
	}
	in.logf("recovering an interrupted "+string(j.Action), "event", "recover", "from", j.From, "to", j.To, "step", j.Step, "current", cur)
	switch {
	case j.Step == "undo" || ((j.Step == "post" || j.Step == "health") && cur != j.To):
		// An undo was under way (or had switched back already): finish it.
		why := j.Undo
		if why == "" {
			why = "interrupted after switching back"
		}
		class, reason, _ := strings.Cut(why, ": ")
		err := in.undo(ctx, st, j, class, errors.New(reason))
		var he *HopError
		if !errors.As(err, &he) {
			return nil, err
		}
		out.Result, out.ReasonClass, out.Reason = he.Outcome.Result, he.Outcome.ReasonClass, he.Outcome.Reason
	case cur != j.To:
		// current still names the old version: nothing happened.
		if err := os.Remove(in.meta("journal.json")); err != nil {
			return nil, err
		}
		out.Result, out.ReasonClass, out.Reason = Failed, "interrupted", fmt.Sprintf("interrupted at %s, before the switch; %s stays", j.Step, orNone(j.From))
	case j.Step == "commit":
		if err := in.commit(st, j); err != nil {
			return nil, err
		}
		out.Result = Success
	default:
		// Switched: the post hook may not have finished; run it again
		// (hooks must be idempotent), then the health check.
		err := in.finish(ctx, st, j, j.Step != "health")
		var he *HopError
		if errors.As(err, &he) {
			out.Result, out.ReasonClass, out.Reason = he.Outcome.Result, he.Outcome.ReasonClass, he.Outcome.Reason
		} else if err != nil {
			return nil, err
		} else {
			out.Result = Success
			out.Analyzed = in.Analyzer != nil // finish baked the hop again
			st.LastSuccess = in.now()
		}
	}
	out.DurationMs = time.Since(start).Milliseconds()
	in.record(st, *out)
	return out, nil
}

// Rollback switches back to the previous version, with the same hooks and
// checks as a hop.
func (in *Installer) Rollback(ctx context.Context, st *LocalState) (*Outcome, error) {
	if st.Previous == "" {
		return nil, inputErrorf("no previous version to go back to (installed: %s)", orNone(st.Installed))
	}
	if _, err := os.Stat(in.dir("versions", st.Previous)); err != nil {
		return nil, inputErrorf("the previous version %s is no longer on disk", st.Previous)
	}
	d := &Decision{Action: ActionRollback, From: st.Installed, Target: st.Previous}
	start := in.now()
	j := &journal{Action: ActionRollback, From: st.Installed, To: st.Previous, Digest: st.PreviousDigest, Started: start}
	if err := in.hook(ctx, "pre", in.Sub.PreCmd, j.From, j.To); err != nil {
		return nil, &HopError{Outcome: Outcome{Time: start, Action: ActionRollback, From: j.From, To: j.To, Result: Failed, ReasonClass: "pre", Reason: err.Error()}}
	}
	err := in.finish(ctx, st, j, true)
	out := Outcome{Time: start, Action: ActionRollback, From: d.From, To: d.Target, Hops: 1, DurationMs: time.Since(start).Milliseconds()}
	var he *HopError
	if errors.As(err, &he) {
		out.Result, out.ReasonClass, out.Reason = he.Outcome.Result, he.Outcome.ReasonClass, he.Outcome.Reason
		in.record(st, out)
		he.Outcome = out
		return nil, he
	}
	if err != nil {
		return nil, err
	}
	out.Result = Success
	// The operator's decision sticks: the version left is not installed
	// again by the next timer run, until a newer release supersedes it
	// or the operator unholds it.
	st.Hold(HoldMark{Version: out.From, At: in.now(), Reason: "rolled back by the operator", Superseded: true})
	in.record(st, out)
	return &out, nil
}
