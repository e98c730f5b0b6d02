package edge

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestRefusalsInClientFormat checks the seams between the access rules,
// forward auth, pools and the error formats: the edge's own 403, 429 and
// 503 answer in the client's format with their headers, on encode routes
// too, while the auth server's own refusal passes back as it sent it.
func TestRefusalsInClientFormat(t *testing.T) {
	up := newUpstream(t)
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.auth+json")
		w.Header().Set("Www-Authenticate", `Bearer realm="sso"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"auth":"say who you are"` + strings.Repeat(" ", 2000) + "}"))
	}))
	t.Cleanup(auth.Close)
	var deadURL [2]string
	for i := range deadURL {
		dead, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		deadURL[i] = "http://" + dead.Addr().String()
		dead.Close()
	}
	e := startEdge(t, `
encode: [gzip]
auth_servers:
  sso: { url: "${AUTH}" }
routes:
  - { path: /ip, to: "${UP}", allow: [10.0.0.0/8] }
  - { path: /rl, to: "${UP}", rate_limit: { rate: 1/h, burst: 1 } }
  - { path: /sso, to: "${UP}", forward_auth: sso }
  - path: /pool
    to: ["${DEAD}", "${DEAD2}"]
    passive: { max_fails: 1, fail_timeout: 1m }
  - { path: /old, redirect: { to: /new }, allow: [10.0.0.0/8] }
`, map[string]string{"UP": up.URL, "AUTH": auth.URL, "DEAD": deadURL[0], "DEAD2": deadURL[1]})
	const browser = "text/html,application/xhtml+xml,*/*;q=0.8"
	e.get(t, "/rl") // the one token
	for _, c := range []struct {
		path    string
		status  int
		headers []string
	}{
		{"/ip", 403, nil},
		{"/old", 403, nil},
		{"/rl", 429, []string{"Retry-After", "Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset", "Ratelimit-Policy"}},
		{"/pool", 503, []string{"Retry-After"}},
	} {
		for _, accept := range []string{"application/json", browser, ""} {
			h := []string{"Accept-Encoding: gzip"}
			if accept != "" {
				h = append(h, "Accept: "+accept)
			}
			var res *http.Response
			for range 3 { // the pool's first answers may be 502s while it learns both are down
				res = e.get(t, c.path, h...)
				if res.StatusCode == c.status {
					break
				}
				_ = body(t, res)
			}
			b := []byte(body(t, res))
			b = decode(t, res.Header.Get("Content-Encoding"), b)
			if res.StatusCode != c.status {
				t.Fatalf("%s %q: status %d, want %d: %s", c.path, accept, res.StatusCode, c.status, b)
			}
			for _, name := range c.headers {
				if res.Header.Get(name) == "" {
					t.Errorf("%s %q: no %s in %v", c.path, accept, name, res.Header)
				}
			}
			ct := res.Header.Get("Content-Type")
			switch accept {
			case "application/json":
				var j struct {
					Status int `json:"status"`
				}
				if !strings.HasPrefix(ct, "application/json") || json.Unmarshal(b, &j) != nil || j.Status != c.status {
					t.Errorf("%s JSON: %s %q", c.path, ct, b)
				}
			case browser:
				if !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(b), "<title>") {
					t.Errorf("%s HTML: %s %q", c.path, ct, b)
				}
			default:
				if !strings.HasPrefix(ct, "text/plain") || !strings.HasPrefix(string(b), res.Status[:3]) {
					t.Errorf("%s text: %s %q", c.path, ct, b)
				}
			}
		}
	}
	// The auth server's refusal goes back as it was sent, whatever the
	// client accepts: its type, its headers, its body, not encoded.
	for _, accept := range []string{"application/json", browser, ""} {
		res := e.get(t, "/sso", "Accept-Encoding: gzip", "Accept: "+accept)
		b := body(t, res)
		if res.StatusCode != 401 || res.Header.Get("Content-Type") != "application/vnd.auth+json" ||
			res.Header.Get("Www-Authenticate") != `Bearer realm="sso"` || res.Header.Get("Content-Encoding") != "" ||
			!strings.HasPrefix(b, `{"auth":"say who you are"`) {
			t.Errorf("auth server's answer changed for %q: %d %v %q", accept, res.StatusCode, res.Header, b)
		}
	}
}

// TestReloadResponses checks that a reload applies changes of encode and
// error_pages, and that a failed reload (a broken page) keeps the old ones.
func TestReloadResponses(t *testing.T) {
	up := encodeUpstream(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "404.html")
	if err := os.WriteFile(page, []byte(`<p>first {{.Status}}</p>`), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startEdge(t, `
encode: [gzip]
error_pages: { dir: "${DIR}" }
routes:
  - { path: /r, to: "${UP}" }
  - { path: /rl, to: "${UP}", rate_limit: { rate: 1/h, burst: 1 } }
`, map[string]string{"UP": up.URL, "DIR": dir})
	const json = "/r?type=application/json&size=3000"
	if res := e.get(t, json, "Accept-Encoding: gzip, zstd"); res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("before: %v", res.Header)
	}
	if b := body(t, e.get(t, "/nope", "Accept: text/html")); b != "<p>first 404</p>" {
		t.Fatalf("first page: %q", b)
	}
	e.get(t, "/rl")
	if res := e.get(t, "/rl"); res.StatusCode != 429 {
		t.Fatalf("rate limit: %d", res.StatusCode)
	}
	if err := os.WriteFile(page, []byte(`<p>second {{.Status}}</p>`), 0o600); err != nil {
		t.Fatal(err)
	}
	e.rewrite(t, `
encode: [zstd]
error_pages: { dir: "${DIR}" }
routes:
  - { path: /r, to: "${UP}" }
  - { path: /rl, to: "${UP}", rate_limit: { rate: 1/h, burst: 1 } }
`)
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if res := e.get(t, json, "Accept-Encoding: gzip, zstd"); res.Header.Get("Content-Encoding") != "zstd" {
		t.Errorf("encode change not applied: %v", res.Header)
	}
	// The 404 page, read from the directory again by the reload.
	e.rewrite(t, `
encode: [zstd]
error_pages: { dir: "${DIR}" }
routes:
  - { path: /r, to: "${UP}" }
  - { path: /rl, to: "${UP}", rate_limit: { rate: 1/h, burst: 1 } }
`)
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if b := body(t, e.get(t, "/nope", "Accept: text/html")); b != "<p>second 404</p>" {
		t.Errorf("error page change not applied: %q", b)
	}
	if res := e.get(t, "/rl"); res.StatusCode != 429 {
		t.Errorf("rate-limit state lost by a reload that kept the route: %d", res.StatusCode)
	}
	// A broken page fails the reload and keeps everything as it was.
	if err := os.WriteFile(page, []byte(`<p>{{.Broken</p>`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(); err == nil {
		t.Fatal("a broken error page reloaded")
	}
	if b := body(t, e.get(t, "/nope", "Accept: text/html")); b != "<p>second 404</p>" {
		t.Errorf("after a failed reload: %q", b)
	}
}

// TestForwardAuthCacheScope checks that a cached 2xx is reused only for
// the same request: auth servers decide per method, host, path and client
// network (Authelia's access_control rules), so a 2xx for a public page
// must not let the same cookie into the admin page for the cache's TTL.
func TestForwardAuthCacheScope(t *testing.T) {
	up := newUpstream(t)
	var calls atomic.Int64
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		uri := r.Header.Get("X-Forwarded-Uri")
		if strings.HasPrefix(uri, "/app/admin") || r.Header.Get("X-Forwarded-Method") == "DELETE" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.Header().Set("X-Auth-Request-User", "alice")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(auth.Close)
	e := startEdge(t, `
auth_servers:
  sso: { url: "${AUTH}", copy_headers: [X-Auth-Request-User], cache_ttl: 1m }
routes:
  - { path: /app, to: "${UP}", forward_auth: sso }
`, map[string]string{"UP": up.URL, "AUTH": auth.URL})
	for range 3 {
		if res := e.get(t, "/app/public", "Cookie: s=1"); res.StatusCode != 200 {
			t.Fatalf("public: %d", res.StatusCode)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d checks for three identical requests, want 1 (cached)", n)
	}
	if res := e.get(t, "/app/admin", "Cookie: s=1"); res.StatusCode != 403 {
		t.Errorf("admin page let through by the public page's cached 2xx: %d", res.StatusCode)
	}
	if res := e.do(t, "DELETE", "/app/public", nil, "Cookie: s=1"); res.StatusCode != 403 {
		t.Errorf("DELETE let through by the GET's cached 2xx: %d", res.StatusCode)
	}
}

// TestEncodeWebsocket checks that a websocket through an encode route,
// single upstream or pool, is handed over untouched: the 101 carries no
// Content-Encoding and the messages pass both ways.
func TestEncodeWebsocket(t *testing.T) {
	h := http.HandlerFunc(echoWebsocket)
	a, b := httptest.NewServer(h), httptest.NewServer(h)
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	e := startEdge(t, `
encode: [zstd, gzip]
routes:
  - { path: /ws, to: "${A}" }
  - { path: /pool, to: ["${A}", "${B}"] }
`, map[string]string{"A": a.URL, "B": b.URL})
	for _, path := range []string{"/ws", "/pool", "/pool"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, res, err := websocket.Dial(ctx, "ws://"+e.addr+path, &websocket.DialOptions{
			HTTPHeader: http.Header{"Accept-Encoding": {"gzip, zstd"}, "Accept": {"application/json"}},
		})
		if err != nil {
			cancel()
			t.Fatalf("%s: %v", path, err)
		}
		if res.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s: 101 with Content-Encoding %q", path, res.Header.Get("Content-Encoding"))
		}
		msg := strings.Repeat(`{"x":1}`, 200)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != "echo "+msg {
			t.Errorf("%s: echo %v %.40q", path, err, got)
		}
		c.Close(websocket.StatusNormalClosure, "")
		cancel()
	}
}
