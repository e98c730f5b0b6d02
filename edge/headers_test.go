package edge

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestSecurityHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Server", "upstream/1.0")
		w.Header().Set("X-Powered-By", "php")
	}))
	t.Cleanup(up.Close)
	e := startEdge(t, `
routes:
  - { path: /embed, to: "${UP}", headers: { X-Frame-Options: "", Content-Security-Policy: "frame-ancestors *" } }
  - { path: /quiet, to: "${UP}", headers: { Server: "", X-Powered-By: "" } }
  - { path: /,      to: "${UP}" }
`, map[string]string{"UP": up.URL})
	for _, tc := range []struct {
		path string
		want map[string]string // "" means absent
	}{
		{"/", map[string]string{
			"Strict-Transport-Security": "max-age=31536000", "X-Content-Type-Options": "nosniff",
			"X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": "strict-origin-when-cross-origin",
			"Server": "upstream/1.0"}},
		{"/embed", map[string]string{"X-Frame-Options": "", "Content-Security-Policy": "frame-ancestors *",
			"X-Content-Type-Options": "nosniff"}},
		{"/quiet", map[string]string{"Server": "", "X-Powered-By": "", "X-Frame-Options": "SAMEORIGIN"}},
	} {
		res := e.get(t, tc.path)
		for k, v := range tc.want {
			if got := res.Header.Values(k); v == "" && len(got) != 0 || v != "" && (len(got) != 1 || got[0] != v) {
				t.Errorf("%s: %s = %q, want %q", tc.path, k, got, v)
			}
		}
	}
	// A file that lists no headers means no headers.
	e2 := startEdge(t, `
headers: {}
routes: [ { path: /, to: "${UP}" } ]
`, map[string]string{"UP": up.URL})
	if res := e2.get(t, "/"); res.Header.Get("Strict-Transport-Security") != "" {
		t.Error("headers: {} still adds the defaults")
	}
}

func TestHopByHop(t *testing.T) {
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Connection", "X-Secret-Upstream, Strict-Transport-Security")
		w.Header().Set("X-Secret-Upstream", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Authenticate", "Basic")
	}))
	t.Cleanup(up.Close)
	e := startEdge(t, `routes: [ { path: /, to: "${UP}" } ]`, map[string]string{"UP": up.URL})

	// An empty first Connection header (CVE-2021-33197), and a client that
	// names the headers the edge adds (Traefik CVE-2024-45410).
	code, _ := rawRequest(t, e.addr, "GET / HTTP/1.1\r\nHost: x\r\n"+
		"Connection: \r\nConnection: X-Client-Hop, X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto, X-Request-ID\r\n"+
		"X-Client-Hop: 1\r\nKeep-Alive: 300\r\nProxy-Authorization: Basic eDp5\r\nTE: gzip\r\nUpgrade-Insecure-Requests: 1\r\n"+
		"X-Request-ID: my-id-1\r\n\r\n")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, h := range []string{"X-Client-Hop", "Keep-Alive", "Proxy-Authorization", "Te", "Connection"} {
		if v, ok := got[h]; ok {
			t.Errorf("upstream got hop-by-hop %s: %q", h, v)
		}
	}
	for h, want := range map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "x",
		"X-Forwarded-Proto": "http", "X-Request-Id": "my-id-1", "Upgrade-Insecure-Requests": "1"} {
		if got.Get(h) != want {
			t.Errorf("upstream %s = %q, want %q (a client cannot drop it)", h, got.Get(h), want)
		}
	}
	res := e.get(t, "/")
	for _, h := range []string{"X-Secret-Upstream", "Keep-Alive", "Proxy-Authenticate"} {
		if v := res.Header.Get(h); v != "" {
			t.Errorf("client got hop-by-hop %s: %q", h, v)
		}
	}
	if res.Header.Get("Strict-Transport-Security") == "" {
		t.Error("an upstream dropped a security header by naming it in Connection")
	}
}

func TestForwardedHeaders(t *testing.T) {
	up := newUpstream(t)
	trusted := startEdge(t, `
trusted_proxies: ["127.0.0.1/32"]
routes: [ { path: /, to: "${UP}" } ]
`, map[string]string{"UP": up.URL})
	untrusted := startEdge(t, `
trusted_proxies: ["10.0.0.0/8"]
routes: [ { path: /, to: "${UP}" } ]
`, map[string]string{"UP": up.URL})
	spoof := []string{"X-Forwarded-For: 198.51.100.7, 10.1.1.1", "X-Forwarded-Proto: https", "X-Forwarded-Host: example.com",
		"CF-Connecting-IP: 203.0.113.5", "X-Real-IP: 1.2.3.4", "Forwarded: for=1.2.3.4", "CF-Ray: abc-LHR"}

	s := seenBy(t, trusted.get(t, "/", spoof...))
	for h, want := range map[string]string{
		"X-Forwarded-For":   "198.51.100.7, 10.1.1.1, 127.0.0.1",
		"X-Forwarded-Proto": "https",
		"X-Forwarded-Host":  "example.com",
		"Cf-Connecting-Ip":  "203.0.113.5",
	} {
		if got := s.Header.Get(h); got != want {
			t.Errorf("trusted peer: %s = %q, want %q", h, got, want)
		}
	}
	if s.Header.Get("Forwarded") != "" {
		t.Error("Forwarded passed through")
	}

	s = seenBy(t, untrusted.get(t, "/", spoof...))
	for h, want := range map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  untrusted.addr,
		"Cf-Connecting-Ip":  "",
		"X-Real-Ip":         "",
		"Forwarded":         "",
		"Cf-Ray":            "abc-LHR",
	} {
		if got := s.Header.Get(h); got != want {
			t.Errorf("untrusted peer: %s = %q, want %q", h, got, want)
		}
	}
	// The access log's client_ip follows the same trust.
	trusted.shutdown(t)
	untrusted.shutdown(t)
	if l := trusted.accessLg.String(); !strings.Contains(l, `"client_ip":"203.0.113.5"`) || !strings.Contains(l, `"cf_ray":"abc-LHR"`) {
		t.Errorf("trusted access log: %s", l)
	}
	if l := untrusted.accessLg.String(); !strings.Contains(l, `"client_ip":"127.0.0.1"`) {
		t.Errorf("untrusted access log: %s", l)
	}
}

func TestClientIP(t *testing.T) {
	cfg, err := Load(strings.NewReader(`
trusted_proxies: ["127.0.0.1/32", "10.0.0.0/8"]
client_ip_headers: [CF-Connecting-IP, X-Forwarded-For]
routes: [ { path: /, to: "http://127.0.0.1:1" } ]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	tb := &table{cfg: cfg}
	for _, tc := range []struct {
		remote  string
		headers map[string][]string
		want    string
	}{
		{"192.0.2.1:5", map[string][]string{"Cf-Connecting-Ip": {"203.0.113.5"}}, "192.0.2.1"},
		{"127.0.0.1:5", map[string][]string{"Cf-Connecting-Ip": {"203.0.113.5"}}, "203.0.113.5"},
		{"127.0.0.1:5", map[string][]string{"X-Forwarded-For": {"1.1.1.1, 203.0.113.5, 10.0.0.2"}}, "203.0.113.5"},
		{"127.0.0.1:5", map[string][]string{"X-Forwarded-For": {"1.1.1.1", "203.0.113.6"}}, "203.0.113.6"},
		{"127.0.0.1:5", map[string][]string{"X-Forwarded-For": {"10.0.0.3, 10.0.0.2"}}, "10.0.0.3"},
		{"127.0.0.1:5", map[string][]string{"X-Forwarded-For": {"1.1.1.1, garbage"}}, "127.0.0.1"},
		{"127.0.0.1:5", map[string][]string{"Cf-Connecting-Ip": {"nonsense"}, "X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"[::1]:5", map[string][]string{"Cf-Connecting-Ip": {"2001:db8::1"}}, "::1"},
		{"[::ffff:127.0.0.1]:5", map[string][]string{"Cf-Connecting-Ip": {"2001:db8::1"}}, "2001:db8::1"},
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: tc.headers}
		if got := tb.clientOf(r).ip; got != tc.want {
			t.Errorf("%s %v: client %q, want %q", tc.remote, tc.headers, got, tc.want)
		}
	}
}

func TestRequestID(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `routes: [ { path: /, to: "${UP}" } ]`, map[string]string{"UP": up.URL})
	for _, tc := range []struct {
		headers []string
		want    string // "" means a generated one
	}{
		{[]string{"X-Request-ID: abc-123"}, "abc-123"},
		{[]string{"X-Correlation-ID: corr.9"}, "corr.9"},
		{[]string{"X-Request-ID: has space"}, ""},
		{[]string{"X-Request-ID: " + strings.Repeat("a", 200)}, ""},
		{[]string{"X-Request-ID: \"quoted\""}, ""},
		{nil, ""},
	} {
		res := e.get(t, "/", tc.headers...)
		s := seenBy(t, res)
		sent, back := s.Header.Get("X-Request-Id"), res.Header.Get("X-Request-Id")
		if sent != back || sent == "" {
			t.Errorf("%v: upstream got %q, client got %q", tc.headers, sent, back)
		}
		if tc.want != "" && sent != tc.want {
			t.Errorf("%v: id %q, want %q", tc.headers, sent, tc.want)
		}
		if tc.want == "" && !validRequestID(sent) {
			t.Errorf("%v: generated id %q is not well-formed", tc.headers, sent)
		}
	}
	g := newRequestIDs()
	if a, b := g.next(), g.next(); a == b {
		t.Error("generated ids repeat")
	}
}

func TestAccessLogLine(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `
users: { admins: [ { user: admin, hash: "${HASH}" } ] }
routes: [ { path: /dash, to: "${UP}", auth: admins } ]
`, map[string]string{"UP": up.URL})
	res := e.do(t, "POST", "/dash/x?token=secret", strings.NewReader("hello"), basic(testUser, testPassword),
		"User-Agent: tester/1 \"quoted\"\n", "X-Request-ID: rid-1", "CF-Ray: ray-1")
	seenBy(t, res)
	e.shutdown(t)
	lines := strings.Split(strings.TrimSpace(e.accessLg.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines: %q", len(lines), lines)
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	for k, want := range map[string]any{
		"request_id": "rid-1", "client_ip": "127.0.0.1", "method": "POST", "host": e.addr, "path": "/dash/x",
		"status": 200.0, "bytes_in": 5.0, "route": "/dash", "upstream": up.URL, "user": "admin",
		"user_agent": `tester/1 "quoted"`, "cf_ray": "ray-1",
	} {
		if entry[k] != want {
			t.Errorf("%s = %#v, want %#v", k, entry[k], want)
		}
	}
	for _, k := range []string{"time", "duration_ms", "bytes_out"} {
		if _, ok := entry[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	if strings.Contains(lines[0], "secret") || strings.Contains(lines[0], testPassword) {
		t.Errorf("the log line holds a secret: %s", lines[0])
	}
}

func TestAppendJSONString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":         `"plain"`,
		`q"b\`:          `"q\"b\\"`,
		"nl\n\r\t\x01":  `"nl\n\r\t\u0001"`,
		"bad\xffutf8":   `"bad\ufffdutf8"`,
		"é ü":           `"é ü"`,
		"\x7f":          `"\u007f"`,
		"</script>&amp": `"</script>&amp"`,
	} {
		got := string(appendJSONString(nil, in))
		if got != want {
			t.Errorf("%q -> %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("%q -> %s: not JSON: %v", in, got, err)
		}
	}
}

// A writer that never returns must not hold requests up: lines are dropped
// and counted instead.
func TestAccessLogNeverBlocks(t *testing.T) {
	block := make(chan struct{})
	var dropped int
	l := newAccessLog(blockingWriter(block), func() { dropped++ })
	e := &logEntry{method: "GET", path: "/"}
	for i := 0; i < 2*accessLogMaxPending/100; i++ {
		l.log(e) // would hang here if logging waited for the writer
	}
	if dropped == 0 {
		t.Error("nothing dropped, nothing counted")
	}
	close(block)
	l.Close()
}

type blockingWriter chan struct{}

func (b blockingWriter) Write(p []byte) (int, error) { <-b; return len(p), nil }

// SIGHUP after logrotate moved the access log starts a new file.
func TestAccessLogReopen(t *testing.T) {
	up := newUpstream(t)
	dir := t.TempDir()
	logPath := dir + "/access.log"
	yaml := "access_log: " + logPath + "\nroutes: [ { path: /, to: \"" + up.URL + "\" } ]\n"
	load := func() (*Config, error) { return Load(strings.NewReader(yaml), nil) }
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{Load: load, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(s)
	defer front.Close()
	get := func(path string) {
		res, err := http.Get(front.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	get("/first")
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	get("/second")
	s.alog.Close()
	old, _ := os.ReadFile(logPath + ".1")
	cur, _ := os.ReadFile(logPath)
	if !strings.Contains(string(old), `"path":"/first"`) || strings.Contains(string(old), "/second") {
		t.Errorf("rotated file: %s", old)
	}
	if !strings.Contains(string(cur), `"path":"/second"`) || strings.Contains(string(cur), "/first") {
		t.Errorf("new file: %s", cur)
	}
}
