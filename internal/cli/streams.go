package cli

import (
	"io"
	"os"

	"golang.org/x/term"
)

// streams are the process's inputs and outputs, and what it reads of its
// environment, injected so commands are testable without a subprocess.
type streams struct {
	in     io.Reader
	out    io.Writer
	err    io.Writer
	getenv func(string) string
	// lookupEnv tells a variable set to "" from an unset one; nil: set
	// means non-empty.
	lookupEnv func(string) (string, bool)
	// tty reports whether a stream is a terminal; nil means isTerminal.
	tty func(io.Writer) bool
	// afterStep is the installer's hook after each journal step: nil in
	// relcheck; the test binary kills itself at a chosen step.
	afterStep func(step string)
}

// processStreams are the real process's.
func processStreams() *streams {
	return &streams{in: os.Stdin, out: os.Stdout, err: os.Stderr, getenv: os.Getenv, lookupEnv: os.LookupEnv}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	// A terminal answers the terminal ioctl; /dev/null is a character
	// device too, but not a terminal to ask a password on.
	return ok && term.IsTerminal(int(f.Fd()))
}

// color reports whether text output to w should be coloured.
func (s *streams) color(w io.Writer) bool {
	if _, set := s.lookup("NO_COLOR"); set {
		return false
	}
	if s.getenv("TERM") == "dumb" {
		return false
	}
	if s.tty != nil {
		return s.tty(w)
	}
	return isTerminal(w)
}

// lookup is the environment variable k, and whether it is set.
func (s *streams) lookup(k string) (string, bool) {
	if s.lookupEnv != nil {
		return s.lookupEnv(k)
	}
	v := s.getenv(k)
	return v, v != ""
}
