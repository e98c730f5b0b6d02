package autotls

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// newTestManager is a Manager for domains whose CA is never asked: the
// domain set is stored directly, without Manage starting orders.
func newTestManager(t *testing.T, log *slog.Logger, domains ...string) *Manager {
	t.Helper()
	m, err := New(Config{CA: "https://127.0.0.1:1/dir", Storage: t.TempDir(), HTTPPort: 80, TLSPort: 443},
		log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	m.domains.Store(&domains)
	return m
}

func TestRedirect(t *testing.T) {
	m := newTestManager(t, slog.New(slog.NewTextHandler(io.Discard, nil)), "a.example.com", "b.example.com")
	for _, c := range []struct {
		port, host, target string
		status             int
		location           string
	}{
		{"443", "a.example.com", "/x/y?q=1&r=%2F", 308, "https://a.example.com/x/y?q=1&r=%2F"},
		{"443", "A.Example.COM.:80", "/", 308, "https://a.example.com/"},
		{"8443", "b.example.com", "/p?", 308, "https://b.example.com:8443/p?"},
		{"443", "b.example.com", "http://b.example.com/abs?x=1", 308, "https://b.example.com/abs?x=1"},
		{"443", "evil.example.net", "/", 404, ""},
		{"443", "", "/", 404, ""},
	} {
		req := httptest.NewRequest(http.MethodPost, c.target, strings.NewReader("body"))
		req.Host = c.host
		w := httptest.NewRecorder()
		m.HTTPHandler(c.port).ServeHTTP(w, req)
		if w.Code != c.status || w.Header().Get("Location") != c.location {
			t.Errorf("%s %s (tls port %s): %d %q, want %d %q", c.host, c.target, c.port, w.Code, w.Header().Get("Location"), c.status, c.location)
		}
	}
	// An ACME challenge path for a token the edge does not hold is not
	// answered as a challenge; it is redirected like any other path.
	req := httptest.NewRequest(http.MethodGet, "/.well-known/acme-challenge/unknown", nil)
	req.Host = "a.example.com"
	w := httptest.NewRecorder()
	m.HTTPHandler("443").ServeHTTP(w, req)
	if w.Code == http.StatusOK {
		t.Errorf("unknown challenge token answered 200: %q", w.Body.String())
	}
}

// certmagic's zap log reaches the edge's slog handler, warnings and up,
// with its fields.
func TestZapToSlog(t *testing.T) {
	var buf bytes.Buffer
	zl := zap.New(slogCore{h: slog.NewTextHandler(&buf, nil), min: slog.LevelWarn}).Named("obtain").With(zap.String("identifier", "a.example.com"))
	zl.Info("quiet")
	zl.Error("could not get certificate from issuer", zap.Int("attempt", 2))
	out := buf.String()
	for _, want := range []string{"level=ERROR", `msg="could not get certificate from issuer"`, "identifier=a.example.com", "attempt=2", "logger=obtain", "component=certmagic"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in %q", want, out)
		}
	}
	if strings.Contains(out, "quiet") {
		t.Errorf("info logged: %q", out)
	}
}

// A storage directory that cannot be written stops New, naming it.
func TestStorageNotWritable(t *testing.T) {
	if os.Geteuid() == 0 {
		// root writes anywhere; a file in the way fails for everyone.
		dir := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(dir, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := New(Config{CA: "https://127.0.0.1:1/dir", Storage: dir}, slog.Default(), prometheus.NewRegistry())
		if err == nil || !strings.Contains(err.Error(), "tls storage") {
			t.Errorf("storage on a file: %v", err)
		}
		return
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{CA: "https://127.0.0.1:1/dir", Storage: dir}, slog.Default(), prometheus.NewRegistry())
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("read-only storage: %v", err)
	}
}

// The metrics exist from the start: zero outcomes, no expiry series for a
// domain without a certificate.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(Config{CA: "https://127.0.0.1:1/dir", Storage: t.TempDir()}, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	d := []string{"a.example.com"}
	m.domains.Store(&d)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if mf.GetName() == "edge_tls_certificate_operations_total" && len(mf.GetMetric()) != 4 {
			t.Errorf("want 4 zero outcome series, got %d", len(mf.GetMetric()))
		}
	}
	if strings.Join(names, ",") != "edge_tls_certificate_operations_total" {
		t.Errorf("metrics %v", names)
	}
}
