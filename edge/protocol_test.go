package edge

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Issue 9, part 3: the smaller protocol points, each with raw clients.

// A Host whose port is not all digits, or that no DNS name spells, is
// refused; the spellings nginx takes for the host reach its route and no
// other.
func TestHostValidation(t *testing.T) {
	adm := newUpstream(t)
	app := newUpstream(t)
	e := startEdge(t, `
access_log: "off"
users: { admins: [ { user: admin, hash: "${HASH}" } ] }
routes:
  - { path: /, to: "${ADM}", host: admin.test, auth: admins }
  - { path: /, to: "${APP}" }
`, map[string]string{"ADM": adm.URL, "APP": app.URL})
	for _, h := range []string{
		"admin.test:80:80", "admin.test:", "admin.test:+80", "admin.test:-80", "admin.test:8o", "admin.test:0x50",
		"admin.test:80:", "admin.test::80", "admin.test:99999", "admin.test:123456", "admin.test:1e3",
		"admin.test..", "admin..test", ".admin.test", ":80", ":", ".", "..",
		"admin.test%2e", "admin%2etest", "admin.test,evil.test", "admin.test;x", "admin.test!", "admin.test*",
		"user@admin.test", "admin.test@x", "admin.test(1)", "admin.test'", "admin.test=", "admin.test~",
		"[::1", "[::1]x", "[::1]:", "[::1]:8o", "[]", "[admin.test]", "[::1]:80:80",
	} {
		code, b := rawRequest(t, e.addr, "GET /x HTTP/1.1\r\nHost: "+h+"\r\n\r\n")
		if code != http.StatusBadRequest {
			t.Errorf("Host %q: %d, want 400: %s", h, code, b)
		}
	}
	// In absolute form the URL's authority is the Host.
	for _, target := range []string{"http://admin.test:80:80/x", "http://admin.test:+80/x", "http://admin.test..:80/x"} {
		if code, b := rawRequest(t, e.addr, "GET "+target+" HTTP/1.1\r\nHost: other.test\r\n\r\n"); code != http.StatusBadRequest {
			t.Errorf("target %q: %d, want 400: %s", target, code, b)
		}
	}
	if n := app.hits.Load() + adm.hits.Load(); n != 0 {
		t.Fatalf("%d requests with a malformed Host reached an upstream", n)
	}
	for _, h := range []string{"admin.test", "ADMIN.TEST", "admin.test.", "admin.test:80", "admin.test.:8080", "Admin.Test:00080"} {
		if code, b := rawRequest(t, e.addr, "GET /x HTTP/1.1\r\nHost: "+h+"\r\n\r\n"); code != http.StatusUnauthorized {
			t.Errorf("Host %q: %d, want 401 (the admin host's route): %s", h, code, b)
		}
	}
	if code, _ := rawRequest(t, e.addr, "GET http://admin.test/x HTTP/1.1\r\nHost: other.test\r\n\r\n"); code != http.StatusUnauthorized {
		t.Errorf("absolute-form admin.test with Host other.test: %d, want 401", code)
	}
	if n := app.hits.Load() + adm.hits.Load(); n != 0 {
		t.Fatalf("%d requests for the admin host reached an upstream without credentials", n)
	}
	for _, h := range []string{"other.test", "[::1]:8080", "127.0.0.1", "a_b.test:1", ""} {
		proto := "HTTP/1.1"
		if h == "" {
			proto = "HTTP/1.0"
		}
		if code, b := rawRequest(t, e.addr, "GET /x "+proto+"\r\nHost: "+h+"\r\n\r\n"); code != http.StatusOK {
			t.Errorf("Host %q: %d, want 200 from the catch-all: %s", h, code, b)
		}
	}
}

func TestValidHost(t *testing.T) {
	for h, want := range map[string]bool{
		"": true, "a": true, "a.b": true, "a.b.": true, "a:1": true, "a:65535": true, "[::1]": true, "[::1]:8": true,
		"a:65536": false, "a:": false, "a:+1": false, "a:1:1": false, "a..b": false, ".a": false, "a b": false,
		"[::1]1": false, "[": false, "[]": false, "a:٣": false, "ä.test": false,
		"127.0.0.1": true, "127.0.0.1.:80": true, "10.0.0.1:8": true, "a.b2": true, "1a.2b": true, "[::ffff:1.2.3.4]": true,
		"127.0.0.01": false, "2130706433": false, "0x7f.1": false, "127.1": false, "a.123": false, "1.2.3.4.5": false,
		"256.0.0.1": false, "[:::::]": false, "[1.2.3.4]": false, "[::1::2]:80": false,
	} {
		if got := validHost(h); got != want {
			t.Errorf("validHost(%q) = %v, want %v", h, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = validHost("admin.test.:8080") }); n != 0 {
		t.Errorf("validHost allocates %v times", n)
	}
}

// informationalUpstream answers every request with 102, 103 and then 200.
func informationalUpstream(t *testing.T) string {
	url, _ := rawUpstream(t, "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal", false)
	return url
}

// 1xx responses never reach an HTTP/1.0 client (RFC 9110 §15.2); an
// HTTP/1.1 client gets them before the final response. On both transports.
func TestNo1xxToHTTP10(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		e := startEdge(t, `{ access_log: "off", routes: [ { path: /, to: "${UP}" } ] }`, map[string]string{"UP": informationalUpstream(t)})
		for _, tc := range []struct {
			req   string
			first int
		}{
			{"GET /x HTTP/1.0\r\n\r\n", 200},
			{"GET /x HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n", 200},
			{"GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n", 102},
			// Last: the upstream answers HEAD with a body, which
			// http.Transport's pool may hand to the next request
			// (golang/go#68653; the fast path closes the connection).
			{"HEAD /x HTTP/1.0\r\nHost: a.test\r\n\r\n", 200},
		} {
			if res, _ := rawResponse(t, e.addr, tc.req); res.StatusCode != tc.first {
				t.Errorf("%q: first response %d, want %d", tc.req, res.StatusCode, tc.first)
			}
		}
	})
}

// A client's malformed chunked body is a 400, counted as the client's
// error, not a 502 "upstream unreachable".
func TestMalformedChunkedBody(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `{ access_log: "off", routes: [ { path: /, to: "${UP}" } ] }`, map[string]string{"UP": up.URL})
	for _, body := range []string{
		"zz\r\nabc\r\n0\r\n\r\n",
		"5\r\nabcdeXX0\r\n\r\n",
		"fffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
		"-5\r\nabcde\r\n0\r\n\r\n",
		"5\r\nabc\r\n0\r\n\r\n",
		"0x5\r\nabcde\r\n0\r\n\r\n",
	} {
		code, b := rawRequest(t, e.addr, "POST /x HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"+body)
		if code != http.StatusBadRequest {
			t.Errorf("chunked body %q: %d, want 400: %s", body, code, b)
		}
	}
	for _, kind := range []string{"unreachable", "refused", "timeout"} {
		if v := e.metric(t, `edge_upstream_errors_total{kind="`+kind+`",route="/"}`); v > 0 {
			t.Errorf("malformed client bodies counted as upstream %s errors: %v", kind, v)
		}
	}
	if v := e.metric(t, `edge_requests_total{code="400",method="POST",route="/"}`); v != 6 {
		t.Errorf("edge_requests_total 400 = %v, want 6", v)
	}
	if code, _ := rawRequest(t, e.addr, "POST /x HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"); code != 200 {
		t.Errorf("a good chunked body: %d", code)
	}
}

// A websocket is logged and counted as what it was: 101, the bytes it
// carried each way and how long it lasted.
func TestWebsocketLogged(t *testing.T) {
	ws := httptest.NewServer(http.HandlerFunc(echoWebsocket))
	t.Cleanup(ws.Close)
	e := startEdge(t, `routes: [ { path: /ws, to: "${WS}" } ]`, map[string]string{"WS": ws.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+e.addr+"/ws/socket", nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := strings.Repeat("m", 1000)
	for range 3 {
		if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := conn.Read(ctx); err != nil || string(got) != "echo "+msg {
			t.Fatalf("echo: %v", err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	_ = conn.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(5 * time.Second)
	var entry map[string]any
	for entry == nil && time.Now().Before(deadline) {
		for _, line := range strings.Split(e.accessLg.String(), "\n") {
			if strings.Contains(line, `"path":"/ws/socket"`) {
				if err := json.Unmarshal([]byte(line), &entry); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if entry == nil {
		t.Fatalf("no access log line for the websocket: %s", e.accessLg.String())
	}
	if entry["status"] != 101.0 {
		t.Errorf("status %v, want 101", entry["status"])
	}
	if in, _ := entry["bytes_in"].(float64); in < 3000 {
		t.Errorf("bytes_in %v, want at least the 3000 bytes sent", in)
	}
	if out, _ := entry["bytes_out"].(float64); out < 3015 {
		t.Errorf("bytes_out %v, want at least the 3015 bytes echoed", out)
	}
	if d, _ := entry["duration_ms"].(float64); d < 100 {
		t.Errorf("duration_ms %v, want the websocket's lifetime (over 100ms)", d)
	}
	if v := e.metric(t, `edge_requests_total{code="101",method="GET",route="/ws"}`); v != 1 {
		t.Errorf("edge_requests_total 101 = %v, want 1", v)
	}
	if v := e.metric(t, `edge_requests_total{code="200",method="GET",route="/ws"}`); v > 0 {
		t.Errorf("the websocket was counted as a 200")
	}
}

// Header names with '_' are dropped before forwarding unless
// underscores_in_headers allows them.
func TestUnderscoreHeaders(t *testing.T) {
	up := newUpstream(t)
	req := "GET /x HTTP/1.1\r\nHost: a.test\r\nX_Forwarded_For: 6.6.6.6\r\nX-Real_IP: 6.6.6.6\r\nFoo_Bar: 1\r\nX-Ok: 1\r\n\r\n"
	e := startEdge(t, `{ access_log: "off", routes: [ { path: /, to: "${UP}" } ] }`, map[string]string{"UP": up.URL})
	code, s := rawSeen(t, e.addr, req)
	if code != 200 {
		t.Fatalf("%d", code)
	}
	for k := range s.Header {
		if strings.Contains(k, "_") {
			t.Errorf("header %q reached the upstream", k)
		}
	}
	if s.Header.Get("X-Ok") != "1" {
		t.Error("an ordinary header was dropped")
	}
	if xff := s.Header.Get("X-Forwarded-For"); xff != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q", xff)
	}

	e2 := startEdge(t, `{ access_log: "off", underscores_in_headers: true, routes: [ { path: /, to: "${UP}" } ] }`, map[string]string{"UP": up.URL})
	code, s = rawSeen(t, e2.addr, req)
	if code != 200 {
		t.Fatalf("%d", code)
	}
	found := false
	for k := range s.Header {
		found = found || strings.EqualFold(k, "Foo_Bar")
	}
	if !found {
		t.Errorf("with underscores_in_headers: true, Foo_Bar was dropped: %v", s.Header)
	}
}
