package testserver

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// stopProcess sends sig to cmd, whose exit closes done, and
// kills it if it has not exited within grace. It reports whether it had
// to kill.
func stopProcess(cmd *exec.Cmd, done <-chan struct{}, sig os.Signal, grace time.Duration) (killed bool) {
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return false
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
		return true
	}
}

// startUntilCleanup starts cmd, whose output goes to logFile, and stops it
// with SIGTERM (SIGKILL after 10 s) when t ends; logFile is closed once
// the process has exited. It returns the channel closed at that exit.
func startUntilCleanup(t testing.TB, name string, cmd *exec.Cmd, logFile *os.File) <-chan struct{} {
	t.Helper()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("testserver: start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(exited) }()
	t.Cleanup(func() { stopProcess(cmd, exited, syscall.SIGTERM, 10*time.Second) })
	return exited
}
