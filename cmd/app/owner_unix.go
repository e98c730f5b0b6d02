//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockOwner takes an exclusive lock on the file at path, without waiting,
// and reports whether this process got it. The embedded SQLite default
// holds it while serving: the process that holds it knows that no other
// app process uses the database, so the outbox leases it finds at start
// were left by a crash and can be reclaimed at once. The kernel drops
// the lock when the process dies, even by SIGKILL, so a crash never
// leaves it held.
func lockOwner(path string) (release func(), owned bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, true, nil
}
