package cli

import (
	"context"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/config"
	"github.com/relcheck/relcheck/report"
	"github.com/relcheck/relcheck/telemetry"
)

// flagCase is one command line and the options its parsing must produce,
// or the usage error it must give.
type flagCase[O any] struct {
	args []string
	want O
	// err is in the usage error the line must give instead.
	err string
}

// testFlags parses each case's command line with a command built by mk,
// whose run seam captures the options, and compares them with the case's
// (the streams left out).
func testFlags[O any](t *testing.T, mk func(*streams, func(context.Context, *O) error) *cobra.Command, cases []flagCase[O]) {
	t.Helper()
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			s := &streams{in: strings.NewReader(""), out: io.Discard, err: io.Discard, getenv: func(string) string { return "" }}
			var got *O
			cmd := mk(s, func(_ context.Context, o *O) error { got = o; return nil })
			cmd.SetArgs(c.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			cmd.SilenceErrors, cmd.SilenceUsage = true, true
			cmd.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usagef(cmd, "%v", err) })
			err := cmd.ExecuteContext(context.Background())
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || exitCode(err) != report.ExitUsage {
					t.Fatalf("error %v (exit %d), want a usage error with %q", err, exitCode(err), c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("the run seam was not called")
			}
			// The streams are the test's own; they are unexported, so
			// they are cleared through their address.
			f := reflect.ValueOf(got).Elem().FieldByName("streams")
			reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.Zero(f.Type()))
			if !reflect.DeepEqual(*got, c.want) {
				t.Errorf("options\n got %+v\nwant %+v", *got, c.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestCheckFlags(t *testing.T) {
	testFlags(t, newCheckCmd, []flagCase[checkOptions]{
		{args: nil, want: checkOptions{Gates: []string{}, Repo: ".", Format: report.FormatText}},
		{args: []string{"api", "migrations", "--repo", "x", "--base", "v1.0.0", "--format", "json", "--output", "r.json", "--json-report", "j", "--sarif", "s",
			"--database-url", "postgres://h/db", "--save", "p.json", "--budget", "5m", "--config", "c.yaml"},
			want: checkOptions{Gates: []string{"api", "migrations"}, Repo: "x", Base: "v1.0.0", Config: "c.yaml", Format: report.FormatJSON, Output: "r.json",
				JSONReport: "j", SARIF: "s", DatabaseURL: "postgres://h/db", Save: "p.json", Budget: 5 * time.Minute}},
		{args: []string{"--format", "yaml"}, err: "--format"},
		{args: []string{"--budget", "-1s"}, err: "--budget"},
	})
}

func TestInitFlags(t *testing.T) {
	testFlags(t, newInitCmd, []flagCase[initOptions]{
		{args: nil, want: initOptions{Dir: "."}},
		{args: []string{"--repo", "d", "--force"}, want: initOptions{Dir: "d", Force: true}},
		{args: []string{"extra"}, err: "unexpected argument"},
	})
}

func TestVersionNextFlags(t *testing.T) {
	testFlags(t, newVersionNextCmd, []flagCase[versionNextOptions]{
		{args: nil, want: versionNextOptions{Repo: ".", Format: "text", Channel: "stable"}},
		{args: []string{"--channel", "edge", "--format", "json", "--base", "main"}, want: versionNextOptions{Repo: ".", Base: "main", Format: "json", Channel: "edge"}},
		{args: []string{"--channel", "nightly"}, err: "--channel must be edge, beta or stable"},
		{args: []string{"--format", "xml"}, err: "--format must be text or json"},
	})
}

func TestAPIFlags(t *testing.T) {
	testFlags(t, newAPIDumpCmd, []flagCase[apiDumpOptions]{
		{args: []string{"--repo", "m"}, want: apiDumpOptions{apiModule: apiModule{Repo: "m"}}},
	})
	testFlags(t, newAPIUpdateCmd, []flagCase[apiUpdateOptions]{
		{args: nil, want: apiUpdateOptions{apiModule: apiModule{Repo: "."}}},
		{args: []string{"--file", "api.txt", "--config", "c"}, want: apiUpdateOptions{apiModule: apiModule{Repo: ".", Config: "c"}, File: "api.txt"}},
	})
}

func TestPerfCompareFlags(t *testing.T) {
	testFlags(t, newPerfCompareCmd, []flagCase[perfCompareOptions]{
		{args: []string{"old.txt", "new.txt"}, want: perfCompareOptions{Files: []string{"old.txt", "new.txt"}, Format: report.FormatText, Threshold: 0.05, Alpha: 0.01}},
		{args: []string{"r.json", "--threshold", "3%", "--alpha", "0.05", "--format", "json"}, want: perfCompareOptions{Files: []string{"r.json"}, Format: report.FormatJSON, Threshold: 0.03, Alpha: 0.05}},
		{args: nil, err: "takes 1 or 2 files"},
		{args: []string{"a", "--threshold", "x"}, err: "--threshold"},
		{args: []string{"a", "--alpha", "0.7"}, err: "--alpha"},
	})
}

func TestPerfQualifyFlags(t *testing.T) {
	testFlags(t, newPerfQualifyCmd, []flagCase[perfQualifyOptions]{
		{args: nil, want: perfQualifyOptions{Repo: ".", Runs: 20, Slowdowns: []float64{0.02, 0.03, 0.05, 0.1}, Modes: []string{"duet", "interleaved"},
			Rounds: map[string]int{}, Format: report.FormatText}},
		{args: []string{"--runs", "40", "--slowdowns", "5%", "--mode", "duet", "--rounds", "duet=30", "--benchstat", "/bin/sh", "--out", "q.json", "--format", "json"},
			want: perfQualifyOptions{Repo: ".", Runs: 40, Slowdowns: []float64{0.05}, Modes: []string{"duet"}, Rounds: map[string]int{"duet": 30}, Benchstat: "/bin/sh", Out: "q.json", Format: report.FormatJSON}},
		{args: []string{"--benchstat", "/no/benchstat"}, err: "--benchstat"},
		{args: []string{"--mode", "duet,duet", "--slowdowns", "5%,5%,3%"}, want: perfQualifyOptions{Repo: ".", Runs: 20, Slowdowns: []float64{0.03, 0.05}, Modes: []string{"duet"}, Rounds: map[string]int{}, Format: report.FormatText}},
		{args: []string{"--runs", "0"}, err: "--runs"},
		{args: []string{"--slowdowns", "fast"}, err: "--slowdowns"},
		{args: []string{"--mode", "solo"}, err: "--mode"},
		{args: []string{"--rounds", "duet=3"}, err: "--rounds"},
		{args: []string{"--format", "sarif"}, err: "--format"},
	})
}

func TestDemoFlags(t *testing.T) {
	testFlags(t, newDemoCmd, []flagCase[demoOptions]{
		{args: nil, want: demoOptions{Format: report.FormatText}},
		{args: []string{"--dir", "d", "--keep", "--format", "markdown"}, want: demoOptions{Dir: "d", Keep: true, Format: report.FormatMarkdown}},
	})
}

func TestKeysGenerateFlags(t *testing.T) {
	testFlags(t, newKeysGenerateCmd, []flagCase[keysGenerateOptions]{
		{args: nil, want: keysGenerateOptions{Dir: "."}},
		{args: []string{"x"}, err: "unexpected argument"},
	})
}

func TestPublishFlags(t *testing.T) {
	key := repoFlags{Key: "cosign.key", Format: "text"}
	testFlags(t, newPublishCmd, []flagCase[publishOptions]{
		{args: []string{"oci:dist", "a", "b"}, want: publishOptions{repoFlags: key, Repo: "oci:dist", Files: []string{"a", "b"}, Channel: "edge", Dir: ".", Rollout: 100}},
		{args: []string{"reg/app", "--image", "reg/img:1", "--channel", "stable", "--version", "v1.2.3", "--rollout", "10", "--security", "--required-stop", "--project", "p", "--report", "r.json", "--repo", "src", "--key", "k", "--insecure", "--format", "json"},
			want: publishOptions{repoFlags: repoFlags{Key: "k", Insecure: true, Format: "json"}, Repo: "reg/app", Files: []string{}, Image: "reg/img:1", Channel: "stable", Version: "v1.2.3",
				Report: "r.json", Dir: "src", Project: "p", Rollout: 10, Security: true, RequiredStop: true}},
		{args: []string{"oci:dist"}, err: "give the files"},
		{args: []string{"oci:dist", "a", "--image", "x"}, err: "exclude each other"},
		{args: []string{"oci:dist", "a", "--channel", "lts"}, err: "--channel"},
		{args: []string{"oci:dist", "a", "--rollout", "101"}, err: "--rollout"},
	})
}

func TestPromoteFlags(t *testing.T) {
	gate, _ := telemetry.NewGate("installs>=20,soak>=72h", "http://c")
	testFlags(t, newPromoteCmd, []flagCase[promoteOptions]{
		{args: []string{"oci:d", "v1.2.0-beta.1", "--to", "stable", "--rollout", "25", "--min-soak", "3d"},
			want: promoteOptions{repoFlags: repoFlags{Key: "cosign.key", Format: "text"}, Repo: "oci:d", Version: "v1.2.0-beta.1", To: "stable", Rollout: 25, MinSoak: 72 * time.Hour}},
		{args: []string{"oci:d", "v1", "--to", "beta", "--require", "installs>=20,soak>=72h", "--collector", "http://c"},
			want: promoteOptions{repoFlags: repoFlags{Key: "cosign.key", Format: "text"}, Repo: "oci:d", Version: "v1", To: "beta", Rollout: 100, Gate: gate}},
		{args: []string{"oci:d", "v1", "--to", "edge"}, err: "--to must be beta or stable"},
		{args: []string{"oci:d", "v1", "--to", "beta", "--min-soak", "soon"}, err: "--min-soak"},
		{args: []string{"oci:d", "v1", "--to", "beta", "--require", "bogus"}, err: "--require"},
		{args: []string{"oci:d"}, err: "takes 2 argument(s)"},
	})
}

func TestRolloutFlags(t *testing.T) {
	testFlags(t, newRolloutCmd, []flagCase[rolloutOptions]{
		{args: []string{"oci:d", "v1.2.0", "--channel", "stable", "--percent", "50"},
			want: rolloutOptions{repoFlags: repoFlags{Key: "cosign.key", Format: "text"}, Repo: "oci:d", Version: "v1.2.0", Channel: "stable", Percent: 50}},
		{args: []string{"oci:d", "v1.2.0", "--channel", "stable"}, err: "give --percent"},
		{args: []string{"oci:d", "v1.2.0", "--percent", "5"}, err: "--channel"},
	})
}

func TestHaltFlags(t *testing.T) {
	testFlags(t, newHaltCmd, []flagCase[haltOptions]{
		{args: []string{"oci:d", "v1.2.0", "--channel", "beta", "--rollback-to", "v1.1.0"},
			want: haltOptions{repoFlags: repoFlags{Key: "cosign.key", Format: "text"}, Repo: "oci:d", Version: "v1.2.0", Channel: "beta", RollbackTo: "v1.1.0"}},
		{args: []string{"oci:d", "v1.2.0"}, err: "--channel"},
	})
}

func TestChannelFlags(t *testing.T) {
	pub := repoFlags{Key: "cosign.pub", Format: "text"}
	priv := repoFlags{Key: "cosign.key", Format: "text"}
	testFlags(t, newChannelShowCmd, []flagCase[channelShowOptions]{
		{args: []string{"oci:d"}, want: channelShowOptions{repoFlags: pub, Repo: "oci:d"}},
		{args: []string{"oci:d", "--channel", "beta", "--format", "json"}, want: channelShowOptions{repoFlags: repoFlags{Key: "cosign.pub", Format: "json"}, Repo: "oci:d", Channel: "beta"}},
		{args: []string{"oci:d", "--channel", "x"}, err: "--channel"},
	})
	testFlags(t, newChannelRefreshCmd, []flagCase[channelRefreshOptions]{
		{args: []string{"oci:d"}, want: channelRefreshOptions{repoFlags: priv, Repo: "oci:d"}},
		{args: []string{"oci:d", "--collector", ""}, want: channelRefreshOptions{repoFlags: priv, Repo: "oci:d", Collector: ptr("")}},
		{args: []string{"oci:d", "--channel", "edge", "--collector", "http://c"}, want: channelRefreshOptions{repoFlags: priv, Repo: "oci:d", Channel: "edge", Collector: ptr("http://c")}},
	})
	testFlags(t, newChannelPathCmd, []flagCase[channelPathOptions]{
		{args: []string{"oci:d", "--from", "v1", "--to", "v3"}, want: channelPathOptions{repoFlags: pub, Repo: "oci:d", From: "v1", To: "v3", Channel: "stable"}},
		{args: []string{"oci:d", "--from", "v1"}, err: "give --from and --to"},
	})
	testFlags(t, newChannelPruneCmd, []flagCase[channelPruneOptions]{
		{args: []string{"oci:d", "--channel", "stable"}, want: channelPruneOptions{repoFlags: priv, Repo: "oci:d", Channel: "stable", Keep: 50}},
		{args: []string{"oci:d", "--channel", "stable", "--keep", "5"}, want: channelPruneOptions{repoFlags: priv, Repo: "oci:d", Channel: "stable", Keep: 5}},
	})
}

func TestSubscribeFlags(t *testing.T) {
	testFlags(t, newSubscribeCmd, []flagCase[subscribeOptions]{
		{args: []string{"oci:d", "--install-dir", "/opt/app"}, want: subscribeOptions{Repo: "oci:d", Key: "cosign.pub", InstallDir: "/opt/app"}},
		{args: []string{"oci:d", "--install-dir", "i", "--channel", "beta", "--pre-cmd", "backup", "--health-cmd", "check", "--pin", "1.4", "--min-age", "3d", "--keep", "2", "--insecure", "--config", "s.yaml", "--project", "textkit"},
			want: subscribeOptions{Repo: "oci:d", Channel: ptr("beta"), Project: "textkit", Key: "cosign.pub", InstallDir: "i", Config: "s.yaml", Pre: ptr("backup"), Health: ptr("check"), Pin: ptr("1.4"),
				MinAge: ptr(config.Duration(72 * time.Hour)), Keep: ptr(2), Insecure: ptr(true)}},
		{args: []string{"oci:d"}, err: "give --install-dir"},
		{args: []string{"oci:d", "--install-dir", "i", "--min-age", "later"}, err: "--min-age"},
	})
}

func TestOperatorFlags(t *testing.T) {
	op := opFlags{Format: "text", LogFormat: "text"}
	testFlags(t, newUpgradeCmd, []flagCase[upgradeOptions]{
		{args: nil, want: upgradeOptions{opFlags: op}},
		{args: []string{"--phased", "--dry-run", "--yes", "--to", "v1.2.0", "--config", "s.yaml", "--format", "json", "--log-format", "json"},
			want: upgradeOptions{opFlags: opFlags{Config: "s.yaml", Format: "json", LogFormat: "json"}, Phased: true, DryRun: true, Yes: true, To: "v1.2.0"}},
		{args: []string{"--log-format", "xml"}, err: "--log-format"},
		// JSON logs make stdout JSON, unless --format says otherwise.
		{args: []string{"--log-format", "json"}, want: upgradeOptions{opFlags: opFlags{Format: "json", LogFormat: "json"}}},
		{args: []string{"--log-format", "json", "--format", "text"}, want: upgradeOptions{opFlags: opFlags{Format: "text", LogFormat: "json"}}},
	})
	testFlags(t, newStatusCmd, []flagCase[statusOptions]{
		{args: []string{"--phased"}, want: statusOptions{opFlags: op, Phased: true}},
		{args: []string{"--format", "yaml"}, err: "--format"},
	})
	testFlags(t, newRollbackCmd, []flagCase[rollbackOptions]{
		{args: nil, want: rollbackOptions{opFlags: op}},
		{args: []string{"--yes"}, want: rollbackOptions{opFlags: op, Yes: true}},
	})
	testFlags(t, newRecoverCmd, []flagCase[recoverOptions]{
		{args: []string{"--config", "s.yaml"}, want: recoverOptions{opFlags: opFlags{Config: "s.yaml", Format: "text", LogFormat: "text"}}},
	})
}

func TestTelemetryFlags(t *testing.T) {
	onCmd := func(s *streams, runF func(context.Context, *telemetryModeOptions) error) *cobra.Command {
		return newTelemetryModeCmd(s, telemetry.On, runF)
	}
	testFlags(t, onCmd, []flagCase[telemetryModeOptions]{
		{args: []string{"--url", "https://t.example"}, want: telemetryModeOptions{Mode: telemetry.On, URL: "https://t.example"}},
	})
	testFlags(t, newTelemetryStatusCmd, []flagCase[telemetryStatusOptions]{{args: nil}})
	testFlags(t, newTelemetryViewCmd, []flagCase[telemetryViewOptions]{{args: nil}})
	testFlags(t, newTelemetryUploadCmd, []flagCase[telemetryUploadOptions]{
		{args: []string{"--url", "http://c"}, want: telemetryUploadOptions{URL: "http://c"}},
	})
	testFlags(t, newTelemetryServeCmd, []flagCase[telemetryServeOptions]{
		{args: []string{"--db", "t.db"}, want: telemetryServeOptions{Listen: "127.0.0.1:8080", DB: "t.db",
			ServerOptions: telemetry.ServerOptions{MinInstalls: 10, RateLimit: 60, PerNetworkDay: 20, Epsilon: 1, MaxBatch: 256, BatchWait: 200 * time.Microsecond}}},
		{args: nil, err: "give --db"},
		{args: []string{"--db", "t.db", "--min-installs", "0"}, err: "--min-installs"},
	})
}

func TestFlagName(t *testing.T) {
	for option, want := range map[string]string{
		"Dir": "--repo", "Base": "--base", "DatabaseURL": "--database-url", "MinSoak": "--min-soak",
		"rollbackTo": "--rollback-to", "percent": "--percent", "URLFile": "--url-file",
	} {
		if got := flagName(option); got != want {
			t.Errorf("flagName(%q) = %q, want %q", option, got, want)
		}
	}
}

func TestKeysRotateFlags(t *testing.T) {
	testFlags(t, newKeysRotateCmd, []flagCase[keysRotateOptions]{
		{args: []string{"oci:d", "--new-key", "n/cosign.key"}, want: keysRotateOptions{repoFlags: repoFlags{Key: "cosign.key", Format: "text"}, Repo: "oci:d", NewKey: "n/cosign.key"}},
		{args: []string{"oci:d"}, err: "give --new-key"},
	})
}
