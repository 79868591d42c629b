package cli

import "testing"

func TestNormaliseRemote(t *testing.T) {
	for in, want := range map[string]string{
		"git@github.com:org/app.git":                      "github.com/org/app",
		"https://github.com/org/app.git":                  "github.com/org/app",
		"https://github.com/org/app":                      "github.com/org/app",
		"ssh://git@gitlab.example.com:2222/g/sub/app.git": "gitlab.example.com/g/sub/app",
		"https://github.com":                              "github.com",
		"https://user@git.example.com/a/b/":               "git.example.com/a/b",
	} {
		if got := normaliseRemote(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
