package cli

import "testing"

// TestPaths: where the subscription and the state live, as the README's
// "Where relcheck keeps things" says.
func TestPaths(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	none := func(string) bool { return false }
	tests := []struct {
		name          string
		env           map[string]string
		euid          int
		exists        func(string) bool
		config, state string
	}{
		{"user", map[string]string{"HOME": "/home/op"}, 1000, none, "/home/op/.config/relcheck/subscription.yaml", "/home/op/.local/state/relcheck"},
		{"user with XDG", map[string]string{"HOME": "/home/op", "XDG_CONFIG_HOME": "/c", "XDG_STATE_HOME": "/s"}, 1000, none, "/c/relcheck/subscription.yaml", "/s/relcheck"},
		{"root", map[string]string{"HOME": "/root"}, 0, none, "/etc/relcheck/subscription.yaml", "/var/lib/relcheck"},
		{"root with XDG", map[string]string{"XDG_CONFIG_HOME": "/c", "XDG_STATE_HOME": "/s"}, 0, none, "/c/relcheck/subscription.yaml", "/s/relcheck"},
		{"root with state from before /var/lib", map[string]string{"HOME": "/root"}, 0, func(p string) bool { return p == legacyRootState }, "/etc/relcheck/subscription.yaml", legacyRootState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := configFile(env(tt.env), tt.euid); got != tt.config {
				t.Errorf("subscription %s, want %s", got, tt.config)
			}
			if got := stateDirFor(env(tt.env), tt.euid, tt.exists); got != tt.state {
				t.Errorf("state %s, want %s", got, tt.state)
			}
		})
	}
}
