//go:build linux

package perf

import (
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// duetCPUs lists the CPUs this process may run on: a duet pins base and
// head to two of them.
func duetCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for i := 0; i < 1024; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus
}

// startPinned starts cmd on one CPU: the child inherits the CPU mask of
// the thread that forks it, so this goroutine's thread is pinned for the
// fork and restored afterwards. cpu < 0 starts it unpinned.
func startPinned(cmd *exec.Cmd, cpu int) error {
	if cpu < 0 {
		return cmd.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return cmd.Start()
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return cmd.Start()
	}
	defer unix.SchedSetaffinity(0, &old)
	return cmd.Start()
}
