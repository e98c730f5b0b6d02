// Package testserver starts real servers for tests (PostgreSQL, MinIO,
// Prometheus, Alertmanager, ...) on free loopback ports in temp dirs, and
// skips a test whose server is missing, saying how to get it.
//
// Under REQUIRE_INTEGRATION=1 (set by .ci/run) a missing server fails the
// test instead of skipping it, so CI can never go green by skipping.
package testserver

import (
	"os"
	"testing"
)

// Required reports whether integration servers are required (REQUIRE_INTEGRATION=1).
func Required() bool { return os.Getenv("REQUIRE_INTEGRATION") == "1" }

// Skip skips t with the given reason, which should say how to get the
// missing server, or fails t when integration servers are Required.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	if Required() {
		t.Fatalf("REQUIRE_INTEGRATION=1 but: "+format, args...)
	}
	t.Skipf(format, args...)
}
