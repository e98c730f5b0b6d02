package edge

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"selfhost.dev/edgeapp/internal/testlog"
)

// The tests' one user: admin / s3cret, hashed at bcrypt's minimum cost so
// tests stay fast.
const (
	testUser     = "admin"
	testPassword = "s3cret"
)

var testHash = func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}()

// upstream is an httptest backend that counts its hits and answers with
// what it received, as JSON.
type upstream struct {
	*httptest.Server
	hits atomic.Int64
}

// seen is what an upstream received.
type seen struct {
	Method  string      `json:"method"`
	Host    string      `json:"host"`
	Path    string      `json:"path"`
	RawPath string      `json:"raw_path"`
	URI     string      `json:"uri"`
	Header  http.Header `json:"header"`
	Body    int         `json:"body"`
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "yes")
		_ = json.NewEncoder(w).Encode(seen{Method: r.Method, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath,
			URI: r.RequestURI, Header: r.Header, Body: int(n)})
	}))
	t.Cleanup(u.Close)
	return u
}

// echoWebsocket accepts a websocket and answers each message with "echo "
// and the message, until the client goes.
func echoWebsocket(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		typ, msg, err := c.Read(r.Context())
		if err != nil {
			return
		}
		if err := c.Write(r.Context(), typ, append([]byte("echo "), msg...)); err != nil {
			return
		}
	}
}

// bothPaths runs f with the fast path on and off (EDGE_FAST_HTTP1): the
// proxy tests hold both transports to the same behaviour.
func bothPaths(t *testing.T, f func(t *testing.T)) {
	for _, mode := range []string{"on", "off"} {
		t.Run("fast="+mode, func(t *testing.T) {
			t.Setenv(fastHTTP1Env, mode)
			f(t)
		})
	}
}

// testEdge is an edge serving on loopback listeners, as in production.
type testEdge struct {
	*Server
	url      string // public base URL
	addr     string // public host:port
	admin    string // admin base URL
	cfgPath  string
	env      map[string]string
	reg      *prometheus.Registry
	accessLg *testlog.Buffer
	stop     context.CancelFunc
	done     chan error
}

func envLookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// startEdge writes yaml to a file and serves it. ${HASH} is the test
// user's hash; env adds variables (typically upstream URLs).
func startEdge(t testing.TB, yaml string, env map[string]string) *testEdge {
	t.Helper()
	e := &testEdge{env: map[string]string{"HASH": testHash}, reg: prometheus.NewRegistry(), accessLg: &testlog.Buffer{}}
	for k, v := range env {
		e.env[k] = v
	}
	e.cfgPath = filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(e.cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func() (*Config, error) { return LoadFile(e.cfgPath, envLookup(e.env)) }
	cfg, err := load()
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	e.serve(t, cfg, Options{Logger: logger, Registry: e.reg, Load: load, AccessLog: e.accessLg})
	return e
}

// serve makes e's Server from cfg and opts and serves it on loopback
// public and admin listeners until t ends.
func (e *testEdge) serve(t testing.TB, cfg *Config, opts Options) {
	t.Helper()
	srv, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.Server = srv
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = pub.Addr().String()
	e.url = "http://" + e.addr
	e.admin = "http://" + adm.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	e.done = make(chan error, 1)
	go func() { e.done <- srv.Serve(ctx, pub, adm) }()
	t.Cleanup(func() { e.shutdown(t) })
}

// shutdown stops the edge and waits for Serve to return.
func (e *testEdge) shutdown(t testing.TB) {
	e.stop()
	select {
	case err := <-e.done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
		e.done <- nil // for a second call
	case <-time.After(10 * time.Second):
		t.Error("edge did not stop")
	}
}

// rewrite replaces the config file (for reloads).
func (e *testEdge) rewrite(t testing.TB, yaml string) {
	t.Helper()
	if err := os.WriteFile(e.cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

// get sends a request through the edge with the given headers ("Name: value").
func (e *testEdge) do(t testing.TB, method, path string, body io.Reader, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func (e *testEdge) get(t testing.TB, path string, headers ...string) *http.Response {
	t.Helper()
	return e.do(t, http.MethodGet, path, nil, headers...)
}

// seenBy decodes what the upstream received from a proxied response.
func seenBy(t testing.TB, res *http.Response) seen {
	t.Helper()
	var s seen
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", res.StatusCode, b)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("decode upstream echo: %v: %s", err, b)
	}
	return s
}

func body(t testing.TB, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rawRequest sends request bytes on a new TCP connection and returns the
// status code of the answer, so that spellings reach the edge unchanged.
func rawRequest(t testing.TB, addr, request string) (int, string) {
	t.Helper()
	res, b := rawResponse(t, addr, request)
	return res.StatusCode, b
}

// rawResponse sends request bytes on a new TCP connection and returns the
// response (headers too) with its body read.
func rawResponse(t testing.TB, addr, request string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", request, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return "Authorization: " + req.Header.Get("Authorization")
}

// metric returns the value of one series from the admin /metrics page
// (name with its labels as Prometheus prints them), or -1 if absent.
func (e *testEdge) metric(t testing.TB, series string) float64 {
	t.Helper()
	res, err := http.Get(e.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return -1
}
