// Package regtest starts the real distribution registry (Debian package
// docker-registry, `docker-registry serve`) on 127.0.0.1 for tests, with
// filesystem storage in a temporary directory, deletes enabled and no
// authentication.
//
// Tests call Start. When the binary is missing the test skips with a hint
// to install it, except in CI (the environment variable CI is set), where
// .ci/run installs it and a missing registry fails the test instead.
package regtest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the registry's command; Debian installs it in /usr/bin.
const binary = "docker-registry"

// Lookup returns the path of the docker-registry binary: on PATH, or
// /usr/bin/docker-registry. The error says how to install it.
func Lookup() (string, error) {
	if p, err := exec.LookPath(binary); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath("/usr/bin/" + binary); err == nil {
		return p, nil
	}
	return "", errors.New("the distribution registry is not installed: docker-registry is neither on PATH nor in /usr/bin (apt-get install docker-registry)")
}

// Available reports whether the registry binary is installed.
func Available() bool {
	_, err := Lookup()
	return err == nil
}

// Start starts a registry for the test and returns its address,
// "127.0.0.1:PORT"; it is stopped when the test ends. Repositories are
// served over plain HTTP, which go-containerregistry uses for loopback
// addresses by itself.
func Start(tb testing.TB) string {
	tb.Helper()
	if _, err := Lookup(); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("in CI the registry must be installed: %v", err)
		}
		tb.Skip(err)
	}
	addr, stop, err := Launch(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
	return addr
}

// Launch starts a registry keeping its configuration, storage and log
// (registry.log) in the existing directory dir, and waits until it serves
// /v2/. stop terminates it (SIGTERM, then SIGKILL after 5 s) and waits for
// it to exit; it does not remove dir.
func Launch(dir string) (addr string, stop func(), err error) {
	bin, err := Lookup()
	if err != nil {
		return "", nil, err
	}
	// The port is picked before the registry binds it: another process may
	// take it in between, so try again when the address is in use.
	for range 3 {
		addr, stop, err = launch(bin, dir)
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return addr, stop, err
}

func launch(bin, dir string) (string, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return "", nil, err
	}
	config := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(config, fmt.Appendf(nil, configTemplate, storage, addr), 0o644); err != nil {
		return "", nil, err
	}
	logPath := filepath.Join(dir, "registry.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "serve", config)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	// REGISTRY_* variables override the configuration file.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return "", nil, fmt.Errorf("starting %s: %v", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); logFile.Close() }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}

	// Poll readiness with a deadline.
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr, stop, nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		select {
		case werr := <-done:
			return "", nil, fmt.Errorf("docker-registry exited before serving: %v\n%s", werr, logTail(logPath))
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("docker-registry did not serve %s within 10s: %v\n%s", addr, err, logTail(logPath))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// configTemplate is the registry's config.yml; arguments: the storage
// directory and the listen address.
const configTemplate = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: regtest
`

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail returns the last lines of the registry's log.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "registry log:\n" + strings.Join(lines, "\n")
}
