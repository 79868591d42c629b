package apicompat

import (
	"strings"
	"testing"
)

func TestFeaturesRoundTrip(t *testing.T) {
	m := typecheck(t, `
import "io"

// Max is the limit.
const Max = 3

// Deprecated: Use New.
var Default *T

type T struct {
	Name string
	io.Reader
	hidden int
}

func (t *T) Close() error { return nil }
func (T) String() string  { return "" }

type I interface {
	Get(key string, opts ...int) ([]byte, error)
	unexported()
}

type Pair[K comparable, V any] struct{ Key K; Val V }

type Alias = T

func Map[T, U any](xs []T, f func(T) U) []U { return nil }
`)
	data := FormatReport(m.Path, m.Features())
	want := []string{
		"pkg example.com/lib, const Max untyped int",
		"pkg example.com/lib, func Map[T any, U any]([]T, func(T) U) []U",
		"pkg example.com/lib, method (*T) Close() error",
		"pkg example.com/lib, method (T) String() string",
		"pkg example.com/lib, type Alias = T",
		"pkg example.com/lib, type I interface { Get, unexported methods }",
		"pkg example.com/lib, type I interface, Get(string, ...int) ([]byte, error)",
		"pkg example.com/lib, type Pair[K comparable, V any] struct, Key K",
		"pkg example.com/lib, type T struct, Name string",
		"pkg example.com/lib, type T struct, embedded io.Reader",
		"pkg example.com/lib, var Default *T //deprecated",
	}
	for _, w := range want {
		if !strings.Contains(string(data), w+"\n") {
			t.Errorf("report lacks %q:\n%s", w, data)
		}
	}
	lines, err := ParseReport(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != strings.Count(string(data), "\npkg ") {
		t.Errorf("parsed %d lines", len(lines))
	}
	for i := 1; i < len(lines); i++ {
		if lines[i-1].Text >= lines[i].Text {
			t.Errorf("not sorted: %q before %q", lines[i-1].Text, lines[i].Text)
		}
	}
}

func TestParseReportErrors(t *testing.T) {
	for _, in := range []string{"func F()\n", "pkg , func F()\n", "pkg a b, func F()\n", "pkg a\n", "pkg a, \n"} {
		if _, err := ParseReport([]byte(in)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("ParseReport(%q) error = %v, want one naming line 1", in, err)
		}
	}
}

func TestSymbolOfLine(t *testing.T) {
	for in, want := range map[string]string{
		"pkg a/b, func F(int) error":    "a/b.F",
		"pkg a, method (*T) M() error":  "a.T.M",
		"pkg a, type T struct, X int":   "a.T",
		"pkg a, func G[T any](T)":       "a.G",
		"pkg a, var V int //deprecated": "a.V",
	} {
		if got := symbolOfLine(in); got != want {
			t.Errorf("symbolOfLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseReport checks that any input either parses into lines that each
// start with "pkg " and carry their line number, or fails with a line number.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte("# comment\n\npkg a, func F()\npkg a, type T struct, X int //deprecated\n"))
	f.Add([]byte("pkg a,func\n"))
	f.Add([]byte("\r\npkg a, x\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := ParseReport(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error %q does not start with a line number", err)
			}
			return
		}
		prev := 0
		for _, l := range lines {
			if !strings.HasPrefix(l.Text, "pkg ") || l.Line <= prev {
				t.Fatalf("bad line %+v after %d", l, prev)
			}
			prev = l.Line
			_ = symbolOfLine(l.Text)
		}
	})
}
