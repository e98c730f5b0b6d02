package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func runCmd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateShippedRoutes(t *testing.T) {
	code, _, stderr := runCmd(t, "", "validate", "-config", "../../routes.yaml")
	// The line of the hash, wherever edits to the file have moved it.
	shipped, err := os.ReadFile("../../routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	line := 1 + strings.Count(string(shipped[:strings.Index(string(shipped), "${EDGE_ADMIN_HASH}")]), "\n")
	if code != 1 || !strings.Contains(stderr, fmt.Sprintf("../../routes.yaml:%d: users.admins[0].hash: environment variable EDGE_ADMIN_HASH is not set", line)) {
		t.Errorf("without EDGE_ADMIN_HASH: exit %d, %q", code, stderr)
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	t.Setenv("EDGE_ADMIN_HASH", string(h))
	code, stdout, stderr := runCmd(t, "", "validate", "-config", "../../routes.yaml")
	if code != 0 || stdout != "valid\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestValidateReportsEveryError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(p, []byte("listen: x\nroutes:\n  - { path: /, to: nope }\n"), 0o600)
	code, stdout, stderr := runCmd(t, "", "validate", "-config", p)
	want := p + `:1: listen: bad address "x" (want host:port or :port)` + "\n" +
		p + `:3: routes[0].to: bad URL "nope" (want http://host:port[/base])` + "\n"
	if code != 1 || stdout != "" || stderr != want {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant:\n%s", code, stdout, stderr, want)
	}
	if code, _, stderr := runCmd(t, "", "validate", "-config", filepath.Join(t.TempDir(), "missing.yaml")); code != 1 || !strings.Contains(stderr, "no such file") {
		t.Errorf("missing file: %d %q", code, stderr)
	}
}

func TestHashPassword(t *testing.T) {
	code, stdout, stderr := runCmd(t, "correct horse\n", "hash-password", "-cost", "4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	hash := strings.TrimSpace(stdout)
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse")); err != nil {
		t.Errorf("hash %q does not match: %v", hash, err)
	}
	if code, _, stderr := runCmd(t, "\n", "hash-password"); code != 1 || !strings.Contains(stderr, "empty password") {
		t.Errorf("empty: %d %q", code, stderr)
	}
}

func TestCommands(t *testing.T) {
	if code, stdout, _ := runCmd(t, "", "version"); code != 0 || !strings.HasPrefix(stdout, "edge ") {
		t.Errorf("version: %d %q", code, stdout)
	}
	if code, _, stderr := runCmd(t, "", "frobnicate"); code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown: %d %q", code, stderr)
	}
	if code, _, _ := runCmd(t, "", "validate", "-nope"); code != 2 {
		t.Errorf("bad flag: %d", code)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// The built binary serves, reloads on SIGHUP and drains on SIGTERM.
func TestBinarySignals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "edge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "up")
	}))
	defer up.Close()
	pub, adm := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "routes.yaml")
	write := func(tag string) {
		y := "listen: \"" + pub + "\"\nadmin: \"" + adm + "\"\naccess_log: off\nroutes:\n" +
			"  - { path: /, to: \"" + up.URL + "\", headers: { X-Tag: " + tag + " } }\n"
		if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("one")
	cmd := exec.Command(bin, "run", "-config", cfg)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	tag := func() string {
		res, err := http.Get("http://" + pub + "/")
		if err != nil {
			return ""
		}
		res.Body.Close()
		return res.Header.Get("X-Tag")
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for tag() != want {
			if time.Now().After(deadline) {
				t.Fatalf("X-Tag never became %q; logs:\n%s", want, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("one")
	write("two")
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitFor("two")
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v; logs:\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}
