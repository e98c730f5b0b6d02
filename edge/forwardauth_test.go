package edge

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// authServer is a forward-auth server started by the test, answering as
// oauth2-proxy and Authelia do: 2xx with identity headers for a good
// session cookie or bearer token, else a 302 to the login page for
// browsers and a 401 for the rest.
type authServer struct {
	*httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	last  http.Header // the headers of the last check
}

func newAuthServer(t testing.TB) *authServer {
	a := &authServer{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		a.mu.Lock()
		a.last = r.Header.Clone()
		a.mu.Unlock()
		if strings.HasSuffix(r.Header.Get("X-Forwarded-Uri"), "/slow") {
			time.Sleep(2 * time.Second)
		}
		w.Header().Set("X-Other", "not copied")
		switch {
		case strings.Contains(r.Header.Get("Cookie"), "session=good"):
			w.Header().Set("X-Auth-Request-User", "alice")
			w.Header().Set("X-Auth-Request-Email", "alice@example.com")
			w.WriteHeader(http.StatusOK)
		case r.Header.Get("Authorization") == "Bearer tok":
			w.Header().Set("X-Auth-Request-User", "bob")
			w.WriteHeader(http.StatusAccepted)
		case strings.Contains(r.Header.Get("Accept"), "text/html"):
			w.Header().Set("Set-Cookie", "csrf=abc; Path=/; HttpOnly")
			w.Header().Set("Location", "https://login.test/?rd="+r.Header.Get("X-Forwarded-Uri"))
			w.WriteHeader(http.StatusFound)
		default:
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, "login required\n")
		}
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *authServer) lastHeader() http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestForwardAuth(t *testing.T) {
	up := newUpstream(t)
	auth := newAuthServer(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	wsUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_ = c.Write(r.Context(), websocket.MessageText, []byte("hello "+r.Header.Get("X-Auth-Request-User")))
	}))
	t.Cleanup(wsUp.Close)
	e := startEdge(t, `
users: { admins: [ { user: admin, hash: "${HASH}" } ] }
auth_servers:
  sso:    { url: "${AUTH}/verify", copy_headers: [X-Auth-Request-User, X-Auth-Request-Email], timeout: 500ms }
  cached: { url: "${AUTH}/verify", copy_headers: [X-Auth-Request-User], cache_ttl: 1m }
  down:   { url: "${DOWN}/verify", copy_headers: [X-Auth-Request-User] }
routes:
  - { path: /grafana, to: "${UP}", forward_auth: sso }
  - { path: /both,    to: "${UP}", forward_auth: sso, auth: admins }
  - { path: /cached,  to: "${UP}", forward_auth: cached }
  - { path: /down,    to: "${UP}", forward_auth: down }
  - { path: /ws,      to: "${WS}", forward_auth: sso }
  - { path: /open,    to: "${UP}" }
`, map[string]string{"UP": up.URL, "AUTH": auth.URL, "DOWN": down.URL, "WS": wsUp.URL})

	do := func(method, path string, headers ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, e.url+path, strings.NewReader("payload"))
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Add(k, strings.TrimSpace(v))
		}
		res, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	forged := []string{"X-Auth-Request-User: mallory", "X_Auth_Request_User: mallory", "x-auth-request-email: mallory@evil.test"}

	t.Run("allowed", func(t *testing.T) {
		s := seenBy(t, do("POST", "/grafana/d/x?orgId=1", append([]string{"Cookie: session=good", "Accept: text/html"}, forged...)...))
		if got := s.Header["X-Auth-Request-User"]; len(got) != 1 || got[0] != "alice" {
			t.Errorf("upstream X-Auth-Request-User %q, want [alice]", got)
		}
		if got := s.Header["X-Auth-Request-Email"]; len(got) != 1 || got[0] != "alice@example.com" {
			t.Errorf("upstream X-Auth-Request-Email %q", got)
		}
		for k := range s.Header {
			if strings.EqualFold(k, "X_Auth_Request_User") || k == "X-Other" {
				t.Errorf("upstream got %s", k)
			}
		}
		if s.Method != "POST" || s.Body != len("payload") {
			t.Errorf("upstream got %s with %d bytes", s.Method, s.Body)
		}
		h := auth.lastHeader()
		for k, want := range map[string]string{
			"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/grafana/d/x?orgId=1", "X-Forwarded-Host": e.addr,
			"X-Forwarded-Proto": "http", "X-Forwarded-For": "127.0.0.1", "Cookie": "session=good", "Accept": "text/html",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("auth server got %s %q, want %q", k, got, want)
			}
		}
		if h.Get("X-Auth-Request-User") != "" || h.Get("Content-Length") != "" {
			t.Errorf("auth server got the client's headers or body: %v", h)
		}
	})
	t.Run("forged identity never reaches any upstream", func(t *testing.T) {
		s := seenBy(t, do("GET", "/open", forged...))
		for k := range s.Header {
			if headerNameEqual(k, "x-auth-request-user") || headerNameEqual(k, "x-auth-request-email") {
				t.Errorf("open route's upstream got %s: %v", k, s.Header[k])
			}
		}
	})
	t.Run("login redirect and 401 go back as the auth server sent them", func(t *testing.T) {
		hits := up.hits.Load()
		res := do("GET", "/grafana/", "Accept: text/html")
		if res.StatusCode != 302 || res.Header.Get("Location") != "https://login.test/?rd=/grafana/" ||
			res.Header.Get("Set-Cookie") != "csrf=abc; Path=/; HttpOnly" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("browser without session: %d %v", res.StatusCode, res.Header)
		}
		res = do("GET", "/grafana/api/health")
		if b := body(t, res); res.StatusCode != 401 || b != "login required\n" {
			t.Errorf("API client without session: %d %q", res.StatusCode, b)
		}
		if up.hits.Load() != hits {
			t.Error("a refused request reached the upstream")
		}
		waitFor(t, func() bool { return strings.Contains(e.accessLg.String(), `"deny_reason":"forward_auth"`) })
	})
	t.Run("bearer token", func(t *testing.T) {
		s := seenBy(t, do("GET", "/grafana/api", "Authorization: Bearer tok"))
		if s.Header.Get("X-Auth-Request-User") != "bob" || s.Header.Get("Authorization") != "" {
			t.Errorf("upstream headers %v", s.Header)
		}
	})
	t.Run("with basic auth both must pass", func(t *testing.T) {
		calls := auth.calls.Load()
		if res := do("GET", "/both", "Cookie: session=good"); res.StatusCode != 401 || res.Header.Get("Www-Authenticate") == "" {
			t.Errorf("without Basic: %d", res.StatusCode)
		}
		if auth.calls.Load() != calls {
			t.Error("the auth server was asked before Basic Auth passed")
		}
		if res := do("GET", "/both", basic(testUser, testPassword)); res.StatusCode != 401 || res.Header.Get("Www-Authenticate") != "" {
			t.Errorf("Basic without session: %d %v, want the auth server's 401", res.StatusCode, res.Header)
		}
		if auth.lastHeader().Get("Authorization") != "" {
			t.Error("the admin's Basic credentials were sent to the auth server")
		}
		s := seenBy(t, do("GET", "/both", basic(testUser, testPassword), "Cookie: session=good"))
		if s.Header.Get("X-Auth-Request-User") != "alice" {
			t.Errorf("upstream headers %v", s.Header)
		}
	})
	t.Run("auth server down or slow is 503", func(t *testing.T) {
		hits := up.hits.Load()
		res := do("GET", "/down", "Cookie: session=good")
		if b := body(t, res); res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || !strings.Contains(b, "auth server of route /down") {
			t.Errorf("down: %d %q", res.StatusCode, b)
		}
		start := time.Now()
		res = do("GET", "/grafana/slow", "Cookie: session=good")
		if res.StatusCode != 503 || time.Since(start) > 1500*time.Millisecond {
			t.Errorf("slow: %d after %v, want 503 after the 500ms timeout", res.StatusCode, time.Since(start))
		}
		if up.hits.Load() != hits {
			t.Error("a request reached the upstream without an answer from the auth server")
		}
		if v := e.metric(t, `edge_forward_auth_total{result="error",route="/down"}`); v != 1 {
			t.Errorf(`edge_forward_auth_total{result="error",route="/down"} = %v`, v)
		}
	})
	t.Run("cache", func(t *testing.T) {
		calls := auth.calls.Load()
		for range 3 {
			if s := seenBy(t, do("GET", "/cached", "Cookie: session=good; a=1", "X-Auth-Request-User: mallory")); s.Header.Get("X-Auth-Request-User") != "alice" {
				t.Errorf("cached: upstream headers %v", s.Header)
			}
		}
		if n := auth.calls.Load() - calls; n != 1 {
			t.Errorf("3 requests with one cookie asked the auth server %d times, want 1", n)
		}
		if res := do("GET", "/cached", "Cookie: session=bad"); res.StatusCode != 401 {
			t.Errorf("another cookie: %d, want 401", res.StatusCode)
		}
		if res := do("GET", "/cached", "Cookie: session=bad"); res.StatusCode != 401 {
			t.Errorf("a refusal is not cached: %d, want 401", res.StatusCode)
		}
		if n := auth.calls.Load() - calls; n != 3 {
			t.Errorf("auth server asked %d times, want 3", n)
		}
	})
	t.Run("websocket upgrades are checked", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, res, err := websocket.Dial(ctx, "ws://"+e.addr+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"X-Auth-Request-User": {"mallory"}}})
		if err == nil || res == nil || res.StatusCode != 401 {
			t.Fatalf("websocket without session: err %v, response %v", err, res)
		}
		c, _, err := websocket.Dial(ctx, "ws://"+e.addr+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Cookie": {"session=good"}}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		_, msg, err := c.Read(ctx)
		if err != nil || string(msg) != "hello alice" {
			t.Errorf("websocket message %q, %v", msg, err)
		}
	})
	if v := e.metric(t, `edge_forward_auth_total{result="allowed",route="/grafana"}`); v < 2 {
		t.Errorf(`edge_forward_auth_total{result="allowed",route="/grafana"} = %v`, v)
	}
}

func TestStripHeaders(t *testing.T) {
	h := http.Header{"X-Auth-Request-User": {"a"}, "X_auth_request_user": {"b"}, "X-Auth-Request-Users": {"c"}, "Accept": {"d"}}
	stripHeaders(h, []string{"x-auth-request-user"})
	if len(h) != 2 || h["X-Auth-Request-Users"] == nil || h["Accept"] == nil {
		t.Errorf("left %v", h)
	}
}

// TestForwardAuthStrayVerdict: an auth server that writes a stray 200 after
// each 401 must not have it read as the verdict on another client's check
// (that would let the client through). The checks go on the fast path,
// which proves a connection clean before it reuses it; http.Transport's
// pool hands a connection out before it looks for such bytes.
func TestForwardAuthStrayVerdict(t *testing.T) {
	// One write, so the stray answer is there when the edge has the 401
	// (one that comes after the next check was written is that check's
	// answer to any HTTP/1.1 client).
	auth, _ := serveRequests(t, func(c net.Conn, _ *http.Request) bool {
		_, err := io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nX-Auth-Request-User: nobody\r\nContent-Length: 0\r\n\r\n")
		return err == nil
	})
	up := newUpstream(t)
	e := startEdge(t, `
access_log: "off"
auth_servers:
  sso: { url: "http://${AUTH}/verify", copy_headers: [X-Auth-Request-User] }
routes:
  - { path: /grafana, to: "${UP}", forward_auth: sso }
`, map[string]string{"UP": up.URL, "AUTH": auth})
	for i := range 100 {
		res, err := http.Get(e.url + "/grafana/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("check %d: %d, want the auth server's 401 every time", i+1, res.StatusCode)
		}
	}
}

// TestForwardAuthSetCookie: the cookie an auth server sets with its 2xx
// (oauth2-proxy refreshing a session) reaches the browser beside the
// upstream's own, and a cached verdict does not repeat it.
func TestForwardAuthSetCookie(t *testing.T) {
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "_oauth2_proxy=refreshed; Path=/; HttpOnly")
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(auth.Close)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "app=1; Path=/")
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	e := startEdge(t, `
access_log: "off"
auth_servers:
  sso:    { url: "${AUTH}/verify" }
  cached: { url: "${AUTH}/verify", cache_ttl: 1m }
routes:
  - { path: /grafana, to: "${UP}", forward_auth: sso }
  - { path: /cached,  to: "${UP}", forward_auth: cached }
`, map[string]string{"UP": up.URL, "AUTH": auth.URL})
	get := func(path string) []string {
		t.Helper()
		res, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, res.StatusCode)
		}
		return res.Header.Values("Set-Cookie")
	}
	want := []string{"_oauth2_proxy=refreshed; Path=/; HttpOnly", "app=1; Path=/"}
	if got := get("/grafana/"); !slices.Equal(got, want) {
		t.Errorf("Set-Cookie %q, want %q", got, want)
	}
	if got := get("/cached/"); !slices.Equal(got, want) {
		t.Errorf("first check: Set-Cookie %q, want %q", got, want)
	}
	if got := get("/cached/"); !slices.Equal(got, want[1:]) {
		t.Errorf("cached verdict: Set-Cookie %q, want only the upstream's %q", got, want[1:])
	}
}
