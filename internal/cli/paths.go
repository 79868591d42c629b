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
	if d := s.getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "relcheck", "subscription.yaml")
	}
	if os.Geteuid() == 0 {
		return "/etc/relcheck/subscription.yaml"
	}
	home := s.getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".config", "relcheck", "subscription.yaml")
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

// telemetryClient is the operator's telemetry: consent next to the
// subscription, records in the state directory.
func telemetryClient(s *streams) *telemetry.Client {
	return &telemetry.Client{
		ConfigDir: filepath.Dir(subscriptionPath(s, "")),
		StateDir:  filepath.Join(stateDir(s), "telemetry"),
		Getenv:    s.getenv,
	}
}
