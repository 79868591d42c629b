//go:build !linux

package perf

import (
	"os/exec"
	"runtime"
)

// duetCPUs is every CPU: without an affinity call the operating system
// places base and head, which still run at the same time.
func duetCPUs() []int {
	cpus := make([]int, runtime.NumCPU())
	for i := range cpus {
		cpus[i] = i
	}
	return cpus
}

func startPinned(cmd *exec.Cmd, cpu int) error { return cmd.Start() }
