package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/report"
	"github.com/relcheck/relcheck/telemetry"
)

// What the commands that talk to a release repository share: its flags,
// opening it, the signing key, the telemetry gate of --require, and how a
// changed channel head is printed.

// repoFlags are the flags every command that talks to a release
// repository shares.
type repoFlags struct {
	Key      string
	Insecure bool
	Format   string
}

func (o *repoFlags) flags(cmd *cobra.Command, key string) {
	cmd.Flags().StringVar(&o.Key, "key", key, "cosign key file")
	cmd.Flags().BoolVar(&o.Insecure, "insecure", false, "allow a plain-HTTP registry (loopback registries use it anyway)")
	cmd.Flags().StringVar(&o.Format, "format", "text", "output format: text or json")
}

// checkChannel refuses a --channel that is not edge, beta or stable;
// optional allows "" (every channel).
func checkChannel(cmd *cobra.Command, c string, optional bool) error {
	if (optional && c == "") || channels.ValidChannel(c) {
		return nil
	}
	return usagef(cmd, "--channel must be edge, beta or stable, not %q", c)
}

// openRepo opens a release repository (REGISTRY/REPO, or oci:DIR).
func openRepo(ref string, insecure bool) (channels.Store, error) {
	st, err := channels.Open(ref, insecure)
	if err != nil {
		return nil, &report.InputError{Err: err}
	}
	return st, nil
}

// openWriter opens a repository and loads the signing key, for a command
// that writes channel heads.
func openWriter(s *streams, ref string, f repoFlags) (channels.Store, *channels.Publisher, error) {
	st, err := openRepo(ref, f.Insecure)
	if err != nil {
		return nil, nil, err
	}
	pub, err := publisher(s, st, f.Key, "")
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
		return nil, report.Inputf("no password for the key: set COSIGN_PASSWORD (it may be empty) or run on a terminal")
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
		return nil, report.Inputf("the passwords differ")
	}
	return pw, nil
}

// publisher loads the signing key for a command that writes a channel.
func publisher(s *streams, st channels.Store, key, project string) (*channels.Publisher, error) {
	pw, err := password(s, false)
	if err != nil {
		return nil, err
	}
	signer, err := channels.LoadSigner(key, pw)
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
	// The heads signed here are remembered beside those seen here: a head
	// tag moved back behind either is not signed again.
	return &channels.Publisher{Store: st, Signer: signer, Project: project, Settle: settle, Trust: channels.OpenTrust(stateDir(s))}, nil
}

// parseGate parses --require into a telemetry gate ("": none).
// gateFlags are --require and --collector: the shared-telemetry gate of
// promote and rollout.
type gateFlags struct{ require, collector string }

// add declares the flags; example is a --require value, head the head
// whose collector is the default.
func (g *gateFlags) add(cmd *cobra.Command, example, head string) {
	cmd.Flags().StringVar(&g.require, "require", "", "what the shared telemetry must say first, e.g. '"+example+"'")
	cmd.Flags().StringVar(&g.collector, "collector", "", "the telemetry collector (default: the one "+head+" announces)")
}

// gate is the gate the flags ask for, nil without --require.
func (g *gateFlags) gate(cmd *cobra.Command) (*telemetry.Gate, error) {
	if g.require == "" {
		return nil, nil
	}
	gate, err := telemetry.NewGate(g.require, g.collector)
	if err != nil {
		return nil, usagef(cmd, "--require: %v", err)
	}
	return gate, nil
}

// releaseGate judges a release by the shared telemetry (telemetry.Gate, on
// its collector or the one the head announces), printing the figures: the
// gate of promote and rollout. nil without a gate.
func releaseGate(ctx context.Context, s *streams, gate *telemetry.Gate) func(*channels.Release, *channels.Head) error {
	if gate == nil {
		return nil
	}
	return func(r *channels.Release, h *channels.Head) error {
		v, collector, err := judgeShared(ctx, gate, r, h)
		if err != nil {
			return err
		}
		fmt.Fprintf(s.err, "relcheck: shared data for %s on %s (%s):\n", r.Version, h.Channel, collector)
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
	}
}

// judgeShared judges release r of head h by gate, on the gate's collector
// or the one the head announces; it returns the verdict and the collector.
func judgeShared(ctx context.Context, gate *telemetry.Gate, r *channels.Release, h *channels.Head) (telemetry.Verdict, string, error) {
	g := *gate
	if g.Collector == "" {
		g.Collector = h.Collector
	}
	if g.Collector == "" {
		return telemetry.Verdict{}, "", report.Inputf("--require needs a collector: --collector URL, or announce one with 'relcheck channel refresh --collector URL'")
	}
	v, err := g.Judge(ctx, h.Project, r.Version, time.Since(r.Published))
	return v, g.Collector, err
}

// sharedJudge judges a release in flight by the shared telemetry (the
// judgement of channels.Publisher.Advance); the figures go to w.
func sharedJudge(ctx context.Context, w io.Writer, gate *telemetry.Gate) func(*channels.Release, *channels.Head) (channels.Judgement, string, error) {
	return func(r *channels.Release, h *channels.Head) (channels.Judgement, string, error) {
		v, _, err := judgeShared(ctx, gate, r, h)
		if err != nil {
			return 0, "", err
		}
		for _, l := range v.Lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
		switch v.Result {
		case telemetry.Pass:
			return channels.JudgePass, "the shared data meets " + requirements(gate.Requirements), nil
		case telemetry.Fail:
			return channels.JudgeFail, "it fails " + requirements(gate.Requirements), nil
		}
		return channels.JudgeHold, "inconclusive: not enough shared data yet for " + requirements(gate.Requirements), nil
	}
}

func requirements(rs []telemetry.Requirement) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return strings.Join(out, ",")
}

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

// verifiedHeads verifies the heads of a channel (all present ones when
// channel is empty) with the key, as channels.VerifyHeads does, in this
// user's trust store.
// readHeads opens a repository and reads its verified heads.
func readHeads(ctx context.Context, s *streams, repo string, insecure bool, channel, key string) ([]channels.VerifiedHead, error) {
	st, err := openRepo(repo, insecure)
	if err != nil {
		return nil, err
	}
	return verifiedHeads(ctx, s, st, channel, key)
}

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

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
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
