package edge

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
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
