package cli

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"golang.org/x/mod/modfile"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/check"
	"github.com/relcheck/relcheck/internal/gitx"
	"github.com/relcheck/relcheck/report"
)

// publishOptions are the inputs of `relcheck publish`.
type publishOptions struct {
	*streams
	repoFlags
	// Repo is the release repository (REGISTRY/REPO or oci:DIR); Files
	// the release's files, or Image an existing image instead.
	Repo    string
	Files   []string
	Image   string
	Channel string
	// Version is the release's version ("": derived from the gates, or
	// from Report).
	Version string
	// Report is a JSON report of relcheck check for this commit.
	Report string
	// Dir is the project's git repository.
	Dir          string
	Project      string
	Rollout      float64
	Security     bool
	RequiredStop bool
	// NoAttest skips the SLSA provenance attestation.
	NoAttest bool
	// Goreleaser is a goreleaser dist/ directory to publish as it is.
	Goreleaser string
}

func newPublishCmd(s *streams, runF func(context.Context, *publishOptions) error) *cobra.Command {
	o := &publishOptions{streams: s}
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
			if o.Goreleaser != "" && (len(args) > 1 || o.Image != "") {
				return usagef(cmd, "--goreleaser publishes the files goreleaser built: give no files and no --image")
			}
			if o.Image == "" && o.Goreleaser == "" && len(args) < 2 {
				return usagef(cmd, "give the files to release after %s, or --image REF, or --goreleaser dist/", args[0])
			}
			if o.Image != "" && len(args) > 1 {
				return usagef(cmd, "--image and files exclude each other")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(cmd, o.Format); err != nil {
				return err
			}
			if err := checkChannel(cmd, o.Channel, false); err != nil {
				return err
			}
			if !(o.Rollout >= 0 && o.Rollout <= 100) {
				return usagef(cmd, "--rollout must be between 0 and 100")
			}
			o.Repo, o.Files = args[0], args[1:]
			return run(cmd, runF, runPublish, o)
		},
	}
	o.flags(cmd, channels.PrivateKeyFile)
	f := cmd.Flags()
	f.StringVar(&o.Channel, "channel", "edge", "channel: edge, beta or stable")
	f.StringVar(&o.Version, "version", "", "the release's version (default: derived from the gates)")
	f.StringVar(&o.Image, "image", "", "sign and channel this existing container image instead of files")
	f.StringVar(&o.Report, "report", "", "JSON report of 'relcheck check' for this commit (version, API bump, migration facts)")
	f.StringVar(&o.Dir, "repo", ".", "the project's git repository")
	f.StringVar(&o.Project, "project", "", "project name (default: the Go module's last element)")
	f.Float64Var(&o.Rollout, "rollout", 100, "percentage of installs offered the release")
	f.BoolVar(&o.Security, "security", false, "mark the release as a security fix")
	f.BoolVar(&o.RequiredStop, "required-stop", false, "mark the release as a stop every upgrade path must pass through")
	f.StringVar(&o.Goreleaser, "goreleaser", "", "publish what goreleaser built: its dist/ directory (metadata.json, artifacts.json): the archives (or binaries) per platform and the checksums")
	f.BoolVar(&o.NoAttest, "no-attest", false, "do not attach the signed SLSA provenance (cosign verify-attestation --type slsaprovenance1 checks it)")
	return cmd
}

func runPublish(ctx context.Context, o *publishOptions) error {
	st, err := openRepo(o.Repo, o.Insecure)
	if err != nil {
		return err
	}
	// What can be refused in a second is, before any gate runs: the key
	// and its password, the repository's reachability, the version, the
	// working tree.
	pub, err := publisher(o.streams, st, o.Key, "")
	if err != nil {
		return err
	}
	tags, err := st.Tags(ctx)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", o.Repo, err)
	}
	var plats map[string]string
	if o.Goreleaser != "" {
		dist, err := channels.ReadGoreleaserDist(o.Goreleaser)
		if err != nil {
			return err
		}
		defer dist.Cleanup()
		o.Files, plats = dist.Files, dist.Platforms
		if o.Version == "" {
			o.Version = dist.Version
		}
		if o.Project == "" {
			o.Project = dist.Project
		}
	}
	version := o.Version
	if version != "" {
		if version, err = channels.PublishVersion(version, o.Channel); err != nil {
			return err
		}
	} else if err := check.Committed(ctx, o.Dir); err != nil {
		return err
	}
	meta := channels.Metadata{Project: o.Project, Created: time.Now().UTC(), RequiredStop: o.RequiredStop, Platforms: plats}
	next := ""
	if o.Report != "" {
		if next, err = readReportFacts(o.Report, &meta); err != nil {
			return err
		}
	}
	// One repository holds one project's releases.
	if have := existingProject(ctx, st); have != "" {
		if meta.Project != "" && meta.Project != have {
			return report.Inputf("%s holds releases of %s, not %s: publish %s elsewhere (or pass --project %s)", o.Repo, have, meta.Project, meta.Project, have)
		}
		meta.Project = have
	}
	if meta.Project == "" {
		meta.Project = projectName(o.Dir, o.Repo)
	}
	pub.Project = meta.Project
	if version == "" {
		if version, err = check.NextVersion(ctx, o.Dir, o.Channel, next, tags); err != nil {
			return err
		}
		if version, err = channels.PublishVersion(version, o.Channel); err != nil {
			return err
		}
	}
	meta.Version = version
	if meta.Commit == "" {
		meta.Commit = headCommit(ctx, o.Dir)
	}
	var img v1.Image
	if o.Image != "" {
		if img, err = channels.RemoteImage(ctx, o.Image, o.Insecure); err != nil {
			return err
		}
	} else {
		bar := &byteBar{w: o.err, tty: isTerminal(o.err), label: "pushing " + version}
		for _, f := range o.Files {
			if fi, err := os.Stat(f); err == nil {
				bar.total += fi.Size()
			}
		}
		if img, err = channels.NewRelease(meta, o.Files, bar.add); err != nil {
			return &report.InputError{Err: err}
		}
		defer bar.finish()
	}
	var prov *channels.ProvenanceSource
	var sbom json.RawMessage
	sbomSays := ""
	if !o.NoAttest {
		var why string
		if prov, why = provenanceSource(ctx, o, meta.Commit); prov == nil {
			fmt.Fprintf(o.err, "relcheck: no provenance attached: %s (or pass --no-attest)\n", why)
		}
		if o.Image == "" {
			bom, err := channels.SBOM(meta.Project, version, o.Files)
			if err != nil {
				return &report.InputError{Err: fmt.Errorf("the SBOM: %w", err)}
			}
			if sbom, err = channels.EncodeSBOM(bom); err != nil {
				return err
			}
			mods, bins := 0, 0
			for _, c := range *bom.Components {
				switch c.Type {
				case "library":
					mods++
				case "application":
					bins++
				}
			}
			sbomSays = fmt.Sprintf("%d file(s), %d Go binary(ies) with %d module(s)", len(o.Files), bins, mods)
		}
	}
	var notes *channels.UpgradeNotes
	if !o.NoAttest && o.Report != "" {
		var rep report.Report
		if raw, err := os.ReadFile(o.Report); err == nil && json.Unmarshal(raw, &rep) == nil {
			n := channels.NotesFromReport(&rep, version, o.RequiredStop)
			notes = &n
		}
	}
	d, h, err := pub.Publish(ctx, img, channels.PublishOptions{Version: version, Channel: o.Channel, Rollout: o.Rollout, Security: o.Security, Provenance: prov, SBOM: sbom, Notes: notes})
	if err != nil {
		return err
	}
	if prov != nil {
		fmt.Fprintf(o.err, "relcheck: attached signed SLSA provenance: %s@%s, built by %s\n", prov.Repository, shortHash(prov.Commit), prov.BuilderID)
	}
	if sbom != nil {
		fmt.Fprintf(o.err, "relcheck: attached signed CycloneDX SBOM: %s\n", sbomSays)
	}
	if notes != nil {
		fmt.Fprintf(o.err, "relcheck: attached signed upgrade notes from %s (relcheck channel show --notes shows them)\n", o.Report)
	}
	if err := writeStepOutput(o.streams, "version", version, "digest", d.String()); err != nil {
		return err
	}
	return printHeadChange(o.streams, o.Format, st, h, version, d, fmt.Sprintf("published %s to %s", version, o.Channel))
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
	repo, err := gitx.Open(ctx, dir)
	if err != nil {
		return ""
	}
	commit, err := repo.ResolveCommit(ctx, "HEAD")
	if err != nil {
		return ""
	}
	return commit
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

// provenanceSource is what a publish's provenance says: the source
// repository ($GITHUB_SERVER_URL/$GITHUB_REPOSITORY in GitHub Actions, else
// the git remote origin as host/path), the commit, the workflow run, and
// the report's digest. nil, and why, when the source is not known.
func provenanceSource(ctx context.Context, o *publishOptions, commit string) (*channels.ProvenanceSource, string) {
	if commit == "" {
		return nil, "the release is not built from a git commit (--repo)"
	}
	src := &channels.ProvenanceSource{Commit: commit, Started: time.Now().UTC()}
	server, repo := o.getenv("GITHUB_SERVER_URL"), o.getenv("GITHUB_REPOSITORY")
	if server != "" && repo != "" {
		src.Repository = normaliseRemote(server + "/" + repo)
		src.Ref = o.getenv("GITHUB_REF")
		if wf := o.getenv("GITHUB_WORKFLOW_REF"); wf != "" {
			src.BuilderID = server + "/" + wf
		}
		if run := o.getenv("GITHUB_RUN_ID"); run != "" {
			src.InvocationID = fmt.Sprintf("%s/%s/actions/runs/%s", server, repo, run)
			if a := o.getenv("GITHUB_RUN_ATTEMPT"); a != "" {
				src.InvocationID += "/attempts/" + a
			}
		}
	} else if g, err := gitx.Open(ctx, o.Dir); err == nil {
		if url, err := g.Git(ctx, "remote", "get-url", "origin"); err == nil {
			src.Repository = normaliseRemote(strings.TrimSpace(url))
		}
	}
	if src.Repository == "" {
		return nil, "the git repository has no remote origin to name as its source"
	}
	if src.BuilderID == "" {
		src.BuilderID = "https://github.com/relcheck/relcheck/cmd/relcheck@" + relcheckVersion()
	}
	if o.Report != "" {
		if data, err := os.ReadFile(o.Report); err == nil {
			src.ReportDigest = fmt.Sprintf("%x", sha256.Sum256(data))
		}
	}
	return src, ""
}

// normaliseRemote writes a git remote URL as host/path:
// git@github.com:org/app.git and https://github.com/org/app.git are both
// github.com/org/app.
func normaliseRemote(u string) string {
	u = strings.TrimSuffix(strings.TrimSuffix(u, "/"), ".git")
	for _, p := range []string{"https://", "http://", "ssh://", "git://", "git+ssh://"} {
		u = strings.TrimPrefix(u, p)
	}
	if at := strings.Index(u, "@"); at >= 0 && at < strings.IndexAny(u+"/", ":/") {
		u = u[at+1:]
	}
	if i := strings.Index(u, ":"); i >= 0 && !strings.Contains(u[:i], "/") {
		rest := u[i+1:]
		if j := strings.Index(rest, "/"); j >= 0 && strings.Trim(rest[:j], "0123456789") == "" {
			rest = rest[j+1:] // host:port/path
		}
		u = u[:i] + "/" + rest
	}
	return u
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// relcheckVersion is this relcheck's version ("devel" for a local build).
func relcheckVersion() string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(version, bi)
}
