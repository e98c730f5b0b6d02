package main

import (
	"time"

	"selfhost.dev/edgeapp/app"
)

// parseOutbox reads OUTBOX_LEASE, OUTBOX_HEARTBEAT and
// OUTBOX_POLL_INTERVAL, reporting each problem through bad.
func parseOutbox(env func(name, def string) string, bad func(format string, args ...any)) OutboxConfig {
	dur := func(name string, def time.Duration) time.Duration {
		v := env(name, "")
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad("%s=%q: want a positive duration such as 30s or 500ms", name, v)
			return def
		}
		return d
	}
	c := OutboxConfig{
		Lease:        dur("OUTBOX_LEASE", app.DefaultLease),
		PollInterval: dur("OUTBOX_POLL_INTERVAL", app.DefaultPollInterval),
	}
	c.Heartbeat = dur("OUTBOX_HEARTBEAT", c.Lease/3)
	// One renewal may fail (a database blip) without the lease running
	// out: at least two beats per lease.
	if c.Heartbeat > c.Lease/2 {
		bad("OUTBOX_HEARTBEAT=%v must be at most half of OUTBOX_LEASE=%v, so that one failed renewal does not lose a running job", c.Heartbeat, c.Lease)
	}
	return c
}
