package edge

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Regression tests for the findings of the security review of the built
// edge. Each test names the finding it holds the edge to.

// rawSeen sends a raw request and decodes the upstream's echo (for 200s).
func rawSeen(t *testing.T, addr, request string) (int, seen) {
	t.Helper()
	code, b := rawRequest(t, addr, request)
	var s seen
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(b), &s); err != nil {
			t.Fatalf("decode upstream echo: %v: %s", err, b)
		}
	}
	return code, s
}

func authLine(user, pass string) string { return basic(user, pass) + "\r\n" }

// Finding 2: a route path with non-ASCII or special characters is stored in
// the escaped form requests are matched in; before, /ädmin never matched and
// its requests reached the catch-all without credentials.
func TestRoutePathSpecialCharacters(t *testing.T) {
	adm := newUpstream(t)
	app := newUpstream(t)
	e := startEdge(t, `
users: { admins: [ { user: admin, hash: "${HASH}" } ] }
routes:
  - { path: /ädmin,     to: "${ADM}", auth: admins }
  - { path: /app admin, to: "${ADM}", auth: admins }
  - { path: "/a{",      to: "${ADM}", auth: admins }
  - { path: /%E2%82%ACuro, to: "${ADM}", auth: admins }
  - { path: /,          to: "${APP}" }
`, map[string]string{"ADM": adm.URL, "APP": app.URL})

	for _, p := range []string{
		"/ädmin/users", // raw UTF-8, as some clients send it
		"/%C3%A4dmin/users",
		"/%c3%a4dmin/users",
		"/%C3%A4dmin",
		"/%c3%a4%64min/",
		"/x/../%C3%A4dmin/users",
		"/app%20admin/x",
		"/app%20admin",
		"/a%7B/x",
		"/a%7b",
		"/a{/x",
		"/€uro/x",
		"/%e2%82%acuro",
	} {
		code, b := rawRequest(t, e.addr, "GET "+p+" HTTP/1.1\r\nHost: edge.test\r\n\r\n")
		if code != http.StatusUnauthorized && code != http.StatusBadRequest {
			t.Errorf("%q without credentials: %d, want 401: %s", p, code, b)
		}
	}
	if n := adm.hits.Load() + app.hits.Load(); n != 0 {
		t.Fatalf("%d requests without credentials reached an upstream", n)
	}
	// With credentials they reach the protected upstream, which sees the
	// path well-formed, in one spelling.
	for p, want := range map[string]string{
		"/ädmin/users":      "/%C3%A4dmin/users",
		"/%c3%a4dmin/users": "/%C3%A4dmin/users",
		"/app%20admin/x":    "/app%20admin/x",
		"/a{/x":             "/a%7B/x",
	} {
		code, s := rawSeen(t, e.addr, "GET "+p+" HTTP/1.1\r\nHost: edge.test\r\n"+authLine(testUser, testPassword)+"\r\n")
		if code != http.StatusOK || s.URI != want {
			t.Errorf("%q with credentials: %d, upstream saw %q, want 200 and %q", p, code, s.URI, want)
		}
	}
	if n := app.hits.Load(); n != 0 {
		t.Fatalf("the catch-all got %d requests meant for the protected routes", n)
	}
}

// Finding 2, at load: either spelling of a route path loads to the escaped
// one; sub-delimiters, which requests may spell two ways, are refused.
func TestRoutePathForms(t *testing.T) {
	for in, want := range map[string]string{
		"/ädmin":        "/%C3%A4dmin",
		"/%c3%a4dmin":   "/%C3%A4dmin",
		"/app admin":    "/app%20admin",
		`"/a{"`:         "/a%7B",
		"/a%7e":         "/a~",
		"/grafana":      "/grafana",
		"/caf%C3%A9/x":  "/caf%C3%A9/x",
		`"/a\"b"`:       "/a%22b",
		`"/x|y^z"`:      "/x%7Cy%5Ez",
		`"/a[1]"`:       "/a%5B1%5D",
		"/%E2%82%ACuro": "/%E2%82%ACuro",
	} {
		cfg, err := Load(strings.NewReader("routes:\n  - { path: "+in+", to: \"http://127.0.0.1:1\" }\n"), nil)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := cfg.Routes[0].Path; got != want {
			t.Errorf("%s: path %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"/a!":        `line 2: routes[0].path: "/a!" holds "!", which requests may spell either raw or %-encoded`,
		"/a%2B":      `line 2: routes[0].path: "/a%2B" holds "%2B", which requests may spell either raw or %-encoded`,
		`"/a:b"`:     `line 2: routes[0].path: "/a:b" holds ":"`,
		"/a/%2e/b":   `line 2: routes[0].path: "/a/%2e/b" is not in normal form (want "/a/b")`,
		"/%2e":       `line 2: routes[0].path: "/%2e" is not in normal form (want "/")`,
		`"/a?b"`:     `line 2: routes[0].path: "/a?b": path holds a ?`,
		"/ädmin/":    `line 2: routes[0].path: "/ädmin/" is not in normal form (want "/%C3%A4dmin")`,
		"/a%2fb":     `line 2: routes[0].path: "/a%2fb": path holds an encoded slash`,
		"/a\\b":      `line 2: routes[0].path: "/a\\b": path holds a backslash`,
		"/x;y":       `line 2: routes[0].path: "/x;y": path holds a ;`,
		"/%ZZ":       `line 2: routes[0].path: "/%ZZ": path holds a malformed %-escape`,
		"/ädmin/../": `line 2: routes[0].path: "/ädmin/../" is not in normal form (want "/")`,
	} {
		_, err := Load(strings.NewReader("routes:\n  - { path: "+in+", to: \"http://127.0.0.1:1\" }\n"), nil)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: got %v, want %s…", in, err, want)
		}
	}
	// Both spellings of one path are the same route.
	_, err := Load(strings.NewReader("routes:\n  - { path: /ädmin, to: \"http://127.0.0.1:1\" }\n  - { path: /%C3%A4DMIN, to: \"http://127.0.0.1:1\" }\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "line 3: routes[1]: duplicate route path") {
		t.Errorf("two spellings of one path: got %v, want a duplicate", err)
	}
}

// Finding 3: the admin's Basic credentials, which browsers resend site-wide
// after a 401, do not reach routes without auth; pass_auth forwards them
// on any route.
func TestAuthorizationNotForwarded(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `
users: { admins: [ { user: admin, hash: "${HASH}" } ] }
routes:
  - { path: /grafana, to: "${UP}", auth: admins }
  - { path: /keys,    to: "${UP}", pass_auth: true }
  - { path: /,        to: "${UP}" }
`, map[string]string{"UP": up.URL})
	for _, h := range []string{basic(testUser, testPassword), "Authorization: Bearer key"} {
		if s := seenBy(t, e.get(t, "/x", h)); s.Header["Authorization"] != nil {
			t.Errorf("%q: a route without auth or pass_auth forwarded Authorization %q", h, s.Header["Authorization"])
		}
		if s := seenBy(t, e.get(t, "/keys/x", h)); s.Header.Get("Authorization") == "" {
			t.Errorf("%q: a route with pass_auth did not forward Authorization", h)
		}
	}
	if s := seenBy(t, e.get(t, "/grafana/x", basic(testUser, testPassword))); s.Header["Authorization"] != nil {
		t.Errorf("an auth route without pass_auth forwarded Authorization")
	}
	// Lower-case on the wire, as some clients send it.
	code, s := rawSeen(t, e.addr, "GET /x HTTP/1.1\r\nHost: x\r\nauthorization: "+strings.TrimPrefix(basic(testUser, testPassword), "Authorization: ")+"\r\n\r\n")
	if code != 200 || s.Header["Authorization"] != nil {
		t.Errorf("lower-case authorization: %d, upstream saw %q", code, s.Header["Authorization"])
	}
}

// Finding 4: an encoded slash is refused whatever else the path holds.
// Before, a path with " { | ^ or non-ASCII was re-encoded from its decoded
// form by URL.EscapedPath, and its %2F became a real slash.
func TestEncodedSlashWithOddCharacters(t *testing.T) {
	graf := newUpstream(t)
	prom := newUpstream(t)
	app := newUpstream(t)
	e := startEdge(t, `
users: { admins: [ { user: admin, hash: "${HASH}" } ] }
routes:
  - { path: /grafana,    to: "${GRAF}", auth: admins }
  - { path: /prometheus, to: "${PROM}", auth: admins }
  - { path: /,           to: "${APP}" }
`, map[string]string{"GRAF": graf.URL, "PROM": prom.URL, "APP": app.URL})
	auth := authLine(testUser, testPassword)
	for _, p := range []string{
		`/prometheus/a"%2f..%2f..%2fgrafana`,
		`/prometheus/a"%2F..%2F..%2Fgrafana`,
		`/x{/..%2fpublic`,
		`/x}/..%2fpublic`,
		`/x|/..%2fpublic`,
		`/x^/..%2fpublic`,
		"/x`/..%2fpublic",
		`/x</..%2fpublic`,
		`/x[/..%2fpublic`,
		`/ä/..%2fpublic`,
		`/prometheus/ä%2f..%2f..%2fgrafana`,
		`/prometheus/a"%5c..%5cgrafana`,
		`/prometheus/a"%00`,
		`/prometheus/a"%3b`,
		`/prometheus/a"%252f`,
		`/prometheus/a"/../../..`,
		`/x{/%2e%2e/%2e%2e/`,
	} {
		for _, target := range []string{p, "http://edge.test" + p} {
			code, b := rawRequest(t, e.addr, "GET "+target+" HTTP/1.1\r\nHost: edge.test\r\n"+auth+"\r\n")
			if code != http.StatusBadRequest {
				t.Errorf("%q: %d, want 400: %s", target, code, b)
			}
		}
	}
	if n := graf.hits.Load() + prom.hits.Load() + app.hits.Load(); n != 0 {
		t.Fatalf("%d refused requests reached an upstream", n)
	}
	// A target with no path at all.
	if code, b := rawRequest(t, e.addr, "GET * HTTP/1.1\r\nHost: edge.test\r\n\r\n"); code != http.StatusBadRequest {
		t.Errorf("GET *: %d, want 400: %s", code, b)
	}
	// Without an encoded slash such paths are served, and forwarded
	// well-formed: the odd characters percent-encoded, once.
	for p, want := range map[string]string{
		`/x"/../y`:           "/y",
		`/a"b`:               "/a%22b",
		`/a{b}|c^`:           "/a%7Bb%7D%7Cc%5E",
		`/caf%c3%a9/ä`:       "/caf%C3%A9/%C3%A4",
		`/a%22b`:             "/a%22b",
		"http://h/q\"?x=%2f": "/q%22?x=%2f",
		"http://h":           "/",
		"http://h?x=1":       "/?x=1",
	} {
		code, s := rawSeen(t, e.addr, "GET "+p+" HTTP/1.1\r\nHost: edge.test\r\n\r\n")
		if code != http.StatusOK || s.URI != want {
			t.Errorf("%q: %d, app saw %q, want 200 and %q", p, code, s.URI, want)
		}
	}
	// The access log holds the path as the client sent it, without the query.
	e.shutdown(t)
	log := e.accessLg.String()
	for _, want := range []string{`"path":"/prometheus/a\"%2f..%2f..%2fgrafana"`, `"path":"/x{/..%2fpublic"`, `"path":"/a{b}|c^"`, `"path":"/q\""`} {
		if !strings.Contains(log, want) {
			t.Errorf("access log lacks %s:\n%s", want, log)
		}
	}
}

func TestRequestPath(t *testing.T) {
	for uri, want := range map[string]string{
		"/a/b?c":             "/a/b",
		"/a%2fb":             "/a%2fb",
		`/a"%2f`:             `/a"%2f`,
		"http://h/a?b":       "/a",
		"HTTP://h:80/a%2F":   "/a%2F",
		"http://h":           "/",
		"http://h?x":         "/",
		"http://u@h/p":       "/p",
		"https://[::1]:1/p?": "/p",
		"http://h#/p":        "#/p",
	} {
		r := &http.Request{RequestURI: uri}
		if got, ok := requestPath(r); !ok || got != want {
			t.Errorf("requestPath(%q) = %q, %v; want %q", uri, got, ok, want)
		}
	}
	for _, uri := range []string{"*", "h:443", "x"} {
		if _, ok := requestPath(&http.Request{RequestURI: uri}); ok {
			t.Errorf("requestPath(%q) found a path", uri)
		}
	}
}

// Finding 7: a trailing dot in Host (or in the route's host) is dropped.
func TestHostTrailingDot(t *testing.T) {
	adm := newUpstream(t)
	app := newUpstream(t)
	e := startEdge(t, `
users: { admins: [ { user: admin, hash: "${HASH}" } ] }
routes:
  - { path: /, to: "${ADM}", host: admin.test, auth: admins }
  - { path: /, to: "${ADM}", host: "ops.test.", auth: admins }
  - { path: /, to: "${APP}" }
`, map[string]string{"ADM": adm.URL, "APP": app.URL})
	for _, h := range []string{"admin.test", "admin.test.", "ADMIN.Test.", "admin.test.:8080", "admin.test:80", "ops.test", "ops.test.", "OPS.TEST.:1"} {
		if code, b := rawRequest(t, e.addr, "GET /x HTTP/1.1\r\nHost: "+h+"\r\n\r\n"); code != http.StatusUnauthorized {
			t.Errorf("Host %q: %d, want 401: %s", h, code, b)
		}
	}
	if n := app.hits.Load() + adm.hits.Load(); n != 0 {
		t.Fatalf("%d requests for the admin host reached an upstream without credentials", n)
	}
	if code, _ := rawRequest(t, e.addr, "GET /x HTTP/1.1\r\nHost: other.test.\r\n\r\n"); code != 200 {
		t.Errorf("other host: %d, want the catch-all", code)
	}
	for in, want := range map[string]string{"admin.test": "admin.test", "Admin.Test.": "admin.test", "[::1]:8": "[::1]", "a.b.:8": "a.b"} {
		if got := hostKey(in); got != want {
			t.Errorf("hostKey(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = hostKey("admin.test.:8080") }); n != 0 {
		t.Errorf("hostKey allocates %v times", n)
	}
}

// Finding 8: a variable that is set but empty is an error where it would
// otherwise drop a user or the auth of a route silently.
func TestEmptyVariables(t *testing.T) {
	env := map[string]string{"UP": "http://127.0.0.1:1", "HASH": testHash, "EMPTY": ""}
	for name, tc := range map[string]struct{ yaml, want string }{
		"empty auth": {
			"users: { admins: [ { user: a, hash: \"${HASH}\" } ] }\nroutes:\n  - { path: /dash, to: \"${UP}\", auth: \"${EMPTY}\" }\n",
			`line 3: routes[0].auth: "${EMPTY}" is empty (want a user set; leave auth out for a route without Basic Auth)`,
		},
		"literal empty auth": {
			"users: { admins: [ { user: a, hash: \"${HASH}\" } ] }\nroutes:\n  - { path: /dash, to: \"${UP}\", auth: \"\" }\n",
			`line 3: routes[0].auth: "" is empty (want a user set; leave auth out for a route without Basic Auth)`,
		},
		"empty hash": {
			"users:\n  admins:\n    - { user: a, hash: \"${EMPTY}\" }\nroutes:\n  - { path: /dash, to: \"${UP}\", auth: admins }\n",
			"line 3: users.admins[0].hash: \"${EMPTY}\" is empty (want a bcrypt hash from `edge hash-password`)",
		},
		"one empty hash of two": {
			"users:\n  admins:\n    - { user: a, hash: \"${HASH}\" }\n    - { user: b, hash: \"${EMPTY}\" }\nroutes:\n  - { path: /dash, to: \"${UP}\", auth: admins }\n",
			"line 4: users.admins[1].hash: \"${EMPTY}\" is empty (want a bcrypt hash from `edge hash-password`)",
		},
	} {
		_, err := Load(strings.NewReader(tc.yaml), envLookup(env))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: got %v, want %s", name, err, tc.want)
		}
	}
	// A null auth is no auth, as before.
	if _, err := Load(strings.NewReader("routes:\n  - { path: /, to: \"${UP}\", auth: ~ }\n"), envLookup(env)); err != nil {
		t.Errorf("null auth: %v", err)
	}
}

// Finding 9: from a peer that is not a trusted proxy, every X-Forwarded-*
// and the other headers that upstreams believe about the client or the URL
// are dropped, in any case and with '_' for '-'.
func TestUntrustedForwardingHeadersDropped(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `
trusted_proxies: ["10.0.0.0/8"]
routes: [ { path: /, to: "${UP}" } ]
`, map[string]string{"UP": up.URL})
	spoofed := []string{
		"X-Forwarded-Prefix", "X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Forwarded-Uri",
		"X-Original-URL", "X-Rewrite-URL", "X-Client-IP", "X-Real-IP", "True-Client-IP", "Forwarded",
		"CF-Connecting-IP", "X-Cluster-Client-IP", "X_Forwarded_For", "x_forwarded_prefix", "X-ORIGINAL-URL",
	}
	req := "GET /x HTTP/1.1\r\nHost: x\r\nX-Kept: yes\r\n"
	for _, h := range spoofed {
		req += h + ": 6.6.6.6\r\n"
	}
	code, s := rawSeen(t, e.addr, req+"\r\n")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for name, v := range s.Header {
		if strings.Contains(strings.Join(v, ","), "6.6.6.6") {
			t.Errorf("untrusted %s reached the upstream: %q", name, v)
		}
	}
	if s.Header.Get("X-Kept") != "yes" || s.Header.Get("X-Forwarded-For") != "127.0.0.1" || s.Header.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("upstream headers: %v", s.Header)
	}
	for _, n := range []string{"X-Forwarded-Anything", "x_forwarded_host", "Forwarded", "X_Real_Ip"} {
		if !spoofable(n) {
			t.Errorf("spoofable(%q) = false", n)
		}
	}
	for _, n := range []string{"X-Forwarded", "X-Forwardedx", "Forwarded-X", "Authorization", "X-Request-Id"} {
		if spoofable(n) {
			t.Errorf("spoofable(%q) = true", n)
		}
	}
}

// readStatus reads one response off c.
func readStatus(t *testing.T, c net.Conn) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// burst sends one request per entry of auths (an Authorization line each,
// "" for none) on its own connection, all dialled first and written at
// once, and counts the statuses.
func burst(t *testing.T, addr, path string, auths []string, extra string) map[int]int {
	t.Helper()
	conns := make([]net.Conn, len(auths))
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	start := make(chan struct{})
	codes := make(chan int, len(auths))
	for i, c := range conns {
		go func() {
			<-start
			req := "GET " + path + " HTTP/1.1\r\nHost: edge.test\r\n" + extra + auths[i] + "\r\n"
			if _, err := io.WriteString(c, req); err != nil {
				codes <- -1
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				codes <- -1
				return
			}
			res.Body.Close()
			codes <- res.StatusCode
		}()
	}
	close(start)
	got := make(map[int]int)
	for range auths {
		got[<-codes]++
	}
	return got
}

// Finding 1: a burst of wrong passwords released together from one address
// gets at most failures_per_minute verifications; the rest are 429. Before,
// every request passed the throttle check while the first ones were still
// in bcrypt, and the right password among them got through.
func TestThrottleBurst(t *testing.T) {
	slowHash, err := bcrypt.GenerateFromPassword([]byte(testPassword), 8) // slow enough for the requests to overlap
	if err != nil {
		t.Fatal(err)
	}
	up := newUpstream(t)
	e := startEdge(t, `
basic_auth: { failures_per_minute: 10 }
users: { admins: [ { user: admin, hash: "${SLOW}" } ] }
routes:
  - { path: /prometheus, to: "${UP}", auth: admins }
`, map[string]string{"UP": up.URL, "SLOW": string(slowHash)})
	const n, limit = 50, 10
	auths := make([]string, n)
	for i := range auths {
		auths[i] = authLine(testUser, "guess"+strconv.Itoa(i))
	}
	auths[n-1] = authLine(testUser, testPassword)
	got := burst(t, e.addr, "/prometheus/", auths, "")
	// The right password may be among the first ten verified (a success
	// gives its attempt back); otherwise it is refused with the rest.
	if got[401] > limit || got[200] > 1 || got[401]+got[200]+got[429]+got[503] != n {
		t.Errorf("statuses %v: want at most %d × 401, the rest 429", got, limit)
	}
	if up.hits.Load() != int64(got[200]) {
		t.Errorf("the upstream got %d requests", up.hits.Load())
	}
	// The window is full: a new guess waits.
	if res := e.get(t, "/prometheus/", basic(testUser, "one more")); got[401] == limit && res.StatusCode != 429 {
		t.Errorf("guess after %d failures: %d, want 429", limit, res.StatusCode)
	}
}

// Finding 1, on the authenticator: 50 concurrent wrong passwords from one
// client IP, each counted before bcrypt.
func TestThrottleCountsAttemptsInProgress(t *testing.T) {
	a := newAuthenticator()
	a.cache.configure(time.Minute, 100)
	set := a.newUserSet("admins", []User{{Name: testUser, Hash: testHash}})
	const n, limit = 50, 10
	var wg sync.WaitGroup
	res := make(chan authResult, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			h := strings.TrimPrefix(basic(testUser, "wrong"+strconv.Itoa(i)), "Authorization: ")
			_, r, _ := a.check(context.Background(), set, h, "192.0.2.7", limit, time.Now())
			res <- r
		}()
	}
	close(start)
	wg.Wait()
	close(res)
	got := map[authResult]int{}
	for r := range res {
		got[r]++
	}
	if got[authFailed] > limit || got[authFailed]+got[authThrottled] != n {
		t.Errorf("failed %d, throttled %d, other %v: want at most %d failed, the rest throttled", got[authFailed], got[authThrottled], got, limit)
	}
	a.throttle.mu.Lock()
	f := a.throttle.clients["192.0.2.7"]
	a.throttle.mu.Unlock()
	if f == nil || f.pending != 0 || f.n != got[authFailed] {
		t.Errorf("throttle entry %+v after the burst", f)
	}
}

// Finding 5: throttle keys are canonical, and an IPv6 client is keyed by
// its /64.
func TestThrottleKey(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.9":         "203.0.113.9",
		"::ffff:203.0.113.9":  "203.0.113.9",
		"2001:DB8::1":         "2001:db8::/64",
		"2001:0db8::1":        "2001:db8::/64",
		"2001:db8:0:0:ffff::": "2001:db8::/64",
		"2001:db8:1:2::77":    "2001:db8:1:2::/64",
		"fe80::1%eth0":        "fe80::/64",
		"not an ip":           "not an ip",
	} {
		if got := throttleKey(in); got != want {
			t.Errorf("throttleKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// Finding 5, end to end: addresses of one /64 through a trusted proxy
// share one count.
func TestThrottleIPv6Prefix(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `
trusted_proxies: ["127.0.0.1/32"]
basic_auth: { failures_per_minute: 10 }
users: { admins: [ { user: admin, hash: "${HASH}" } ] }
routes:
  - { path: /grafana, to: "${UP}", auth: admins }
`, map[string]string{"UP": up.URL})
	got := map[int]int{}
	for i := 1; i <= 25; i++ {
		res := e.get(t, "/grafana/", basic(testUser, "guess"), "CF-Connecting-IP: 2001:db8:1:2::"+strconv.Itoa(i))
		got[res.StatusCode]++
	}
	if got[401] != 10 || got[429] != 15 {
		t.Errorf("statuses %v, want 10 × 401 then 429", got)
	}
	for _, ip := range []string{"2001:DB8:1:2::1", "2001:0db8:0001:0002:0000:0000:0000:0099"} {
		if res := e.get(t, "/grafana/", basic(testUser, testPassword), "CF-Connecting-IP: "+ip); res.StatusCode != 429 {
			t.Errorf("%s: %d, want 429", ip, res.StatusCode)
		}
	}
	if res := e.get(t, "/grafana/", basic(testUser, testPassword), "CF-Connecting-IP: 2001:db8:1:3::1"); res.StatusCode != 200 {
		t.Errorf("another /64: %d, want 200", res.StatusCode)
	}
}

// Finding 5: a full throttle evicts its oldest entries rather than stop
// counting new clients.
func TestThrottleEvictsOldest(t *testing.T) {
	th := newThrottle()
	th.max = 100
	now := time.Now()
	for i := 0; i < 100; i++ {
		f, _ := th.begin("198.51.100."+strconv.Itoa(i), 3, now.Add(time.Duration(i)*time.Millisecond))
		th.end(f, true)
	}
	later := now.Add(time.Second)
	for i := 0; i < 3; i++ {
		f, wait := th.begin("203.0.113.1", 3, later)
		if f == nil {
			t.Fatalf("attempt %d of a new client throttled (%v)", i, wait)
		}
		th.end(f, true)
	}
	if f, wait := th.begin("203.0.113.1", 3, later); f != nil || wait <= 0 {
		t.Errorf("a new client of a full throttle is not counted: %v %v", f, wait)
	}
	if len(th.clients) > 100 || th.order.Len() != len(th.clients) {
		t.Errorf("%d clients, %d in order", len(th.clients), th.order.Len())
	}
	if th.clients["198.51.100.0"] != nil || th.clients["198.51.100.99"] == nil {
		t.Error("not the oldest entry evicted")
	}
}

// Finding 6: a throttled address still gets in with a password verified
// before (it costs no bcrypt and reveals nothing new); a new one waits.
func TestThrottleHonoursCachedLogin(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `
trusted_proxies: ["127.0.0.1/32"]
basic_auth: { failures_per_minute: 3 }
users:
  admins: [ { user: admin, hash: "${HASH}" }, { user: ops, hash: "${HASH}" } ]
routes:
  - { path: /grafana, to: "${UP}", auth: admins }
`, map[string]string{"UP": up.URL})
	from := "CF-Connecting-IP: 203.0.113.50"
	if res := e.get(t, "/grafana/", basic(testUser, testPassword), from); res.StatusCode != 200 {
		t.Fatalf("login: %d", res.StatusCode)
	}
	for i := 0; i < 5; i++ {
		e.get(t, "/grafana/", basic(testUser, "guess"+strconv.Itoa(i)), from)
	}
	if res := e.get(t, "/grafana/", basic(testUser, "guess"), from); res.StatusCode != 429 {
		t.Fatalf("guess after the limit: %d, want 429", res.StatusCode)
	}
	if res := e.get(t, "/grafana/", basic(testUser, testPassword), from); res.StatusCode != 200 {
		t.Errorf("cached login from a throttled address: %d, want 200", res.StatusCode)
	}
	if res := e.get(t, "/grafana/", basic("ops", testPassword), from); res.StatusCode != 429 {
		t.Errorf("uncached login from a throttled address: %d, want 429", res.StatusCode)
	}
}

// Finding 10: a request body that stalls longer than
// limits.body_read_timeout ends the request with 408; a body that keeps
// coming, an answer that takes longer than the timeout once the body is
// in, and the next request on the connection are not affected.
func TestBodyReadTimeout(t *testing.T) {
	const timeout = 400 * time.Millisecond
	got := make(chan error, 4)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/stalled" {
			got <- err
			return
		}
		if r.URL.Path == "/think" {
			time.Sleep(3 * timeout) // past the deadline the body reads set
		}
		_, _ = io.WriteString(w, strconv.FormatInt(n, 10))
	}))
	t.Cleanup(up.Close)
	e := startEdge(t, `
limits: { body_read_timeout: 400ms }
routes: [ { path: /, to: "${UP}" } ]
`, map[string]string{"UP": up.URL})

	// A body that stops after 10 of its 1000 bytes.
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "POST /stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
	if code := readStatus(t, c); code != http.StatusRequestTimeout {
		t.Errorf("stalled body: %d, want 408", code)
	}
	// The upstream never acts on the stalled body: http.Transport (large
	// bodies) has sent part of it and then cuts the request; the fast path
	// (small bodies) sends nothing before the body is whole.
	select {
	case err := <-got:
		if err == nil {
			t.Error("the upstream got a complete body")
		}
	case <-time.After(2 * time.Second):
	}

	// A body in ten pieces, each well within the timeout; then the answer
	// takes longer than the timeout; then the connection is reused after
	// more than the timeout.
	c2, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, _ = io.WriteString(c2, "POST /think HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
	for i := 0; i < 10; i++ {
		time.Sleep(timeout / 8)
		_, _ = io.WriteString(c2, strings.Repeat("x", 100))
	}
	br := bufio.NewReader(c2)
	_ = c2.SetReadDeadline(time.Now().Add(20 * time.Second))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("steady body: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "1000" {
		t.Errorf("steady body, slow answer: %d %q, want 200 \"1000\"", res.StatusCode, b)
	}
	time.Sleep(2 * timeout)
	_, _ = io.WriteString(c2, "GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("next request on the connection: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("next request on the connection: %d", res.StatusCode)
	}
	if v := e.metric(t, `edge_upstream_errors_total{kind="client_timeout",route="/"}`); v != 1 {
		t.Errorf("client timeouts counted = %v, want 1", v)
	}
}

func TestBodyReadTimeoutConfig(t *testing.T) {
	cfg, err := Load(strings.NewReader("routes: [ { path: /, to: \"http://127.0.0.1:1\" } ]"), nil)
	if err != nil || cfg.Limits.BodyReadTimeout != 60*time.Second {
		t.Errorf("default: %v, %v", cfg, err)
	}
	cfg, err = Load(strings.NewReader("limits: { body_read_timeout: 0s }\nroutes: [ { path: /, to: \"http://127.0.0.1:1\" } ]"), nil)
	if err != nil || cfg.Limits.BodyReadTimeout != 0 {
		t.Errorf("off: %v, %v", cfg, err)
	}
	_, err = Load(strings.NewReader("limits: { body_read_timeout: slow }\nroutes: [ { path: /, to: \"http://127.0.0.1:1\" } ]"), nil)
	if err == nil || err.Error() != `line 1: limits.body_read_timeout: bad duration "slow" (want e.g. 10s, 2m, 500ms)` {
		t.Errorf("bad: %v", err)
	}
}
