package main

import "syscall"

// sysProcAttr puts a child in its own process group and has the kernel
// stop it if devrun dies without stopping it (Pdeathsig is Linux-only).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
