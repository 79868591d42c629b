package relcheck_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/internal/gittest"
)

// action is the part of action.yml the runner uses for a composite action.
type action struct {
	Inputs map[string]struct {
		Default string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Value string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string `yaml:"using"`
		Steps []struct {
			ID               string            `yaml:"id"`
			Name             string            `yaml:"name"`
			Shell            string            `yaml:"shell"`
			WorkingDirectory string            `yaml:"working-directory"`
			Env              map[string]string `yaml:"env"`
			Run              string            `yaml:"run"`
			Uses             string            `yaml:"uses"`
			If               string            `yaml:"if"`
		} `yaml:"steps"`
	} `yaml:"runs"`
}

var expr = regexp.MustCompile(`\$\{\{\s*([a-zA-Z0-9_.-]+)\s*\}\}`)

// runAction runs action.yml's steps the way the runner does for a composite
// action: expressions substituted, each step in bash with its env and
// working directory, a fresh GITHUB_OUTPUT file per step, and the action's
// outputs resolved from the step outputs. It returns the outputs, the
// combined output of the steps and the exit code of the failing step (0).
func runAction(t *testing.T, workspace string, inputs map[string]string) (map[string]string, string, int) {
	t.Helper()
	data, err := os.ReadFile("action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var a action
	if err := yaml.Unmarshal(data, &a); err != nil {
		t.Fatal(err)
	}
	if a.Runs.Using != "composite" {
		t.Fatalf("runs.using = %q, want composite", a.Runs.Using)
	}
	actionPath, _ := filepath.Abs(".")
	temp := t.TempDir()
	summary := filepath.Join(temp, "step_summary.md")
	// An earlier step's summary, which must be kept (appended to, not replaced).
	if err := os.WriteFile(summary, []byte("earlier step\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stepOutputs := map[string]map[string]string{}
	in := map[string]string{}
	for k, v := range a.Inputs {
		in[k] = v.Default
	}
	for k, v := range inputs {
		in[k] = v
	}
	subst := func(s string) string {
		return expr.ReplaceAllStringFunc(s, func(m string) string {
			name := expr.FindStringSubmatch(m)[1]
			switch {
			case strings.HasPrefix(name, "inputs."):
				return in[strings.TrimPrefix(name, "inputs.")]
			case strings.HasPrefix(name, "steps."):
				parts := strings.SplitN(name, ".", 4) // steps.ID.outputs.NAME
				return stepOutputs[parts[1]][parts[3]]
			case name == "github.action_path":
				return actionPath
			}
			t.Fatalf("unsupported expression %s", m)
			return ""
		})
	}
	var log bytes.Buffer
	code := 0
	for i, st := range a.Runs.Steps {
		if st.Uses != "" {
			// The only action the steps use is actions/cache, for hosted
			// runners; here it finds nothing, as on a first run.
			if !strings.HasPrefix(st.Uses, "actions/cache@") {
				t.Fatalf("step %d uses %s: runAction only knows actions/cache", i, st.Uses)
			}
			continue
		}
		if st.Shell != "bash" {
			t.Fatalf("step %d: shell %q, want bash", i, st.Shell)
		}
		outFile := filepath.Join(temp, "output-"+st.ID+"-"+string(rune('a'+i)))
		if err := os.WriteFile(outFile, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		script := filepath.Join(temp, "step.sh")
		if err := os.WriteFile(script, []byte(subst(st.Run)), 0o755); err != nil {
			t.Fatal(err)
		}
		// The runner runs bash steps as: bash --noprofile --norc -eo pipefail {0}
		cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", script)
		cmd.Dir = workspace
		if wd := subst(st.WorkingDirectory); wd != "" {
			cmd.Dir = filepath.Join(workspace, wd)
		}
		cmd.Env = append(os.Environ(),
			"GITHUB_ACTION_PATH="+actionPath, "GITHUB_WORKSPACE="+workspace,
			"RUNNER_TEMP="+temp, "GITHUB_OUTPUT="+outFile, "GITHUB_STEP_SUMMARY="+summary,
			"RUNNER_TOOL_CACHE="+toolCache(t), "RUNNER_OS=Linux", "RUNNER_ARCH=X64",
			// relcheck's state stays in the test's directory (as root the
			// default is /var/lib/relcheck).
			"XDG_STATE_HOME="+filepath.Join(temp, "state"), "XDG_CONFIG_HOME="+filepath.Join(temp, "config"),
			"GITHUB_ACTIONS=true", "CI=true", "NO_COLOR=")
		for k, v := range st.Env {
			cmd.Env = append(cmd.Env, k+"="+subst(v))
		}
		cmd.Stdout, cmd.Stderr = &log, &log
		err := cmd.Run()
		outs := map[string]string{}
		f, _ := os.ReadFile(outFile)
		sc := bufio.NewScanner(bytes.NewReader(f))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				outs[k] = v
			}
		}
		if st.ID != "" {
			stepOutputs[st.ID] = outs
		}
		if err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("step %q: %v", st.Name, err)
			}
			code = ee.ExitCode()
			break
		}
	}
	result := map[string]string{}
	for k, o := range a.Outputs {
		result[k] = subst(o.Value)
	}
	if s, err := os.ReadFile(summary); err == nil {
		result["(step summary)"] = string(s)
	}
	return result, log.String(), code
}

var (
	toolCacheOnce sync.Once
	toolCacheDir  string
)

// toolCache is the runner's tool cache, shared by every run of the action
// in this test binary (as a self-hosted runner keeps it): the first run
// builds relcheck, the others use the cached binary.
func toolCache(t *testing.T) string {
	toolCacheOnce.Do(func() {
		d, err := os.MkdirTemp("", "relcheck-toolcache-")
		if err != nil {
			t.Fatal(err)
		}
		toolCacheDir = d
	})
	return toolCacheDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if toolCacheDir != "" {
		os.RemoveAll(toolCacheDir)
	}
	os.Exit(code)
}

func gitRepo(t *testing.T, files map[string]string, tag string, head map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) { gittest.Git(t, dir, args...) }
	write := func(fs map[string]string) {
		for name, content := range fs {
			p := filepath.Join(dir, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	run("init", "-q", "-b", "main")
	write(files)
	run("add", "-A")
	run("commit", "-qm", "release")
	run("tag", tag)
	write(head)
	run("commit", "-qam", "change")
	return dir
}

// trackSources reads every tracked file, so that go test's result cache
// knows these tests depend on them (the action builds relcheck from source in
// a subprocess, which the cache does not see).
func trackSources(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("git", "ls-files").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	files := strings.Fields(string(out))
	for _, f := range files {
		os.ReadFile(f)
	}
	return files
}

func TestAction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds relcheck the way the action does; skipped with -short")
	}
	trackSources(t)
	for _, tool := range []string{"bash", "git", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	ws := gitRepo(t, map[string]string{
		"lib/go.mod": "module example.com/lib\n\ngo 1.22\n",
		"lib/lib.go": "package lib\n\nfunc Parse(s string) int { return len(s) }\n",
	}, "lib/v1.0.0", map[string]string{
		"lib/lib.go": "package lib\n\nfunc Parse(s string) (int, error) { return len(s), nil }\n",
	})

	t.Run("failing check", func(t *testing.T) {
		out, log, code := runAction(t, ws, map[string]string{"working-directory": "lib"})
		if code != 1 {
			t.Fatalf("exit code %d, want 1\n%s", code, log)
		}
		if !strings.Contains(log, "relcheck: built in ") {
			t.Errorf("the first run did not build relcheck:\n%s", log)
		}
		if out["status"] != "fail" || out["next-version"] != "" {
			t.Errorf("outputs = %v\n%s", out, log)
		}
		rep, err := os.ReadFile(out["report"])
		if err != nil {
			t.Fatalf("report output %q: %v", out["report"], err)
		}
		if !bytes.Contains(rep, []byte(`"rule": "api/incompatible"`)) {
			t.Errorf("JSON report lacks the finding:\n%s", rep)
		}
		if !strings.Contains(log, "::error file=lib/lib.go,line=3,title=api/incompatible::") {
			t.Errorf("no annotation at lib/lib.go:3 in\n%s", log)
		}
		if !strings.Contains(out["(step summary)"], "api/incompatible") {
			t.Errorf("step summary lacks the finding:\n%s", out["(step summary)"])
		}
		if !strings.HasPrefix(out["(step summary)"], "earlier step\n") {
			t.Errorf("step summary was overwritten:\n%s", out["(step summary)"])
		}
	})

	t.Run("sarif input", func(t *testing.T) {
		// Relative to the workspace, not to working-directory.
		out, log, code := runAction(t, ws, map[string]string{"working-directory": "lib", "sarif": "relcheck.sarif"})
		if code != 1 || out["status"] != "fail" {
			t.Fatalf("exit %d, outputs %v\n%s", code, out, log)
		}
		// The same action sources: the binary comes from the tool cache.
		if !strings.Contains(log, "relcheck: using the cached binary") || strings.Contains(log, "relcheck: built in") {
			t.Errorf("the second run built relcheck again:\n%s", log)
		}
		sarif := filepath.Join(ws, "relcheck.sarif")
		defer os.Remove(sarif)
		if data, err := os.ReadFile(sarif); err != nil || !bytes.Contains(data, []byte(`"uri": "lib/lib.go"`)) {
			t.Errorf("SARIF report: %v\n%s", err, data)
		}
	})

	t.Run("passing check with base input", func(t *testing.T) {
		out, log, code := runAction(t, ws, map[string]string{"working-directory": "lib", "base": "HEAD", "gates": "api"})
		if code != 0 || out["status"] != "pass" {
			t.Fatalf("exit %d, outputs %v\n%s", code, out, log)
		}
		// No API change since HEAD, policy of lib/v1.0.0: a patch.
		if out["next-version"] != "v1.0.1" {
			t.Errorf("next-version = %q, want v1.0.1", out["next-version"])
		}
		if data, err := os.ReadFile(out["report"]); err != nil || !bytes.Contains(data, []byte(`"status": "pass"`)) {
			t.Errorf("report %q: %v\n%s", out["report"], err, data)
		}
	})

	t.Run("publish mode", func(t *testing.T) {
		keys := t.TempDir()
		if _, _, err := channels.GenerateKeys(keys, []byte("ci-secret")); err != nil {
			t.Fatal(err)
		}
		key, _ := os.ReadFile(filepath.Join(keys, channels.PrivateKeyFile))
		repo := "oci:" + filepath.Join(t.TempDir(), "releases")
		out, log, code := runAction(t, ws, map[string]string{"working-directory": "lib", "base": "HEAD", "gates": "api",
			"mode": "publish", "repository": repo, "files": "lib.go go.mod", "signing-key": string(key), "signing-password": "ci-secret"})
		if code != 0 || out["status"] != "pass" {
			t.Fatalf("exit %d, outputs %v\n%s", code, out, log)
		}
		if !regexp.MustCompile(`^v1\.0\.1-0\.\d{14}\.g[0-9a-f]{12}$`).MatchString(out["published-version"]) || !strings.HasPrefix(out["published-digest"], "sha256:") {
			t.Fatalf("publish outputs %v\n%s", out, log)
		}
		st, _ := channels.Open(repo, false)
		v, _ := channels.LoadVerifier(filepath.Join(keys, channels.PublicKeyFile))
		h, _, err := channels.ReadHead(context.Background(), st, "edge", v)
		if err != nil {
			t.Fatal(err)
		}
		if r := h.Find(out["published-version"]); r == nil || r.Digest != out["published-digest"] {
			t.Errorf("the edge head lacks the release: %+v", h)
		}
		// Without a key, the publish step says what is missing.
		_, log, code = runAction(t, ws, map[string]string{"working-directory": "lib", "base": "HEAD", "gates": "api",
			"mode": "publish", "repository": repo, "files": "lib.go"})
		if code != 2 || !strings.Contains(log, "mode publish needs the inputs repository, files and signing-key") {
			t.Errorf("publish without a key: exit %d\n%s", code, log)
		}
	})

	t.Run("usage error", func(t *testing.T) {
		out, log, code := runAction(t, ws, map[string]string{"working-directory": "lib", "args": "--format-typo"})
		if code != 2 || out["status"] != "error" {
			t.Fatalf("exit %d, outputs %v\n%s", code, out, log)
		}
	})
}

// TestActionInRunner runs the action through act, a GitHub Actions runner,
// in a workflow like the one in the README: a real runner's expression
// evaluation, composite-action handling, step outputs and annotations.
// .ci/run installs act; elsewhere the test is skipped when act is missing.
func TestActionInRunner(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a workflow; skipped with -short")
	}
	act, err := exec.LookPath("act")
	if err != nil {
		t.Skip("act not installed (go install github.com/nektos/act@v0.2.89): the runner test needs it")
	}
	ws := gitRepo(t, map[string]string{
		"lib/go.mod": "module example.com/lib\n\ngo 1.22\n",
		"lib/lib.go": "package lib\n\nfunc Parse(s string) int { return len(s) }\n",
	}, "lib/v1.0.0", map[string]string{
		"lib/lib.go": "package lib\n\nfunc Parse(s string) (int, error) { return len(s), nil }\n",
	})
	// The action must live inside the checkout for "uses: ./path".
	for _, f := range trackSources(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // deleted in the working tree
		}
		dst := filepath.Join(ws, ".relcheck", f)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	results := filepath.Join(t.TempDir(), "results.txt")
	workflow := `on: push
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - id: relcheck
        uses: ./.relcheck
        continue-on-error: true
        with:
          working-directory: lib
      - run: |
          echo "status=${{ steps.relcheck.outputs.status }}" > ` + results + `
          echo "next-version=${{ steps.relcheck.outputs.next-version }}" >> ` + results + `
          cp "${{ steps.relcheck.outputs.report }}" ` + results + `.json
`
	os.MkdirAll(filepath.Join(ws, ".github", "workflows"), 0o755)
	if err := os.WriteFile(filepath.Join(ws, ".github", "workflows", "ci.yml"), []byte(workflow), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"add", "-A"}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "workflow"}} {
		if out, err := exec.Command("git", append([]string{"-C", ws}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	// The commit above moved HEAD; the module change is still the one after lib/v1.0.0.
	// Twice in the same runner: the second run takes relcheck's binary
	// from the runner's tool cache instead of building it.
	home := t.TempDir()
	// The runner's Go caches are the machine's, as setup-go's cache gives a
	// hosted runner: the first run builds relcheck from cached packages.
	var goCaches []string
	for _, k := range []string{"GOCACHE", "GOMODCACHE"} {
		if v, err := exec.Command("go", "env", k).Output(); err == nil {
			goCaches = append(goCaches, k+"="+strings.TrimSpace(string(v)))
		}
	}
	runAct := func() []byte {
		cmd := exec.Command(act, "push", "-P", "ubuntu-latest=-self-hosted", "--pull=false")
		cmd.Dir = ws
		cmd.Env = append(append(os.Environ(), "HOME="+home, "XDG_STATE_HOME="+filepath.Join(home, "state"), "XDG_CONFIG_HOME="+filepath.Join(home, "config")), goCaches...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("act: %v\n%s", err, out)
		}
		t.Logf("act run: %s", time.Since(start).Round(time.Second)) // a figure for the record, not a verdict
		return out
	}
	first := runAct()
	if !strings.Contains(string(first), "relcheck: built in ") {
		t.Errorf("the first run did not build relcheck:\n%s", first)
	}
	out := runAct()
	if !strings.Contains(string(out), "relcheck: using the cached binary") {
		t.Errorf("the second run did not use the cached binary:\n%s", out)
	}
	got, err := os.ReadFile(results)
	if err != nil {
		t.Fatalf("the workflow wrote no results: %v\n%s", err, out)
	}
	if !strings.Contains(string(got), "status=fail\n") || !strings.Contains(string(got), "next-version=\n") {
		t.Errorf("outputs:\n%s\nact output:\n%s", got, out)
	}
	rep, err := os.ReadFile(results + ".json")
	if err != nil || !bytes.Contains(rep, []byte(`"rule": "api/incompatible"`)) {
		t.Errorf("report: %v\n%s", err, rep)
	}
	if !strings.Contains(string(out), "::error file=lib/lib.go,line=3,title=api/incompatible::") {
		t.Errorf("no annotation in the runner's output:\n%s", out)
	}
}
