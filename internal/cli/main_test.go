package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/relcheck/relcheck/perf"
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

// TestPerfProgress: a bar redrawn in place on a terminal, a line per round
// otherwise.
func TestPerfProgress(t *testing.T) {
	var tty, plain strings.Builder
	for _, p := range []perf.Progress{{Phase: "rounds", Done: 1, Total: 4, Left: 3 * time.Second}, {Phase: "rounds", Done: 4, Total: 4}} {
		perfProgress(&tty, true)(p)
		perfProgress(&plain, false)(p)
	}
	if want := "\r\033[Krelcheck: perf rounds [#####...............] 1/4, about 3s left\r\033[Krelcheck: perf rounds [####################] 4/4\n"; tty.String() != want {
		t.Errorf("terminal:\n%q\nwant\n%q", tty.String(), want)
	}
	if want := "relcheck: perf rounds 1/4 done, about 3s left\nrelcheck: perf rounds 4/4 done\n"; plain.String() != want {
		t.Errorf("plain:\n%q\nwant\n%q", plain.String(), want)
	}
}

func TestByteBar(t *testing.T) {
	var tty, plain strings.Builder
	tb := &byteBar{w: &tty, tty: true, label: "pushing v1", total: 32 << 20}
	pb := &byteBar{w: &plain, label: "pushing v1", total: 32 << 20}
	for i := 0; i < 4; i++ {
		tb.add(8 << 20)
		pb.add(8 << 20)
	}
	tb.finish()
	pb.finish()
	if !strings.HasPrefix(tty.String(), "\r\033[Krelcheck: pushing v1 [######..................] 8.0 MiB/32.0 MiB") ||
		!strings.Contains(tty.String(), "\r\033[Krelcheck: pushing v1: 32.0 MiB in ") {
		t.Errorf("terminal:\n%q", tty.String())
	}
	want := "relcheck: pushing v1 25% (8.0 MiB of 32.0 MiB)\nrelcheck: pushing v1 50% (16.0 MiB of 32.0 MiB)\nrelcheck: pushing v1 75% (24.0 MiB of 32.0 MiB)\nrelcheck: pushing v1: 32.0 MiB in "
	if !strings.HasPrefix(plain.String(), want) {
		t.Errorf("plain:\n%q\nwant prefix\n%q", plain.String(), want)
	}
	// Small pushes stay quiet in logs.
	var small strings.Builder
	sb := &byteBar{w: &small, label: "x", total: 1 << 20}
	sb.add(1 << 20)
	sb.finish()
	if small.Len() != 0 {
		t.Errorf("a small push logged %q", small.String())
	}
}
