package regtest

import "syscall"

// sysProcAttr kills the registry when the test binary dies without running
// its cleanups (a test timeout, for one).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
