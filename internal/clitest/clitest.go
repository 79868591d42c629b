// Package clitest runs relcheck's CLI scripts (testdata/script/GROUP/*.txtar
// at the module root) with testscript: each builds real git repositories,
// stores and servers in a temp directory and runs relcheck on them. The
// scripts are split into groups, one test package each under
// internal/cli/scripts, so that no package's tests need more than a few
// minutes on a small busy machine; within a group they run in parallel.
package clitest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/internal/cli"
	"github.com/relcheck/relcheck/internal/regtest"
	"github.com/relcheck/relcheck/migrations"
	"github.com/relcheck/relcheck/telemetry"
)

// Main is the TestMain of a script package: it registers the commands that
// scripts run as programs (the test binary re-executes itself as them).
func Main(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"relcheck": func() {
			// The crash-safety scripts: die (SIGKILL) right after the
			// journal records this step.
			var h cli.Hooks
			if at := os.Getenv("RELCHECK_TEST_CRASH_AT"); at != "" {
				h.AfterStep = func(step string) {
					if step == at {
						syscall.Kill(os.Getpid(), syscall.SIGKILL)
						time.Sleep(time.Minute)
					}
				}
			}
			os.Exit(cli.Process(os.Args[1:], h))
		},
		// relcheck-exit N ARGS... runs relcheck ARGS and succeeds only if it
		// exits with exactly N, so scripts can assert the exit codes of
		// DESIGN.md (testscript's exec only tells zero from non-zero).
		"relcheck-exit": func() {
			want, err := strconv.Atoi(os.Args[1])
			if err != nil {
				fmt.Fprintln(os.Stderr, "usage: relcheck-exit CODE ARGS...")
				os.Exit(2)
			}
			got := cli.Process(os.Args[2:], cli.Hooks{})
			if got != want {
				fmt.Fprintf(os.Stderr, "relcheck exited with %d, want %d\n", got, want)
				os.Exit(1)
			}
			os.Exit(0)
		},
	})
}

// Run runs the scripts of testdata/script/group, in parallel.
func Run(t *testing.T, group string) {
	dir := filepath.Join(moduleRoot(t), "testdata", "script", group)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("no script group %s: %v", group, err)
	}
	testscript.Run(t, scriptParams(t, dir, nil))
}

// RunOneByOne runs the scripts of testdata/script/group one after another:
// for scripts that load the machine (benchmarks, load), which would
// otherwise mostly measure each other.
func RunOneByOne(t *testing.T, group string) {
	files, err := filepath.Glob(filepath.Join(moduleRoot(t), "testdata", "script", group, "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in group %s: %v", group, err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txtar"), func(t *testing.T) {
			testscript.Run(t, scriptParams(t, "", []string{f}))
		})
	}
}

// moduleRoot is the directory of relcheck's go.mod, found upwards from the
// test's working directory.
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// scriptParams are the testscript settings of relcheck's CLI scripts: the
// scripts in dir, or the given files.
func scriptParams(t *testing.T, dir string, files []string) testscript.Params {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed: the CLI scripts need it")
	}
	goEnv := map[string]string{}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOROOT"} {
		out, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", k, err)
		}
		goEnv[k] = strings.TrimSpace(string(out))
	}
	return testscript.Params{
		Dir:                 dir,
		Files:               files,
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			for k, v := range goEnv {
				e.Setenv(k, v)
			}
			e.Setenv("HOME", filepath.Join(e.WorkDir, ".home"))
			// relcheck's configuration and state stay in the script's
			// directory: as root the defaults are /etc/relcheck and
			// /var/lib/relcheck, which scripts must never touch.
			e.Setenv("XDG_CONFIG_HOME", filepath.Join(e.WorkDir, ".home", ".config"))
			e.Setenv("XDG_STATE_HOME", filepath.Join(e.WorkDir, ".home", ".local", "state"))
			e.Setenv("GOPROXY", "off")
			e.Setenv("GOTOOLCHAIN", "local")
			e.Setenv("GIT_AUTHOR_NAME", "Test")
			e.Setenv("GIT_AUTHOR_EMAIL", "test@example.com")
			e.Setenv("GIT_COMMITTER_NAME", "Test")
			e.Setenv("GIT_COMMITTER_EMAIL", "test@example.com")
			e.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
			e.Setenv("GIT_CONFIG_NOSYSTEM", "1")
			e.Setenv("NO_COLOR", "")
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "postgres":
				_, err := migrations.FindPostgresBin()
				if err != nil && os.Getenv("CI") != "" {
					// .ci/run installs PostgreSQL: in CI nothing skips.
					return false, fmt.Errorf("in CI PostgreSQL must be installed: %v", err)
				}
				return err == nil, nil
			case "distribution":
				// The real registry, for the registry command.
				_, err := regtest.Lookup()
				if err != nil && os.Getenv("CI") != "" {
					return false, fmt.Errorf("in CI the registry must be installed: %v", err)
				}
				return err == nil, nil
			case "cosign":
				// The real cosign CLI, to verify what relcheck signed.
				_, err := exec.LookPath("cosign")
				if err != nil && os.Getenv("CI") != "" {
					return false, fmt.Errorf("in CI cosign must be installed (.ci/run installs it): %v", err)
				}
				return err == nil, nil
			case "cpus2":
				// Two CPUs for the perf gate's duet rounds.
				return runtime.NumCPU() >= 2, nil
			case "crane", "oras", "prometheus":
				// The crane and oras CLIs, to read what relcheck
				// publishes with the usual OCI tools; a real Prometheus,
				// for the operator's metric analysis.
				_, err := exec.LookPath(cond)
				if err != nil && os.Getenv("CI") != "" {
					return false, fmt.Errorf("in CI %s must be installed (.ci/run installs it): %v", cond, err)
				}
				return err == nil, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"stage":      cmdStage,
			"release":    cmdRelease,
			"registry":   cmdRegistry,
			"tamper":     cmdTamper,
			"image":      cmdImage,
			"freeport":   cmdFreePort,
			"waithttp":   cmdWaitHTTP,
			"crashload":  cmdCrashLoad,
			"blackhole":  cmdBlackhole,
			"retag":      cmdRetag,
			"untag":      cmdUntag,
			"unsign":     cmdUnsign,
			"metricsapp": cmdMetricsApp,
			"waitprom":   cmdWaitProm,
		},
	}
}

// stage SRC [DST]: (paths relative to $WORK) replace the files of the git working tree DST (default
// "repo") by the tree SRC, keeping .git. It creates DST with git init when
// needed.
func cmdStage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: stage SRC [DST]")
	}
	src, dst := workPath(ts, args[0]), workPath(ts, "repo")
	if len(args) == 2 {
		dst = workPath(ts, args[1])
	}
	if _, err := os.Stat(filepath.Join(dst, ".git")); err != nil {
		ts.Check(os.MkdirAll(dst, 0o755))
		git(ts, dst, "init", "-q", "-b", "main")
	}
	entries, err := os.ReadDir(dst)
	ts.Check(err)
	for _, e := range entries {
		if e.Name() != ".git" {
			ts.Check(os.RemoveAll(filepath.Join(dst, e.Name())))
		}
	}
	ts.Check(filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	}))
}

// release TAG [DATE] [DIR]: commit everything in DIR (default "repo") and tag
// it; DATE (RFC 3339 or git's date syntax) sets the commit and tag date.
func cmdRelease(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 3 {
		ts.Fatalf("usage: release TAG [DATE] [DIR]")
	}
	dir := workPath(ts, "repo")
	var env []string
	if len(args) >= 2 && args[1] != "-" {
		env = append(env, "GIT_AUTHOR_DATE="+args[1], "GIT_COMMITTER_DATE="+args[1])
	}
	if len(args) == 3 {
		dir = workPath(ts, args[2])
	}
	gitEnv(ts, dir, env, "add", "-A")
	gitEnv(ts, dir, env, "commit", "-q", "--allow-empty", "-m", "release "+args[0])
	if args[0] != "-" {
		gitEnv(ts, dir, env, "tag", args[0])
	}
}

// registry NAME: start the distribution registry (docker-registry) on
// 127.0.0.1 and set $NAME to its address, 127.0.0.1:PORT; it stops when
// the script ends. Guard scripts with [distribution].
func cmdRegistry(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: registry NAME")
	}
	dir, err := os.MkdirTemp("", "relcheck-registry-")
	ts.Check(err)
	addr, stop, err := regtest.Launch(dir)
	if err != nil {
		os.RemoveAll(dir)
		ts.Fatalf("registry: %v", err)
	}
	ts.Defer(func() {
		stop()
		os.RemoveAll(dir)
	})
	ts.Setenv(args[0], addr)
}

func git(ts *testscript.TestScript, dir string, args ...string) { gitEnv(ts, dir, nil, args...) }

func gitEnv(ts *testscript.TestScript, dir string, env []string, args ...string) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	for _, k := range []string{"HOME", "PATH", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM"} {
		cmd.Env = append(cmd.Env, k+"="+ts.Getenv(k))
	}
	cmd.Env = append(cmd.Env, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		ts.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// workPath resolves p against $WORK, so stage and release work after a cd.
func workPath(ts *testscript.TestScript, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(ts.Getenv("WORK"), p)
}

// tamper [-unsigned] REF: do what a compromised registry could to the
// manifest REF (REGISTRY/REPO:TAG) points at — replace it by a modified copy
// under the same tag and, unless -unsigned, copy the original's cosign
// signature to the copy.
func cmdTamper(ts *testscript.TestScript, neg bool, args []string) {
	unsigned := len(args) == 2 && args[0] == "-unsigned"
	if neg || len(args) < 1 || len(args) > 2 || (len(args) == 2 && !unsigned) {
		ts.Fatalf("usage: tamper [-unsigned] REGISTRY/REPO:TAG")
	}
	ref, err := name.NewTag(args[len(args)-1], name.Insecure)
	ts.Check(err)
	img, err := remote.Image(ref)
	ts.Check(err)
	orig, err := img.Digest()
	ts.Check(err)
	forged := mutate.Annotations(img, map[string]string{"tampered": fmt.Sprint(!unsigned)}).(v1.Image)
	ts.Check(remote.Write(ref, forged))
	if unsigned {
		return
	}
	d, err := forged.Digest()
	ts.Check(err)
	sig, err := remote.Get(ref.Context().Tag(channels.SignatureTag(orig)))
	ts.Check(err)
	ts.Check(remote.Tag(ref.Context().Tag(channels.SignatureTag(d)), sig))
}

// image REF: push a small random container image to REF
// (REGISTRY/REPO:TAG), as a project's own image build would.
func cmdImage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: image REGISTRY/REPO:TAG")
	}
	ref, err := name.NewTag(args[0], name.Insecure)
	ts.Check(err)
	img, err := random.Image(1024, 2)
	ts.Check(err)
	ts.Check(remote.Write(ref, img))
}

// freeport NAME: set $NAME to a free TCP port on 127.0.0.1.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport NAME")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ts.Setenv(args[0], strconv.Itoa(port))
}

// waithttp URL: wait (up to 15 s) until URL answers 200.
func cmdWaitHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waithttp URL")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(args[0])
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not answer 200 within 15 s: %v", args[0], err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// crashload DB N: start 'relcheck telemetry serve --db DB', send it N
// reports from 8 senders, kill it (SIGKILL) halfway, and check that every
// report it answered 2xx for is in the store afterwards.
func cmdCrashLoad(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: crashload DB N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	bin, err := exec.LookPath("relcheck")
	if err != nil {
		// testscript puts its commands on the script's PATH.
		for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
			if _, err2 := os.Stat(filepath.Join(dir, "relcheck")); err2 == nil {
				bin, err = filepath.Join(dir, "relcheck"), nil
				break
			}
		}
	}
	ts.Check(err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	addr := ln.Addr().String()
	ln.Close()
	db := ts.MkAbs(args[0])
	cmd := exec.Command(bin, "telemetry", "serve", "--listen", addr, "--db", db, "--rate-limit", "0", "--per-network-day", "-1")
	cmd.Env = append(os.Environ(), "HOME="+ts.Getenv("HOME"))
	var logs strings.Builder
	cmd.Stderr = &logs
	ts.Check(cmd.Start())
	url := "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		if resp, err := http.Get(url + "/metrics"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			ts.Fatalf("the collector did not start: %s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var (
		mu       sync.Mutex
		accepted []string
		next     atomic.Int64
		killed   atomic.Bool
	)
	week := telemetry.Week(time.Now())
	client := &http.Client{Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				id := fmt.Sprintf("%032x", i)
				body := fmt.Sprintf(`{"format":1,"id":%q,"program":"load","channel":"stable","week":%q,"os":"linux","arch":"amd64","running":"v1.0.0","counters":[{"name":"upgrade.success","version":"v1.0.0","value":1}]}`, id, week)
				resp, err := client.Post(url+"/v1/reports", "application/json", strings.NewReader(body))
				if err != nil {
					continue // the collector is gone
				}
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					mu.Lock()
					accepted = append(accepted, id)
					if len(accepted) == n/2 && killed.CompareAndSwap(false, true) {
						cmd.Process.Signal(syscall.SIGKILL)
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	cmd.Wait()
	if !killed.Load() {
		ts.Fatalf("the collector was not killed: only %d reports accepted", len(accepted))
	}
	store, err := telemetry.OpenStore(context.Background(), db)
	ts.Check(err)
	defer store.Close()
	missing := 0
	for _, id := range accepted {
		ok, err := store.Has(context.Background(), id)
		ts.Check(err)
		if !ok {
			missing++
		}
	}
	stored, _ := store.Count(context.Background())
	fmt.Fprintf(ts.Stdout(), "accepted %d of %d reports before the kill; stored %d; missing %d\n", len(accepted), n, stored, missing)
	if missing > 0 {
		ts.Fatalf("%d reports answered 2xx are not in the store", missing)
	}
}

// blackhole NAME: listen on 127.0.0.1 and accept connections without ever
// answering, for the rest of the script; NAME is set to its host:port.
func cmdBlackhole(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: blackhole NAME")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	ts.Defer(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	ts.Setenv(args[0], ln.Addr().String())
}

// retag REPO SRC DST: point tag DST of the repository (oci:DIR or
// REGISTRY/NAME) at the manifest tag SRC names, as someone who can write
// the registry's tags (and nothing else) can.
func cmdRetag(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: retag REPO SRC DST")
	}
	st, err := channels.Open(repoArg(ts, args[0]), true)
	ts.Check(err)
	ctx := context.Background()
	d, err := st.Resolve(ctx, args[1])
	ts.Check(err)
	ts.Check(st.Tag(ctx, args[2], d))
}

// untag DIR TAG: delete a tag of the OCI layout DIR.
func cmdUntag(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: untag DIR TAG")
	}
	p, err := layout.FromPath(workPath(ts, args[0]))
	ts.Check(err)
	ts.Check(p.RemoveDescriptors(match.Annotation("org.opencontainers.image.ref.name", args[1])))
}

// repoArg is a repository argument with oci: paths relative to $WORK.
func repoArg(ts *testscript.TestScript, ref string) string {
	if dir, ok := strings.CutPrefix(ref, "oci:"); ok {
		return "oci:" + workPath(ts, dir)
	}
	return ref
}

// unsign DIR TAG: delete the signature of the manifest TAG names in the
// OCI layout DIR.
func cmdUnsign(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: unsign DIR TAG")
	}
	st, err := channels.Open("oci:"+workPath(ts, args[0]), false)
	ts.Check(err)
	d, err := st.Resolve(context.Background(), args[1])
	ts.Check(err)
	cmdUntag(ts, false, []string{args[0], channels.SignatureTag(d)})
}
