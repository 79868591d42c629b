//go:build linux

package perf

import (
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestStartPinned: a duet's child runs on the CPU it was given (the mask
// is inherited from the forking thread), and this process keeps its own.
func TestStartPinned(t *testing.T) {
	cpus := duetCPUs()
	if len(cpus) == 0 {
		t.Fatal("no CPUs in this process's mask")
	}
	before := len(cpus)
	for _, cpu := range cpus[max(0, len(cpus)-2):] {
		cmd := exec.Command("sh", "-c", "grep Cpus_allowed_list /proc/self/status")
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := startPinned(cmd, cpu); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(strings.TrimPrefix(out.String(), "Cpus_allowed_list:")); got != strconv.Itoa(cpu) {
			t.Errorf("pinned to %d, the child may run on %q", cpu, got)
		}
	}
	if after := len(duetCPUs()); after != before {
		t.Errorf("this process's mask changed from %d to %d CPUs", before, after)
	}
}
