package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPortTaken: with the edge's port taken (by a first `make run`), devrun
// says so, naming the address and the flag, and exits before making or
// printing any key.
func TestPortTaken(t *testing.T) {
	bin := t.TempDir()
	for _, name := range []string{"app", "edge"} {
		// Never run: devrun must stop before starting anything.
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	data := filepath.Join(t.TempDir(), "data")
	var stdout, stderr bytes.Buffer
	err = run(t.Context(), []string{"-bin", bin, "-data", data, "-listen", taken.Addr().String(),
		"-app", freeAddr(t), "-metrics", freeAddr(t), "-edge-admin", freeAddr(t)}, func(string) string { return "" }, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()+" is taken") || !strings.Contains(err.Error(), "-listen") {
		t.Fatalf("run with the port taken = %v, want an error naming %s and -listen", err, taken.Addr())
	}
	if strings.Contains(stdout.String(), "key") {
		t.Errorf("keys printed before the refusal:\n%s", stdout.String())
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("data directory made before the refusal (%v)", err)
	}
}

// TestNotifyRecipient: SES_TO_EMAIL, like NOTIFY_EMAIL_TO, is where mail
// goes; admin@localhost only when neither is set.
func TestNotifyRecipient(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool // NOTIFY_EMAIL_TO=admin@localhost added
	}{
		{map[string]string{}, true},
		{map[string]string{"NOTIFY_EMAIL_TO": "me@example.com"}, false},
		{map[string]string{"SES_TO_EMAIL": "me@example.com"}, false},
	} {
		got := appEnvironment([]string{"PATH=/bin"}, options{}, &secrets{}, func(k string) string { return tc.env[k] })
		if added := slices.Contains(got, "NOTIFY_EMAIL_TO=admin@localhost"); added != tc.want {
			t.Errorf("env %v: admin@localhost added = %v, want %v", tc.env, added, tc.want)
		}
	}
}
