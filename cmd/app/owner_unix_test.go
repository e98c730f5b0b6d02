//go:build unix

package main

import (
	"path/filepath"
	"testing"
)

// TestLockOwner: one holder at a time; released, the lock can be taken
// again (the kernel also releases it when the holder dies).
func TestLockOwner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db.owner")
	release, owned, err := lockOwner(path)
	if err != nil || !owned {
		t.Fatalf("first lockOwner = %v, %v; want owned", owned, err)
	}
	if _, owned, err := lockOwner(path); err != nil || owned {
		t.Fatalf("second lockOwner while held = %v, %v; want not owned, no error", owned, err)
	}
	release()
	release2, owned, err := lockOwner(path)
	if err != nil || !owned {
		t.Fatalf("lockOwner after release = %v, %v; want owned", owned, err)
	}
	release2()
	if _, _, err := lockOwner(filepath.Join(t.TempDir(), "missing", "app.db.owner")); err == nil {
		t.Error("lockOwner in a missing directory: no error")
	}
}
