package testserver

import (
	"os"
	"os/exec"
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
