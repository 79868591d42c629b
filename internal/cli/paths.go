package cli

import (
	"os"
	"path/filepath"

	"github.com/relcheck/relcheck/telemetry"
)

// Where an operator's relcheck keeps things: the subscription (and the
// telemetry consent beside it) under the configuration directory, what it
// has seen under the state directory.

// subscriptionPath is where the subscription lives: --config, else
// $XDG_CONFIG_HOME/relcheck/subscription.yaml when XDG_CONFIG_HOME is set,
// /etc/relcheck/ as root, ~/.config/relcheck/ otherwise.
func subscriptionPath(s *streams, flag string) string {
	if flag != "" {
		return flag
	}
	return configFile(s.getenv, os.Geteuid())
}

func configFile(getenv func(string) string, euid int) string {
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "relcheck", "subscription.yaml")
	}
	if euid == 0 {
		return "/etc/relcheck/subscription.yaml"
	}
	return filepath.Join(home(getenv), ".config", "relcheck", "subscription.yaml")
}

// stateDir is where relcheck keeps what a client has seen (heads.json,
// telemetry records): $XDG_STATE_HOME/relcheck when set, /var/lib/relcheck
// as root, ~/.local/state/relcheck otherwise.
func stateDir(s *streams) string {
	return stateDirFor(s.getenv, os.Geteuid(), dirExists)
}

// legacyRootState is where root's state was kept before /var/lib/relcheck:
// still used when it exists and the new place does not.
const legacyRootState = "/root/.local/state/relcheck"

func stateDirFor(getenv func(string) string, euid int, exists func(string) bool) string {
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "relcheck")
	}
	if euid == 0 {
		if !exists("/var/lib/relcheck") && exists(legacyRootState) {
			return legacyRootState
		}
		return "/var/lib/relcheck"
	}
	return filepath.Join(home(getenv), ".local", "state", "relcheck")
}

func home(getenv func(string) string) string {
	if h := getenv("HOME"); h != "" {
		return h
	}
	h, _ := os.UserHomeDir()
	return h
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// telemetryClient is the operator's telemetry: consent next to the
// subscription, records in the state directory.
func telemetryClient(s *streams) *telemetry.Client {
	return &telemetry.Client{
		ConfigDir: filepath.Dir(subscriptionPath(s, "")),
		StateDir:  filepath.Join(stateDir(s), "telemetry"),
		Getenv:    s.getenv,
	}
}
