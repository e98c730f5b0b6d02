package main

import (
	"os"
	"path/filepath"
	"testing"
)

// edge validate checks the tls: block: every problem with its file and
// line, nothing started, no storage created.
func TestValidateTLS(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "routes.yaml")
	store := filepath.Join(dir, "certs")
	_ = os.WriteFile(p, []byte("tls:\n  domains: [\"*.example.com\"]\n  ca: acme.example.com\n  storage: "+store+"\nroutes:\n  - { path: /, to: \"http://127.0.0.1:9\" }\n"), 0o600)
	code, stdout, stderr := runCmd(t, "", "validate", "-config", p)
	want := p + `:2: tls.domains[0]: bad domain "*.example.com": wildcards need the DNS-01 challenge, which the edge does not solve` + "\n" +
		p + `:3: tls.ca: want letsencrypt, letsencrypt-staging, zerossl or an https:// directory URL, got "acme.example.com"` + "\n" +
		p + `:2: tls.domains: no domains: list them, or give routes a host` + "\n"
	if code != 1 || stdout != "" || stderr != want {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant:\n%s", code, stdout, stderr, want)
	}
	_ = os.WriteFile(p, []byte("h2c: true\ntls:\n  domains: [example.com]\n  storage: "+store+"\nroutes:\n  - { path: /, to: \"http://127.0.0.1:9\" }\n"), 0o600)
	if code, stdout, stderr := runCmd(t, "", "validate", "-config", p); code != 0 || stdout != "valid\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Errorf("validate created the storage directory: %v", err)
	}
}
