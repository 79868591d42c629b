//go:build !linux

package regtest

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
