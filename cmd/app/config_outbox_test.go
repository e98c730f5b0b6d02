package main

import (
	"strings"
	"testing"
	"time"
)

func TestConfigOutbox(t *testing.T) {
	c, err := parseConfig(envOf(map[string]string{"PUBLIC_API_KEY": testKey}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Outbox != (OutboxConfig{Lease: 30 * time.Second, Heartbeat: 10 * time.Second, PollInterval: 2 * time.Second}) {
		t.Errorf("defaults: %+v", c.Outbox)
	}
	c, err = parseConfig(envOf(map[string]string{"PUBLIC_API_KEY": testKey,
		"OUTBOX_LEASE": "3s", "OUTBOX_HEARTBEAT": "500ms", "OUTBOX_POLL_INTERVAL": "100ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Outbox != (OutboxConfig{Lease: 3 * time.Second, Heartbeat: 500 * time.Millisecond, PollInterval: 100 * time.Millisecond}) {
		t.Errorf("parsed: %+v", c.Outbox)
	}
	if c, err = parseConfig(envOf(map[string]string{"PUBLIC_API_KEY": testKey, "OUTBOX_LEASE": "6s"})); err != nil || c.Outbox.Heartbeat != 2*time.Second {
		t.Errorf("OUTBOX_LEASE=6s alone: heartbeat %v (%v), want 2s (a third)", c.Outbox.Heartbeat, err)
	}

	for env, want := range map[string]string{
		"OUTBOX_LEASE=soon":         `OUTBOX_LEASE="soon": want a positive duration`,
		"OUTBOX_LEASE=-1s":          `OUTBOX_LEASE="-1s": want a positive duration`,
		"OUTBOX_POLL_INTERVAL=0":    `OUTBOX_POLL_INTERVAL="0": want a positive duration`,
		"OUTBOX_HEARTBEAT=20s":      "OUTBOX_HEARTBEAT=20s must be at most half of OUTBOX_LEASE=30s",
		"OUTBOX_HEARTBEAT=1 minute": `OUTBOX_HEARTBEAT="1 minute": want a positive duration`,
	} {
		k, v, _ := strings.Cut(env, "=")
		_, err := parseConfig(envOf(map[string]string{"PUBLIC_API_KEY": testKey, k: v}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to say %q", env, err, want)
		}
	}
}
