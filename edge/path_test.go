package edge

import (
	"net/http"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"/", "/", nil},
		{"", "/", nil},
		{"/prometheus", "/prometheus", nil},
		{"/prometheus/", "/prometheus/", nil},
		{"//prometheus", "/prometheus", nil},
		{"/./prometheus", "/prometheus", nil},
		{"/x/../prometheus", "/prometheus", nil},
		{"/prometheus/.", "/prometheus/", nil},
		{"/prometheus/..", "/", nil},
		{"/prometheus/%2e%2e/", "/", nil},
		{"/%2e/prometheus", "/prometheus", nil},
		{"/%70rometheus", "/prometheus", nil},
		{"/%50rometheus", "/Prometheus", nil},
		{"/a//b///c", "/a/b/c", nil},
		{"/a/b/", "/a/b/", nil},
		{"/caf%c3%a9", "/caf%C3%A9", nil},
		{"/a%20b", "/a%20b", nil},
		{"/.well-known/x", "/.well-known/x", nil},
		{"/a/...", "/a/...", nil},
		{"/a/.b/..c", "/a/.b/..c", nil},
		{"/%7Euser", "/~user", nil},
		{"/a/b/../../..", "", errPathEscapesRoot},
		{"/..", "", errPathEscapesRoot},
		{"/%2e%2e/prometheus", "", errPathEscapesRoot},
		{"/..%2fprometheus", "", errPathEncodedSlash},
		{"/prometheus%2f", "", errPathEncodedSlash},
		{"/prometheus%2F", "", errPathEncodedSlash},
		{"/prometheus/..%2f", "", errPathEncodedSlash},
		{"/prometheus%5c", "", errPathBackslash},
		{`/prometheus\`, "", errPathBackslash},
		{`/..\prometheus`, "", errPathBackslash},
		{"/prometheus%00", "", errPathControl},
		{"/prometheus\x00", "", errPathControl},
		{"/prometheus%0a", "", errPathControl},
		{"/prometheus%7f", "", errPathControl},
		{"/prometheus;x", "", errPathSemicolon},
		{"/;/prometheus", "", errPathSemicolon},
		{"/prometheus%3bx", "", errPathDelimiter},
		{"/%2570rometheus", "", errPathDelimiter},
		{"/prometheus%3f", "", errPathDelimiter},
		{"/prometheus%23", "", errPathDelimiter},
		{"/prometheus#x", "", errPathFragment},
		{"/prometheus%", "", errPathBadEscape},
		{"/prometheus%zz", "", errPathBadEscape},
		{"/prometheus%4", "", errPathBadEscape},
		{"prometheus", "", errPathRelative},
	} {
		got, err := normalizePath(tc.in)
		if err != tc.err || got != tc.want {
			t.Errorf("normalizePath(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestNormalizePathDoesNotAllocateWhenClean(t *testing.T) {
	p := "/grafana/api/dashboards/uid/abc"
	if n := testing.AllocsPerRun(100, func() { _, _ = normalizePath(p) }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}

// protectedSpellings are the ways of writing /prometheus that proxies have
// got wrong (see the CVEs in the design notes). Each must be refused (400)
// or challenged (401), and none may reach the protected upstream without
// credentials. Each is sent as raw bytes on a TCP connection, so no client
// library cleans it first.
var protectedSpellings = []string{
	"/prometheus",
	"/prometheus/",
	"/prometheus/api/v1/query",
	"//prometheus",
	"///prometheus/",
	"/./prometheus",
	"/x/../prometheus",
	"/x/%2e%2e/prometheus",
	"/x/%2E%2E/prometheus",
	"/%2e/prometheus",
	"/%70rometheus",
	"/%70%72%6f%6d%65%74%68%65%75%73",
	"/%2570rometheus",
	"/prometheus%2f",
	"/prometheus%2F..%2F",
	"/prometheus%5c",
	`/prometheus\`,
	`/prometheus\..\`,
	`\prometheus`,
	"/PROMETHEUS",
	"/Prometheus/graph",
	"/%50ROMETHEUS",
	"/prometheus;x",
	"/prometheus;/",
	"/;/prometheus",
	"/prometheus%3b",
	"/prometheus%00",
	"/prometheus%00/",
	"/prometheus%0d%0a",
	"/prometheus/..%2f",
	"/prometheus/..%2F..%2Fprometheus",
	"/%2e%2e/prometheus",
	"/../prometheus",
	"/prometheus/%2e%2e/prometheus",
	"/prometheus?x",
	"/prometheus?x=/../",
	"/prometheus#x",
	"/prometheus%23",
	"/prometheus%3f",
	"/prometheus/./",
	"/prometheus//",
	"/./././prometheus",
}

func TestProtectedPathSpellings(t *testing.T) {
	prom := newUpstream(t)
	app := newUpstream(t)
	e := startEdge(t, `
users: { admins: [ { user: admin, hash: "${HASH}" } ] }
routes:
  - { path: /prometheus, to: "${PROM}", auth: admins }
  - { path: /, to: "${APP}" }
`, map[string]string{"PROM": prom.URL, "APP": app.URL})

	forms := []struct {
		name string
		req  func(path string) string
	}{
		{"origin-form", func(p string) string { return "GET " + p + " HTTP/1.1\r\nHost: edge.test\r\n\r\n" }},
		{"absolute-form", func(p string) string {
			return "GET http://edge.test" + p + " HTTP/1.1\r\nHost: edge.test\r\n\r\n"
		}},
		{"absolute-form other host", func(p string) string {
			return "GET http://other.test" + p + " HTTP/1.1\r\nHost: edge.test\r\n\r\n"
		}},
		{"HTTP/1.0", func(p string) string { return "GET " + p + " HTTP/1.0\r\n\r\n" }},
	}
	for _, f := range forms {
		for _, p := range protectedSpellings {
			if f.name != "origin-form" && strings.HasPrefix(p, `\`) {
				continue // not a URL at all in absolute form
			}
			code, b := rawRequest(t, e.addr, f.req(p))
			if code != http.StatusBadRequest && code != http.StatusUnauthorized {
				t.Errorf("%s %q: status %d, want 400 or 401: %s", f.name, p, code, b)
			}
		}
	}
	if n := prom.hits.Load(); n != 0 {
		t.Fatalf("the protected upstream got %d requests without credentials", n)
	}
	// Spellings that leave /prometheus once resolved go to the app, which
	// gets the resolved path, not the spelling.
	for p, want := range map[string]string{
		"/prometheus/%2e%2e/":     "/",
		"/prometheus/..":          "/",
		"/prometheus/../grafana":  "/grafana",
		"/prometheusx":            "/prometheusx",
		"/prometheus%2e%2e/x/../": "/prometheus../",
	} {
		code, b := rawRequest(t, e.addr, "GET "+p+" HTTP/1.1\r\nHost: edge.test\r\n\r\n")
		if code != http.StatusOK || !strings.Contains(b, `"uri":"`+want+`"`) {
			t.Errorf("%q: got %d %s, want the app to see %q", p, code, b, want)
		}
	}
	if n := prom.hits.Load(); n != 0 {
		t.Fatalf("the protected upstream got %d requests without credentials", n)
	}
	// And with credentials, the normal spellings do reach it.
	for _, p := range []string{"/prometheus", "//prometheus/", "/%70rometheus", "/x/../prometheus/graph"} {
		if res := e.get(t, p, basic(testUser, testPassword)); res.StatusCode != http.StatusOK {
			t.Errorf("%q with credentials: %d", p, res.StatusCode)
		}
	}
	if n := prom.hits.Load(); n != 4 {
		t.Errorf("the protected upstream got %d requests with credentials, want 4", n)
	}
}

// A refused path gets a message that says what is wrong.
func TestRefusedPathMessage(t *testing.T) {
	app := newUpstream(t)
	e := startEdge(t, `routes: [ { path: /, to: "${APP}" } ]`, map[string]string{"APP": app.URL})
	code, b := rawRequest(t, e.addr, "GET /a%2fb HTTP/1.1\r\nHost: x\r\n\r\n")
	if code != 400 || !strings.Contains(b, "encoded slash") {
		t.Errorf("got %d %q, want 400 naming the encoded slash", code, b)
	}
	if app.hits.Load() != 0 {
		t.Error("a refused request reached the upstream")
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, p := range protectedSpellings {
		f.Add(p)
	}
	for _, p := range []string{"/", "", "/a/b/../c", "/%", "/%%", "/a/./b/", "/..", "/a%2e%2E/b", "/%c3%a9/", "/a//..//b"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		out, err := normalizePath(p)
		if err != nil {
			return
		}
		if out == "" || out[0] != '/' {
			t.Fatalf("normalizePath(%q) = %q: not absolute", p, out)
		}
		if !strings.HasPrefix(p, "/") && p != "" {
			t.Fatalf("normalizePath(%q) accepted a relative path", p)
		}
		for _, bad := range []string{"//", "/./", "/../", `\`, ";", "#", "%2F", "%5C", "%00", "%25"} {
			if strings.Contains(out, bad) {
				t.Fatalf("normalizePath(%q) = %q holds %q", p, out, bad)
			}
		}
		if strings.HasSuffix(out, "/.") || strings.HasSuffix(out, "/..") {
			t.Fatalf("normalizePath(%q) = %q ends in a dot segment", p, out)
		}
		again, err := normalizePath(out)
		if err != nil || again != out {
			t.Fatalf("normalizePath not idempotent: %q -> %q -> %q, %v", p, out, again, err)
		}
	})
}
