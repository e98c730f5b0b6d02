package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"selfhost.dev/edgeapp/internal/testlog"
)

// listening waits for run's "listening" log line and returns its addresses.
func listening(t *testing.T, out *testlog.Buffer, done <-chan error) (api, metrics string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		for line := range strings.SplitSeq(out.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "listening" {
				return rec["addr"].(string), rec["metrics_addr"].(string)
			}
		}
		select {
		case err := <-done:
			t.Fatalf("run returned %v before listening:\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("not listening after 20s:\n%s", out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestRun starts the app on free loopback ports over the embedded
// backends, submits a contact, reads the metrics, and shuts it down.
func TestRun(t *testing.T) {
	env := map[string]string{
		"APP_ADDR": "127.0.0.1:0", "METRICS_ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(),
		"PUBLIC_API_KEY": testKey, "ADMIN_API_KEY": testKey + "-admin", "NOTIFY_EMAIL_TO": "owner@example.com",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testlog.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envOf(env), out) }()
	api, metrics := listening(t, out, done)

	req, _ := http.NewRequest("POST", "http://"+api+"/contact", strings.NewReader(`{"name":"Run","email":"run@example.com","message":"hello"}`))
	req.Header.Set("X-API-Key", testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("POST /contact: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "contact_submissions_total 1") {
		t.Errorf("metrics lack contact_submissions_total 1")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "New contact from Run") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the log mailer's line
	}
	if !strings.Contains(out.String(), "New contact from Run") {
		t.Errorf("no notification logged:\n%s", out.String())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if strings.Contains(out.String(), testKey) {
		t.Error("the API key was logged")
	}
	if !strings.Contains(out.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop:\n%s", out.String())
	}
}

func TestRunMissingKey(t *testing.T) {
	err := run(context.Background(), nil, envOf(map[string]string{"DATA_DIR": t.TempDir()}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "PUBLIC_API_KEY is required") {
		t.Fatalf("error %v", err)
	}
}

func TestRunMigrate(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate"}, envOf(map[string]string{"DATA_DIR": dir, "PUBLIC_API_KEY": testKey}), &out); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if !strings.Contains(out.String(), "migrations applied") {
		t.Errorf("output %s", out.String())
	}
}

// TestRunMigrateDatabaseDown: the PostgreSQL store opens even when its
// server is down (so that serve can start), but migrate must say it
// applied nothing rather than exit 0.
func TestRunMigrateDatabaseDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	var out bytes.Buffer
	err = run(context.Background(), []string{"migrate"}, envOf(map[string]string{
		"DATA_DIR": t.TempDir(), "PUBLIC_API_KEY": testKey,
		"DATABASE_URL": "postgres://app:secret-pw@" + addr + "/app?connect_timeout=5",
	}), &out)
	if err == nil || !strings.Contains(err.Error(), "migrate:") {
		t.Fatalf("error %v, want a migrate failure", err)
	}
	if strings.Contains(out.String(), "migrations applied") || strings.Contains(err.Error()+out.String(), "secret-pw") {
		t.Errorf("output %s / error %v: claims success or leaks the password", out.String(), err)
	}
}

func TestRunUnknownCommand(t *testing.T) {
	err := run(context.Background(), []string{"frobnicate"}, envOf(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) || !strings.Contains(err.Error(), "usage:") {
		t.Fatalf("error %v", err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, envOf(nil), &out); err != nil || !strings.Contains(out.String(), "usage:") {
		t.Errorf("help: %v %s", err, out.String())
	}
}
