package edge

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// upgradeUpstream is a raw upstream that switches to whatever protocol it
// is asked for, as an h2c-capable server would: a 101 naming the client's
// Upgrade, then the tunnel says "TUNNEL" and echoes. /switch-h2c and
// /switch-ws answer 101 (h2c, websocket) whatever was asked. Anything else
// gets 200 "plain".
type upgradeUpstream struct {
	l    net.Listener
	hits atomic.Int64
	mu   sync.Mutex
	last http.Header // the headers of the last request
}

func newUpgradeUpstream(t *testing.T) *upgradeUpstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upgradeUpstream{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go u.conn(c)
		}
	}()
	return u
}

func (u *upgradeUpstream) url() string { return "http://" + u.l.Addr().String() }

func (u *upgradeUpstream) header() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

func (u *upgradeUpstream) conn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		u.hits.Add(1)
		u.mu.Lock()
		u.last = req.Header
		u.mu.Unlock()
		proto := req.Header.Get("Upgrade")
		switch req.URL.Path {
		case "/pub/switch-h2c":
			proto = "h2c"
		case "/pub/switch-ws":
			proto = "websocket"
		}
		if proto == "" {
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain"); err != nil {
				return
			}
			continue
		}
		if _, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+proto+"\r\n\r\nTUNNEL"); err != nil {
			return
		}
		_, _ = io.Copy(c, br)
		return
	}
}

// upgradeYAML has an open and a protected route on the same upstream.
const upgradeYAML = `
access_log: "off"
users: { admins: [ { user: admin, hash: "${HASH}" } ] }
routes:
  - { path: /pub, to: "${UP}" }
  - { path: /admin, to: "${UP}", auth: admins }
`

// rawExchange sends head on a new connection to the edge and returns the
// response and the rest of the connection.
func rawExchange(t *testing.T, addr, head string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", head, err)
	}
	return res, c, br
}

func runUpgrade(t *testing.T) {
	up := newUpgradeUpstream(t)
	e := startEdge(t, upgradeYAML, map[string]string{"UP": up.url()})

	// Any Upgrade but websocket is dropped, with what Connection names for
	// it, and the request is served as an ordinary one.
	for _, h := range []string{
		"Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n",
		"Upgrade: H2C\r\nConnection: upgrade\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n",
		"Upgrade: h2c\r\n",
		"Upgrade: h2c, websocketx\r\nConnection: Upgrade\r\n",
		"Upgrade: TLS/1.2\r\nConnection: Upgrade\r\n",
		"Upgrade: websocket2\r\nConnection: Upgrade\r\n",
		"Upgrade: web socket\r\nConnection: Upgrade\r\n",
		"Upgrade: \r\nConnection: Upgrade\r\n",
		"Upgrade: HTTP/2.0\r\nConnection: keep-alive, Upgrade\r\n",
		"Connection: Upgrade\r\nUpgrade: h2c\r\nUpgrade: foo\r\n",
	} {
		res, _, _ := rawExchange(t, e.addr, "GET /pub/x HTTP/1.1\r\nHost: a.test\r\n"+h+"\r\n")
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || string(b) != "plain" {
			t.Errorf("%q: %d %q, want 200 plain (an ordinary request)", h, res.StatusCode, b)
			continue
		}
		seen := up.header()
		if seen["Upgrade"] != nil || seen["Http2-Settings"] != nil || hasToken(seen["Connection"], "upgrade") {
			t.Errorf("%q: the upstream saw %v", h, seen)
		}
	}

	// A websocket upgrade, in any case and among other tokens, is
	// tunnelled, and only websocket is asked of the upstream.
	for _, h := range []string{"websocket", "WebSocket", "websocket, h2c", "h2c, websocket"} {
		res, c, br := rawExchange(t, e.addr, "GET /pub/ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: "+h+"\r\n\r\n")
		if res.StatusCode != http.StatusSwitchingProtocols {
			t.Errorf("Upgrade: %s: %d, want 101", h, res.StatusCode)
			continue
		}
		if got := up.header()["Upgrade"]; len(got) != 1 || got[0] != "websocket" {
			t.Errorf("Upgrade: %s: the upstream was asked for %q", h, got)
		}
		_, _ = io.WriteString(c, "ping")
		buf := make([]byte, len("TUNNELping"))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "TUNNELping" {
			t.Errorf("Upgrade: %s: tunnel read %q %v", h, buf, err)
		}
	}

	// Only a GET from an HTTP/1.1 client upgrades.
	for _, req := range []string{
		"GET /pub/ws HTTP/1.0\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"POST /pub/ws HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	} {
		res, _, _ := rawExchange(t, e.addr, req)
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || string(b) != "plain" {
			t.Errorf("%q: %d %q, want 200 plain", req, res.StatusCode, b)
		}
	}

	// A 101 the edge did not ask for, or to another protocol than the
	// websocket asked, never becomes a tunnel.
	for _, tc := range []struct{ path, head string }{
		{"/pub/switch-h2c", ""},
		{"/pub/switch-ws", ""},
		{"/pub/switch-h2c", "Connection: Upgrade\r\nUpgrade: websocket\r\n"},
		{"/pub/switch-h2c", "Connection: Upgrade\r\nUpgrade: h2c\r\n"},
	} {
		res, c, br := rawExchange(t, e.addr, "GET "+tc.path+" HTTP/1.1\r\nHost: a.test\r\n"+tc.head+"\r\n")
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusBadGateway || strings.Contains(string(b), "TUNNEL") {
			t.Errorf("%s %q: %d %q, want 502", tc.path, tc.head, res.StatusCode, b)
		}
		_, _ = io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if rest, _ := io.ReadAll(br); strings.Contains(string(rest), "TUNNEL") {
			t.Errorf("%s %q: tunnel bytes reached the client: %q", tc.path, tc.head, rest)
		}
	}

	// Auth is checked before any upgrade is forwarded.
	hits := up.hits.Load()
	for _, h := range []string{"websocket", "h2c"} {
		res, _, _ := rawExchange(t, e.addr, "GET /admin/ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: "+h+"\r\n\r\n")
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("Upgrade: %s on /admin without credentials: %d, want 401", h, res.StatusCode)
		}
	}
	if n := up.hits.Load() - hits; n != 0 {
		t.Errorf("%d unauthenticated upgrade requests reached the upstream", n)
	}
	res, c, br := rawExchange(t, e.addr, "GET /admin/ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+authLine(testUser, testPassword)+"\r\n")
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("authenticated websocket: %d", res.StatusCode)
	}
	_, _ = io.WriteString(c, "x")
	buf := make([]byte, len("TUNNELx"))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "TUNNELx" {
		t.Errorf("authenticated tunnel: %q %v", buf, err)
	}
}

// TestUpgradeOnlyWebsocketFast runs the upgrade cases with the fast path on.
func TestUpgradeOnlyWebsocketFast(t *testing.T) {
	t.Setenv(fastHTTP1Env, "on")
	runUpgrade(t)
}

// TestUpgradeOnlyWebsocketTransport runs them on http.Transport alone.
func TestUpgradeOnlyWebsocketTransport(t *testing.T) {
	t.Setenv(fastHTTP1Env, "off")
	runUpgrade(t)
}

func TestFilterUpgrade(t *testing.T) {
	for _, tc := range []struct {
		in   http.Header
		want http.Header
	}{
		{http.Header{"Upgrade": {"h2c"}, "Connection": {"Upgrade, HTTP2-Settings, X-Keep"}, "Http2-Settings": {"A"}, "X-Keep": {"1"}},
			http.Header{"Connection": {"X-Keep"}, "X-Keep": {"1"}}},
		{http.Header{"Upgrade": {"h2c"}, "Http2-Settings": {"A"}}, http.Header{}},
		{http.Header{"Upgrade": {"WebSocket, h2c"}, "Connection": {"upgrade"}},
			http.Header{"Upgrade": {"websocket"}, "Connection": {"upgrade"}}},
		{http.Header{"Connection": {"keep-alive"}}, http.Header{"Connection": {"keep-alive"}}},
	} {
		got := tc.in.Clone()
		filterUpgrade(&http.Request{Method: http.MethodGet, ProtoMajor: 1, ProtoMinor: 1, Header: got})
		if len(got) != len(tc.want) {
			t.Errorf("filterUpgrade(%v) = %v, want %v", tc.in, got, tc.want)
			continue
		}
		for k, v := range tc.want {
			if strings.Join(got[k], "|") != strings.Join(v, "|") {
				t.Errorf("filterUpgrade(%v) = %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}
