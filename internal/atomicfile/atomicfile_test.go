package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := Write(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(got) != "two" || fi.Mode().Perm() != 0o644 {
		t.Errorf("%q %v", got, fi.Mode())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := Write(filepath.Join(dir, "missing", "x"), nil, 0o644); err == nil {
		t.Error("wrote into a missing directory")
	}
}

// TestWriteNotRegular: a path that is not a regular file (a named pipe
// here; /dev/null as root) is written to, not replaced by a file.
func TestWriteNotRegular(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skip(err)
	}
	got := make(chan []byte, 1)
	go func() {
		data, _ := os.ReadFile(p)
		got <- data
	}()
	if err := Write(p, []byte("through"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data := <-got; string(data) != "through" {
		t.Errorf("read %q", data)
	}
	if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the pipe was replaced: %v %v", fi.Mode(), err)
	}
	if err := Write(t.TempDir(), []byte("x"), 0o644); err == nil {
		t.Error("wrote over a directory")
	}
}
