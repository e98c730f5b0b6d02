package edge

import (
	"net/http"
	"strings"
	"testing"
)

func TestRedirect(t *testing.T) {
	up := newUpstream(t)
	users := "users:\n  admins: [{ user: admin, hash: \"${HASH}\" }]\n"
	e := startEdge(t, users+`
routes:
  - { path: /old-docs, redirect: { to: /docs } }
  - { path: /moved, redirect: { to: "https://example.com/new/", code: 301 } }
  - { path: /home, redirect: { to: "/?from=home", code: 302, exact: true } }
  - { path: /private-old, redirect: { to: /private, code: 307 }, auth: admins }
  - { path: /, to: "${UP}" }
`, map[string]string{"UP": up.URL})
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct {
		method, path string
		code         int
		location     string
	}{
		{"GET", "/old-docs", 308, "/docs"},
		{"GET", "/old-docs/", 308, "/docs/"},
		{"GET", "/old-docs/a/b?x=1&y=%2F", 308, "/docs/a/b?x=1&y=%2F"},
		{"POST", "/old-docs/form", 308, "/docs/form"},
		{"GET", "/OLD-DOCS/a", 308, "/docs/a"}, // routes match case-insensitively
		{"GET", "/old-docs/../old-docs/a", 308, "/docs/a"},
		{"GET", "/old-docs//evil.example", 308, "/docs/evil.example"},
		{"GET", "/moved/page?q=1", 301, "https://example.com/new/page?q=1"},
		{"GET", "/moved", 301, "https://example.com/new/"}, // the target as written
		{"GET", "/moved/", 301, "https://example.com/new/"},
		{"GET", "/home/anything?x=2", 302, "/?from=home&x=2"},
	} {
		req, _ := http.NewRequest(c.method, e.url+c.path, nil)
		res, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.code || res.Header.Get("Location") != c.location {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, res.StatusCode, res.Header.Get("Location"), c.code, c.location)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: security headers missing", c.path)
		}
	}
	if up.hits.Load() != 0 {
		t.Errorf("the upstream saw %d redirect requests", up.hits.Load())
	}
	// A redirect route with auth asks for it first.
	res, err := noFollow.Get(e.url + "/private-old/x")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("redirect behind auth: %d", res.StatusCode)
	}
}

func TestRedirectConfig(t *testing.T) {
	for _, c := range []struct {
		name, yaml, want string
	}{
		{"loop to itself", `routes: [{ path: /docs, redirect: { to: /docs/v2 } }]`, "loops back"},
		{"exact loop", `routes: [{ path: /a, redirect: { to: /a, exact: true } }]`, "loops back"},
		{"two-route loop", `routes: [{ path: /a, redirect: { to: /b } }, { path: /b, redirect: { to: /a } }]`, "loops back"},
		{"root loop", `routes: [{ path: /, redirect: { to: /x } }]`, "loops back"},
		{"same host absolute loop", `routes: [{ host: a.test, path: /, redirect: { to: "https://A.test/x" } }]`, "loops back"},
		{"network path", `routes: [{ path: /a, redirect: { to: //evil.example } }]`, "http(s) URL"},
		{"relative", `routes: [{ path: /a, redirect: { to: docs } }]`, "single /"},
		{"bad scheme", `routes: [{ path: /a, redirect: { to: "javascript:alert(1)" } }]`, "http(s) URL"},
		{"bad code", `routes: [{ path: /a, redirect: { to: /b, code: 200 } }]`, "want 301, 302, 303, 307 or 308"},
		{"no target", `routes: [{ path: /a, redirect: { code: 301 } }]`, "to is missing"},
		{"both", `routes: [{ path: /a, to: "http://127.0.0.1:1", redirect: { to: /b } }]`, "exclude each other"},
		{"unknown key", `routes: [{ path: /a, redirect: { to: /b, keep: true } }]`, `unknown key "keep"`},
		{"bad encoding", `encode: [br]
routes: [{ path: /, to: "http://127.0.0.1:1" }]`, `unknown encoding "br"`},
		{"repeated encoding", `routes: [{ path: /, to: "http://127.0.0.1:1", encode: [gzip, gzip] }]`, "repeated"},
	} {
		_, err := Load(strings.NewReader(c.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	// Not loops: to another site, to a proxied route, a chain that ends.
	for _, y := range []string{
		`routes: [{ path: /a, redirect: { to: "https://elsewhere.example/a" } }]`,
		`routes: [{ path: /a, redirect: { to: /b } }, { path: /, to: "http://127.0.0.1:1" }]`,
		`routes: [{ path: /a, redirect: { to: /b } }, { path: /b, redirect: { to: /c } }, { path: /c, to: "http://127.0.0.1:1" }]`,
		`routes: [{ host: a.test, path: /, redirect: { to: "https://b.test/" } }]`,
		`routes: [{ path: /docs, redirect: { to: /documentation } }]`,
	} {
		if _, err := Load(strings.NewReader(y), nil); err != nil {
			t.Errorf("%s: %v", y, err)
		}
	}
}
