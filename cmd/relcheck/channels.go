package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"golang.org/x/mod/modfile"
	"golang.org/x/term"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/check"
	"github.com/relcheck/relcheck/internal/config"
	"github.com/relcheck/relcheck/report"
	"github.com/relcheck/relcheck/telemetry"
)

// chanOpts are the flags every command that talks to a release
// repository shares.
type chanOpts struct {
	key      string
	insecure bool
	format   string
}

func (o *chanOpts) flags(cmd *cobra.Command, key string) {
	cmd.Flags().StringVar(&o.key, "key", key, "cosign key file")
	cmd.Flags().BoolVar(&o.insecure, "insecure", false, "allow a plain-HTTP registry (loopback registries use it anyway)")
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text or json")
}

func (o *chanOpts) check(cmd *cobra.Command) error {
	if o.format != "text" && o.format != "json" {
		return usagef(cmd, "--format must be text or json, not %q", o.format)
	}
	return nil
}

// checkChannel refuses a --channel that is not edge, beta or stable;
// optional allows "" (every channel).
func checkChannel(cmd *cobra.Command, c string, optional bool) error {
	if (optional && c == "") || channels.ValidChannel(c) {
		return nil
	}
	return usagef(cmd, "--channel must be edge, beta or stable, not %q", c)
}

// requireGate parses --require into a gate on the shared telemetry ("":
// no gate): the release on the lower channel (or on the channel) judged by
// telemetry.Gate, on --collector or the collector the head announces.
func requireGate(cmd *cobra.Command, s *streams, require, collector string) (func(*channels.Release, *channels.Head) error, error) {
	if require == "" {
		return nil, nil
	}
	gate, err := telemetry.NewGate(require, collector)
	if err != nil {
		return nil, usagef(cmd, "--require: %v", err)
	}
	return func(r *channels.Release, h *channels.Head) error {
		g := *gate
		if g.Collector == "" {
			g.Collector = h.Collector
		}
		if g.Collector == "" {
			return &report.InputError{Err: fmt.Errorf("--require needs a collector: --collector URL, or announce one with 'relcheck channel refresh --collector URL'")}
		}
		v, err := g.Judge(cmd.Context(), h.Project, r.Version, time.Since(r.Published))
		if err != nil {
			return err
		}
		fmt.Fprintf(s.err, "relcheck: shared data for %s on %s (%s):\n", r.Version, h.Channel, g.Collector)
		for _, l := range v.Lines {
			fmt.Fprintf(s.err, "  %s\n", l)
		}
		switch v.Result {
		case telemetry.Pass:
			return nil
		case telemetry.Inconclusive:
			return &channels.RefusedError{Msg: fmt.Sprintf("%s: inconclusive — hold: not enough shared data yet", r.Version)}
		}
		return &channels.RefusedError{Msg: fmt.Sprintf("%s: the shared data says no", r.Version)}
	}, nil
}

func (o *chanOpts) open(cmd *cobra.Command, ref string) (channels.Store, error) {
	st, err := channels.Open(ref, o.insecure)
	if err != nil {
		return nil, usagef(cmd, "%v", err)
	}
	return st, nil
}

// writer opens a repository and loads the signing key, for a command that
// writes channel heads.
func (o *chanOpts) writer(cmd *cobra.Command, s *streams, ref string) (channels.Store, *channels.Publisher, error) {
	st, err := o.open(cmd, ref)
	if err != nil {
		return nil, nil, err
	}
	pub, err := o.publisher(s, st, "")
	return st, pub, err
}

// password returns the key password: COSIGN_PASSWORD, or asked on the
// terminal (twice when confirm is set).
func password(s *streams, confirm bool) ([]byte, error) {
	if pw, ok := s.lookup("COSIGN_PASSWORD"); ok {
		return []byte(pw), nil
	}
	in, ok := s.in.(*os.File)
	if !ok || !isTerminal(in) {
		return nil, &report.InputError{Err: fmt.Errorf("no password for the key: set COSIGN_PASSWORD (it may be empty) or run on a terminal")}
	}
	fmt.Fprint(s.err, "Password for the key: ")
	pw, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(s.err)
	if err != nil || !confirm {
		return pw, err
	}
	fmt.Fprint(s.err, "Again: ")
	again, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(s.err)
	if err != nil {
		return nil, err
	}
	if string(again) != string(pw) {
		return nil, &report.InputError{Err: fmt.Errorf("the passwords differ")}
	}
	return pw, nil
}

// publisher loads the signing key for a command that writes a channel.
func (o *chanOpts) publisher(s *streams, st channels.Store, project string) (*channels.Publisher, error) {
	pw, err := password(s, false)
	if err != nil {
		return nil, err
	}
	signer, err := channels.LoadSigner(o.key, pw)
	if err != nil {
		return nil, err
	}
	// A registry has no compare-and-swap on tags: wait this long after
	// moving a head tag before checking that it stuck. A loopback
	// registry answers in milliseconds; a layout has a real lock.
	settle := time.Second
	switch ref := st.String(); {
	case strings.HasPrefix(ref, "oci:"):
		settle = 0
	case strings.HasPrefix(ref, "127.0.0.1:"), strings.HasPrefix(ref, "localhost:"), strings.HasPrefix(ref, "[::1]:"):
		settle = 250 * time.Millisecond
	}
	return &channels.Publisher{Store: st, Signer: signer, Project: project, Settle: settle}, nil
}

func newKeysCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Signing keys",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef(cmd, "missing subcommand: try 'relcheck keys generate'")
		},
	}
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Write cosign.key and cosign.pub (cosign-compatible) in the current directory",
		Long: `Write an encrypted cosign key pair, cosign.key and cosign.pub, in the current
directory, as 'cosign generate-key-pair' does: 'cosign verify --key cosign.pub'
verifies what relcheck signs with cosign.key. The password comes from
COSIGN_PASSWORD, or is asked for on a terminal. Existing files are never
overwritten.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := password(s, true)
			if err != nil {
				return err
			}
			priv, pub, err := channels.GenerateKeys(".", pw)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out, "Private key written to %s\nPublic key written to %s\n", priv, pub)
			return nil
		},
	}
	cmd.AddCommand(gen)
	return cmd
}

func newPublishCmd(s *streams) *cobra.Command {
	var o chanOpts
	var p struct {
		channel, version, image, reportFile, dir, project string
		rollout                                           float64
		security, stop                                    bool
	}
	cmd := &cobra.Command{
		Use:   "publish REPO FILE... | REPO --image REF",
		Short: "Publish a signed release to a channel",
		Long: `Push a release to REPO (a registry repository, or oci:DIR for a local OCI
image layout) as one OCI artifact: its metadata as the config, one layer per
FILE titled with the file's name and keeping its mode, so 'oras pull' gets the
files back. With --image, an existing container image is signed and put on
the channel instead (copied into REPO when it lives elsewhere).

The release is signed with cosign's format (cosign verify --key cosign.pub
REPO@DIGEST checks it), tagged with its version, and added to the channel's
signed head (tag channel.CHANNEL); the plain tag CHANNEL follows the newest
release rolled out to everyone.

The version: --version V, or derived from the gates as 'relcheck version next
--channel C' does (edge: vX.Y.Z-0.TIME.gHASH of the commit; beta: -beta.N;
stable: vX.Y.Z), using the next version of --report FILE (a JSON report of
'relcheck check') when given. A version that exists is refused (exit 2).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return usagef(cmd, "give the repository, then the files")
			}
			if p.image == "" && len(args) < 2 {
				return usagef(cmd, "give the files to release after %s, or --image REF", args[0])
			}
			if p.image != "" && len(args) > 1 {
				return usagef(cmd, "--image and files exclude each other")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(cmd); err != nil {
				return err
			}
			if err := checkChannel(cmd, p.channel, false); err != nil {
				return err
			}
			if !(p.rollout >= 0 && p.rollout <= 100) {
				return usagef(cmd, "--rollout must be between 0 and 100")
			}
			ctx := cmd.Context()
			st, err := o.open(cmd, args[0])
			if err != nil {
				return err
			}
			meta := channels.Metadata{Project: p.project, Created: time.Now().UTC(), RequiredStop: p.stop}
			next := ""
			if p.reportFile != "" {
				if next, err = readReportFacts(p.reportFile, &meta); err != nil {
					return err
				}
			}
			// One repository holds one project's releases.
			if have := existingProject(ctx, st); have != "" {
				if meta.Project != "" && meta.Project != have {
					return &report.InputError{Err: fmt.Errorf("%s holds releases of %s, not %s: publish %s elsewhere (or pass --project %s)", args[0], have, meta.Project, meta.Project, have)}
				}
				meta.Project = have
			}
			if meta.Project == "" {
				meta.Project = projectName(p.dir, args[0])
			}
			version := p.version
			if version == "" {
				if version, err = deriveVersion(ctx, p.dir, p.channel, next, st); err != nil {
					return err
				}
			}
			version, _, err = channels.ParseVersion(version)
			if err != nil {
				return &report.InputError{Err: fmt.Errorf("--version: %v", err)}
			}
			meta.Version = version
			if meta.Commit == "" {
				meta.Commit = headCommit(ctx, p.dir)
			}
			pub, err := o.publisher(s, st, meta.Project)
			if err != nil {
				return err
			}
			var img v1.Image
			if p.image != "" {
				if img, err = channels.RemoteImage(ctx, p.image, o.insecure); err != nil {
					return err
				}
			} else {
				bar := &byteBar{w: s.err, tty: isTerminal(s.err), label: "pushing " + version}
				for _, f := range args[1:] {
					if fi, err := os.Stat(f); err == nil {
						bar.total += fi.Size()
					}
				}
				if img, err = channels.NewRelease(meta, args[1:], bar.add); err != nil {
					return &report.InputError{Err: err}
				}
				defer bar.finish()
			}
			d, h, err := pub.Publish(ctx, img, channels.PublishOptions{Version: version, Channel: p.channel, Rollout: p.rollout, Security: p.security})
			if err != nil {
				return err
			}
			if out := s.getenv("GITHUB_OUTPUT"); out != "" {
				if err := appendFile(out, []byte(fmt.Sprintf("version=%s\ndigest=%s\n", version, d))); err != nil {
					return fmt.Errorf("writing the step outputs: %w", err)
				}
			}
			return printHeadChange(s, o.format, st, h, version, d, fmt.Sprintf("published %s to %s", version, p.channel))
		},
	}
	o.flags(cmd, channels.PrivateKeyFile)
	f := cmd.Flags()
	f.StringVar(&p.channel, "channel", "edge", "channel: edge, beta or stable")
	f.StringVar(&p.version, "version", "", "the release's version (default: derived from the gates)")
	f.StringVar(&p.image, "image", "", "sign and channel this existing container image instead of files")
	f.StringVar(&p.reportFile, "report", "", "JSON report of 'relcheck check' for this commit (version, API bump, migration facts)")
	f.StringVar(&p.dir, "repo", ".", "the project's git repository")
	f.StringVar(&p.project, "project", "", "project name (default: the Go module's last element)")
	f.Float64Var(&p.rollout, "rollout", 100, "percentage of installs offered the release")
	f.BoolVar(&p.security, "security", false, "mark the release as a security fix")
	f.BoolVar(&p.stop, "required-stop", false, "mark the release as a stop every upgrade path must pass through")
	return cmd
}

// readReportFacts takes a release's facts from relcheck check's JSON
// report, and returns the next version it derived.
func readReportFacts(path string, meta *channels.Metadata) (next string, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", &report.InputError{Err: fmt.Errorf("--report: %w", err)}
	}
	var rep report.Report
	if err := json.Unmarshal(raw, &rep); err != nil || rep.SchemaVersion == 0 {
		return "", &report.InputError{Err: fmt.Errorf("--report %s: not a JSON report of relcheck check (%v)", path, err)}
	}
	if rep.Status == report.StatusFail || rep.Status == report.StatusError {
		return "", &report.InputError{Err: fmt.Errorf("--report %s: the check did not pass; a release must pass it (status %s)", path, rep.Status)}
	}
	meta.Report = fmt.Sprintf("sha256:%x", sha256.Sum256(raw))
	if rep.Version != nil {
		meta.APIBump = rep.Version.Bump
		next = rep.Version.Next
	}
	for _, c := range rep.Checks {
		if c.Name != "migrations" || c.Metrics == nil {
			continue
		}
		if facts, ok := c.Metrics["schema"]; ok {
			b, _ := json.Marshal(facts)
			var mf channels.MigrationFacts
			if err := json.Unmarshal(b, &mf); err == nil {
				meta.Migrations = &mf
			}
		}
	}
	return next, nil
}

// deriveVersion is the version publish gives a release when --version is
// not set: next (or the gates' next version) made the channel's version,
// counting the betas already in the repository.
func deriveVersion(ctx context.Context, dir, channel, next string, st channels.Store) (string, error) {
	tags, err := st.Tags(ctx)
	if err != nil {
		return "", err
	}
	v, err := check.NextVersion(ctx, dir, channel, next, tags)
	if err != nil {
		return "", fmt.Errorf("no --version: %w", err)
	}
	return v, nil
}

// existingProject is the project the repository's channel heads name, or
// "" when it has none yet.
func existingProject(ctx context.Context, st channels.Store) string {
	for _, c := range channels.Names {
		if h, _, err := channels.ReadHead(ctx, st, c, nil); err == nil && h.Project != "" {
			return h.Project
		}
	}
	return ""
}

// headCommit is the commit dir's HEAD names, or "".
func headCommit(ctx context.Context, dir string) string {
	env, err := check.Resolve(ctx, check.Options{Dir: dir})
	if err != nil {
		return ""
	}
	out, err := env.Repo.Git(ctx, "rev-parse", "HEAD")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// projectName is the Go module's last path element, or the repository's.
func projectName(dir, ref string) string {
	if raw, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
		if mp := modfile.ModulePath(raw); mp != "" {
			parts := strings.Split(mp, "/")
			last := parts[len(parts)-1]
			if len(parts) > 1 && strings.HasPrefix(last, "v") {
				if _, err := strconv.Atoi(last[1:]); err == nil {
					last = parts[len(parts)-2]
				}
			}
			return last
		}
	}
	ref = strings.TrimPrefix(ref, "oci:")
	return filepath.Base(strings.TrimRight(ref, "/"))
}

// byteBar shows the bytes of a push: a bar redrawn in place on a
// terminal, a line per quarter otherwise (for large pushes only).
type byteBar struct {
	w     io.Writer
	tty   bool
	label string
	total int64

	mu       sync.Mutex
	n        int64
	start    time.Time
	last     time.Time
	quarters int64
	reported bool
}

func (b *byteBar) add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if b.start.IsZero() {
		b.start = now
	}
	b.n += n
	if b.n >= b.total && b.total > 0 {
		b.report(now)
		return
	}
	if b.tty {
		if now.Sub(b.last) < 100*time.Millisecond && b.n < b.total {
			return
		}
		b.last = now
		const width = 24
		k := int(int64(width) * min(b.n, b.total) / max(1, b.total))
		fmt.Fprintf(b.w, "\r\033[Krelcheck: %s [%s%s] %s/%s", b.label, strings.Repeat("#", k), strings.Repeat(".", width-k), mib(b.n), mib(b.total))
		return
	}
	if b.total >= 16<<20 {
		if q := 4 * min(b.n, b.total) / b.total; q > b.quarters && q < 4 {
			b.quarters = q
			fmt.Fprintf(b.w, "relcheck: %s %d%% (%s of %s)\n", b.label, 25*q, mib(b.n), mib(b.total))
		}
	}
}

// finish ends the bar with a summary line, unless all bytes were read
// and it is there already.
func (b *byteBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.report(time.Now())
}

// report prints the summary line once.
func (b *byteBar) report(now time.Time) {
	if b.start.IsZero() || b.reported {
		return // nothing was read (every blob was already there), or said
	}
	b.reported = true
	if b.tty {
		fmt.Fprint(b.w, "\r\033[K")
	}
	if b.tty || b.total >= 16<<20 {
		fmt.Fprintf(b.w, "relcheck: %s: %s in %s\n", b.label, mib(b.n), now.Sub(b.start).Round(10*time.Millisecond))
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// headChange is what a command that wrote a channel prints.
type headChange struct {
	Repo    string    `json:"repo"`
	Channel string    `json:"channel"`
	Version string    `json:"version,omitempty"`
	Digest  string    `json:"digest,omitempty"`
	Seq     uint64    `json:"seq"`
	Expires time.Time `json:"expires"`
	Head    string    `json:"head"`
}

func printHeadChange(s *streams, format string, st channels.Store, h *channels.Head, version string, d v1.Hash, what string) error {
	c := headChange{Repo: st.String(), Channel: h.Channel, Version: version, Seq: h.Seq, Expires: h.Expires, Head: channels.HeadTag(h.Channel)}
	if d != (v1.Hash{}) {
		c.Digest = d.String()
	}
	if format == "json" {
		data, _ := json.MarshalIndent(c, "", "  ")
		fmt.Fprintf(s.out, "%s\n", data)
		return nil
	}
	fmt.Fprintf(s.out, "%s\n", what)
	if c.Digest != "" {
		fmt.Fprintf(s.out, "  release  %s@%s\n", st, c.Digest)
	}
	fmt.Fprintf(s.out, "  head     %s:%s, seq %d, signed, expires %s\n", st, c.Head, h.Seq, h.Expires.Format(time.RFC3339))
	return nil
}

func newPromoteCmd(s *streams) *cobra.Command {
	var o chanOpts
	var to, soak, require, collector string
	var rollout float64
	cmd := &cobra.Command{
		Use:   "promote REPO VERSION --to beta|stable",
		Short: "Put a release on a safer channel: the same digest, the channel's version",
		Long: `Add release VERSION, found on a lower channel, to beta (as vX.Y.Z-beta.N) or
stable (as vX.Y.Z): the same digest under a new version tag, never rebuilt.
A halted release is refused, and so is one that has been on the lower channel
for less than --min-soak (exit 1). --rollout offers it to that share of
installs first ('relcheck rollout' widens it).`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(cmd); err != nil {
				return err
			}
			if to != "beta" && to != "stable" {
				return usagef(cmd, "--to must be beta or stable, not %q", to)
			}
			if !(rollout >= 0 && rollout <= 100) {
				return usagef(cmd, "--rollout must be between 0 and 100")
			}
			minSoak, err := config.ParseDuration(soak)
			if err != nil {
				return usagef(cmd, "--min-soak: %v", err)
			}
			st, pub, err := o.writer(cmd, s, args[0])
			if err != nil {
				return err
			}
			gate, err := requireGate(cmd, s, require, collector)
			if err != nil {
				return err
			}
			opts := channels.PromoteOptions{To: to, Rollout: rollout, MinSoak: minSoak, Gate: gate}
			target, h, err := pub.Promote(cmd.Context(), args[1], opts)
			if err != nil {
				return err
			}
			r := h.Find(target)
			d, _ := v1.NewHash(r.Digest)
			return printHeadChange(s, o.format, st, h, target, d, fmt.Sprintf("promoted %s to %s as %s, rollout %v%%", args[1], to, target, r.Rollout))
		},
	}
	o.flags(cmd, channels.PrivateKeyFile)
	cmd.Flags().StringVar(&to, "to", "", "the channel: beta or stable")
	cmd.Flags().Float64Var(&rollout, "rollout", 100, "percentage of installs offered the release")
	cmd.Flags().StringVar(&soak, "min-soak", "0s", "time the release must have spent on the lower channel (e.g. 72h, 3d)")
	cmd.Flags().StringVar(&require, "require", "", "what the shared telemetry must say first, e.g. 'installs>=20,rollback_rate<1%,soak>=72h'")
	cmd.Flags().StringVar(&collector, "collector", "", "the telemetry collector (default: the one the lower channel's head announces)")
	return cmd
}

func newRolloutCmd(s *streams) *cobra.Command {
	var o chanOpts
	var channel, require, collector string
	var percent float64
	cmd := &cobra.Command{
		Use:   "rollout REPO VERSION --channel C --percent P",
		Short: "Widen a phased rollout",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(cmd); err != nil {
				return err
			}
			if err := checkChannel(cmd, channel, false); err != nil {
				return err
			}
			if !cmd.Flags().Changed("percent") {
				return usagef(cmd, "give --percent")
			}
			st, pub, err := o.writer(cmd, s, args[0])
			if err != nil {
				return err
			}
			gate, err := requireGate(cmd, s, require, collector)
			if err != nil {
				return err
			}
			h, err := pub.Rollout(cmd.Context(), args[1], channel, percent, gate)
			if err != nil {
				return err
			}
			return printHeadChange(s, o.format, st, h, args[1], v1.Hash{}, fmt.Sprintf("%s on %s now offered to %v%% of installs", args[1], channel, percent))
		},
	}
	o.flags(cmd, channels.PrivateKeyFile)
	cmd.Flags().StringVar(&channel, "channel", "", "the channel")
	cmd.Flags().Float64Var(&percent, "percent", 0, "percentage of installs offered the release")
	cmd.Flags().StringVar(&require, "require", "", "what the shared telemetry must say first, e.g. 'installs>=50,rollback_rate<1%'")
	cmd.Flags().StringVar(&collector, "collector", "", "the telemetry collector (default: the one the head announces)")
	return cmd
}

func newHaltCmd(s *streams) *cobra.Command {
	var o chanOpts
	var channel, rollbackTo string
	cmd := &cobra.Command{
		Use:   "halt REPO VERSION --channel C [--rollback-to V]",
		Short: "Stop a release on a channel, optionally sending its installs back",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(cmd); err != nil {
				return err
			}
			if err := checkChannel(cmd, channel, false); err != nil {
				return err
			}
			st, pub, err := o.writer(cmd, s, args[0])
			if err != nil {
				return err
			}
			h, err := pub.Halt(cmd.Context(), args[1], channel, rollbackTo)
			if err != nil {
				return err
			}
			what := fmt.Sprintf("halted %s on %s", args[1], channel)
			if rollbackTo != "" {
				what += ", installs go back to " + rollbackTo
			}
			return printHeadChange(s, o.format, st, h, args[1], v1.Hash{}, what)
		},
	}
	o.flags(cmd, channels.PrivateKeyFile)
	cmd.Flags().StringVar(&channel, "channel", "", "the channel")
	cmd.Flags().StringVar(&rollbackTo, "rollback-to", "", "an older release on the channel that installs should go back to")
	return cmd
}

// stateDir is where relcheck keeps what a client has seen.
func stateDir(s *streams) string {
	if d := s.getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "relcheck")
	}
	home := s.getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".local", "state", "relcheck")
}

// verifiedHeads verifies the heads of a channel (all present ones when
// channel is empty) with the key, as channels.VerifyHeads does, in this
// user's trust store.
func verifiedHeads(ctx context.Context, s *streams, st channels.Store, channel, key string) ([]channels.VerifiedHead, error) {
	v, err := channels.LoadVerifier(key)
	if err != nil {
		return nil, err
	}
	var names []string
	if channel != "" {
		names = []string{channel}
	}
	return channels.VerifyHeads(ctx, st, names, v, channels.OpenTrust(stateDir(s)), time.Now())
}

func newChannelCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "channel",
		Short: "Show, refresh and walk release channels",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef(cmd, "missing subcommand: try 'relcheck channel show REPO'")
		},
	}
	var so chanOpts
	var showChannel string
	show := &cobra.Command{
		Use:   "show REPO",
		Short: "Print the channels' heads after verifying them",
		Long: `Fetch each channel's head (or --channel's), verify it — signed by --key,
not expired, not older than a head seen before, every release signed and
what the head says it is — and print it. Exit 1 when verification fails.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := so.check(cmd); err != nil {
				return err
			}
			if err := checkChannel(cmd, showChannel, true); err != nil {
				return err
			}
			st, err := so.open(cmd, args[0])
			if err != nil {
				return err
			}
			heads, err := verifiedHeads(cmd.Context(), s, st, showChannel, so.key)
			if err != nil {
				return err
			}
			if so.format == "json" {
				data, _ := json.MarshalIndent(struct {
					Repo     string                  `json:"repo"`
					Channels []channels.VerifiedHead `json:"channels"`
				}{st.String(), heads}, "", "  ")
				fmt.Fprintf(s.out, "%s\n", data)
				return nil
			}
			for i, h := range heads {
				if i > 0 {
					fmt.Fprintln(s.out)
				}
				printHead(s.out, st, h)
			}
			return nil
		},
	}
	so.flags(show, channels.PublicKeyFile)
	show.Flags().StringVar(&showChannel, "channel", "", "only this channel")

	var ro chanOpts
	var refreshChannel, collector string
	refresh := &cobra.Command{
		Use:   "refresh REPO",
		Short: "Re-sign the channels' heads with a new seq and expiry (run it from a scheduled job)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := ro.check(cmd); err != nil {
				return err
			}
			names := channels.Names
			if refreshChannel != "" {
				if err := checkChannel(cmd, refreshChannel, false); err != nil {
					return err
				}
				names = []string{refreshChannel}
			}
			st, pub, err := ro.writer(cmd, s, args[0])
			if err != nil {
				return err
			}
			done := 0
			for _, c := range names {
				var col *string
				if cmd.Flags().Changed("collector") {
					col = &collector
				}
				h, err := pub.Refresh(cmd.Context(), c, col)
				if errors.Is(err, channels.ErrNotFound) && refreshChannel == "" {
					continue
				}
				if err != nil {
					return err
				}
				done++
				if err := printHeadChange(s, ro.format, st, h, "", v1.Hash{}, fmt.Sprintf("refreshed %s", c)); err != nil {
					return err
				}
			}
			if done == 0 {
				return &report.InputError{Err: fmt.Errorf("%s has no channels to refresh", st)}
			}
			return nil
		},
	}
	ro.flags(refresh, channels.PrivateKeyFile)
	refresh.Flags().StringVar(&refreshChannel, "channel", "", "only this channel")
	refresh.Flags().StringVar(&collector, "collector", "", "announce this telemetry collector URL in the heads (\"\" removes it)")

	var po chanOpts
	var from, to, pathChannel string
	path := &cobra.Command{
		Use:   "path REPO --from V1 --to V2",
		Short: "Print the upgrade path from V1 to V2 through the required stops",
		Long: `Print the releases an upgrade from V1 to V2 must pass through on a channel
(stable by default): the required stops between them — releases that
deprecated a schema object a later release drops, or that the maintainer
marked — then V2. The head is verified first, as channel show does.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := po.check(cmd); err != nil {
				return err
			}
			if from == "" || to == "" {
				return usagef(cmd, "give --from and --to")
			}
			if err := checkChannel(cmd, pathChannel, false); err != nil {
				return err
			}
			st, err := po.open(cmd, args[0])
			if err != nil {
				return err
			}
			heads, err := verifiedHeads(cmd.Context(), s, st, pathChannel, po.key)
			if err != nil {
				return err
			}
			path, err := channels.Path(heads[0].Head, from, to)
			if err != nil {
				return err
			}
			if po.format == "json" {
				data, _ := json.MarshalIndent(struct {
					Channel string             `json:"channel"`
					From    string             `json:"from"`
					To      string             `json:"to"`
					Path    []channels.Release `json:"path"`
				}{pathChannel, from, to, path}, "", "  ")
				fmt.Fprintf(s.out, "%s\n", data)
				return nil
			}
			fmt.Fprintf(s.out, "%s", from)
			for _, r := range path {
				fmt.Fprintf(s.out, " → %s", r.Version)
			}
			fmt.Fprintln(s.out)
			for _, r := range path[:len(path)-1] {
				fmt.Fprintf(s.out, "  %s is a required stop: %s\n", r.Version, r.StopReason)
			}
			return nil
		},
	}
	po.flags(path, channels.PublicKeyFile)
	path.Flags().StringVar(&from, "from", "", "the installed version")
	path.Flags().StringVar(&to, "to", "", "the target version")
	path.Flags().StringVar(&pathChannel, "channel", "stable", "the channel")

	var pro chanOpts
	var pruneChannel string
	var keep int
	prune := &cobra.Command{
		Use:   "prune REPO --channel C --keep N",
		Short: "Keep a channel's head small: offer only the newest N releases (and every stop)",
		Long: `Drop all but the newest --keep releases from a channel's signed head. Required
stops, rollback targets and the release the plain tag follows stay. The
artifacts and their version tags stay in the repository; the channel just
stops offering them (a head must stay under 1 MiB for clients to read it).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := pro.check(cmd); err != nil {
				return err
			}
			if err := checkChannel(cmd, pruneChannel, false); err != nil {
				return err
			}
			st, pub, err := pro.writer(cmd, s, args[0])
			if err != nil {
				return err
			}
			dropped, h, err := pub.Prune(cmd.Context(), pruneChannel, keep)
			if err != nil {
				return err
			}
			return printHeadChange(s, pro.format, st, h, "", v1.Hash{}, fmt.Sprintf("pruned %s: %d release(s) no longer offered, %d kept", pruneChannel, len(dropped), len(h.Releases)))
		},
	}
	pro.flags(prune, channels.PrivateKeyFile)
	prune.Flags().StringVar(&pruneChannel, "channel", "", "the channel")
	prune.Flags().IntVar(&keep, "keep", 50, "how many of the newest releases stay")

	cmd.AddCommand(show, refresh, path, prune)
	return cmd
}

// printHead prints a verified head as a table.
func printHead(w io.Writer, st channels.Store, h channels.VerifiedHead) {
	fmt.Fprintf(w, "%s  channel %s  seq %d  issued %s  expires %s  (signature verified)\n",
		st, h.Channel, h.Seq, h.Issued.Format(time.RFC3339), h.Expires.Format(time.RFC3339))
	if len(h.Releases) == 0 {
		fmt.Fprintln(w, "  no releases")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VERSION\tROLLOUT\tPUBLISHED\tDIGEST\tNOTES")
	for i := len(h.Releases) - 1; i >= 0; i-- {
		r := h.Releases[i]
		var notes []string
		if r.Halted {
			n := "HALTED"
			if r.RollbackTo != "" {
				n += ", roll back to " + r.RollbackTo
			}
			notes = append(notes, n)
		}
		if r.RequiredStop {
			notes = append(notes, "required stop: "+r.StopReason)
		}
		if r.Security {
			notes = append(notes, "security fix")
		}
		fmt.Fprintf(tw, "  %s\t%v%%\t%s\t%s\t%s\n", r.Version, r.Rollout, r.Published.Format("2006-01-02 15:04"), shortDigest(r.Digest), strings.Join(notes, "; "))
	}
	tw.Flush()
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
