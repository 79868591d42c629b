package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

func TestColor(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		tty  bool
		want bool
	}{
		{"terminal", nil, true, true},
		{"pipe", nil, false, false},
		{"NO_COLOR", map[string]string{"NO_COLOR": "1"}, true, false},
		{"TERM=dumb", map[string]string{"TERM": "dumb"}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &streams{getenv: func(k string) string { return tt.env[k] }, tty: func(io.Writer) bool { return tt.tty }}
			if got := s.color(io.Discard); got != tt.want {
				t.Errorf("color = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTextColourEndToEnd runs the demo through Main with a fake terminal:
// colour codes appear, and NO_COLOR removes them.
func TestTextColourEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	run := func(env map[string]string) string {
		var out, errb bytes.Buffer
		s := &streams{in: strings.NewReader(""), out: &out, err: &errb,
			getenv: func(k string) string { return env[k] }, tty: func(io.Writer) bool { return true }}
		if code := Main(context.Background(), []string{"demo"}, s); code != 0 {
			t.Fatalf("demo exited %d: %s", code, errb.String())
		}
		return out.String()
	}
	if out := run(nil); !strings.Contains(out, "\x1b[") {
		t.Errorf("no colour on a terminal:\n%s", out)
	}
	if out := run(map[string]string{"NO_COLOR": "1"}); strings.Contains(out, "\x1b[") {
		t.Errorf("colour despite NO_COLOR:\n%s", out)
	}
}
