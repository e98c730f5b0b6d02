package apptest

import (
	"testing"
	"time"
)

// eventuallyTimeout bounds how long a suite waits for a backend that applies
// writes asynchronously (Meilisearch, an SMTP server) to show them.
const eventuallyTimeout = 10 * time.Second

// eventually calls check until it returns nil, failing t with check's last
// error once eventuallyTimeout has passed. Polling instead of sleeping
// keeps synchronous backends fast and asynchronous ones correct.
func eventually(t *testing.T, check func() error) {
	t.Helper()
	deadline := time.Now().Add(eventuallyTimeout)
	wait := 5 * time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", eventuallyTimeout, err)
		}
		time.Sleep(wait)
		if wait < 100*time.Millisecond {
			wait *= 2
		}
	}
}
