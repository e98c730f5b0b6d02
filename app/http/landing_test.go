package http_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestLandingPage checks what a browser gets at / without running one (the
// browser test is e2e/ui_test.go): a CSP that forbids inline code and a
// page that has none, every file it references served with its type, the
// favicon, and no key anywhere in what is served.
func TestLandingPage(t *testing.T) {
	e := newEnv(t)
	r := e.do(request{method: "GET", path: "/"})
	page := string(r.body)
	if r.status != 200 || r.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %q", r.status, r.header.Get("Content-Type"))
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "form-action 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q allows unsafe sources", csp)
	}
	// What that CSP would block must not be in the page.
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(\s[^>]*)?>[^<\s]`), // an inline script
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle\s*=`),
		regexp.MustCompile(`\son[a-z]+\s*=`), // onclick= and friends
		regexp.MustCompile(`javascript:`),
	} {
		if m := bad.FindString(page); m != "" {
			t.Errorf("the page holds %q, which its CSP blocks", m)
		}
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(tag, ` src="`) {
			t.Errorf("the page holds %s, a script without src, which its CSP blocks", tag)
		}
	}
	for _, want := range []string{`id="upload"`, `id="upload-progress"`, `id="search"`, `id="filter"`, `id="contact"`, "POST /contact"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}

	// Every local file the page references is served, with its type.
	refs := regexp.MustCompile(`(?:src|href)="([^"#:]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("the page references %d local files, want its script, style sheet and icon", len(refs))
	}
	served := map[string]string{}
	for _, m := range refs {
		r := e.do(request{method: "GET", path: "/" + m[1]})
		if r.status != 200 {
			t.Errorf("GET /%s (referenced by the page): %d %s", m[1], r.status, r.body)
			continue
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET /%s: no X-Content-Type-Options: nosniff", m[1])
		}
		served[m[1]] = r.header.Get("Content-Type") + "\n" + string(r.body)
	}
	for name, wantType := range map[string]string{
		"static/landing.js":  "text/javascript; charset=utf-8",
		"static/landing.css": "text/css; charset=utf-8",
		"favicon.ico":        "image/svg+xml",
	} {
		got, ok := served[name]
		if !ok {
			t.Errorf("the page does not reference %s", name)
			continue
		}
		if ct, _, _ := strings.Cut(got, "\n"); ct != wantType {
			t.Errorf("%s served as %q, want %q", name, ct, wantType)
		}
	}
	if js := served["static/landing.js"]; strings.Contains(js, "localStorage") || strings.Contains(js, "document.cookie") ||
		strings.Contains(js, "innerHTML") || !strings.Contains(js, "sessionStorage") {
		t.Errorf("landing.js must keep the key in sessionStorage only and never parse HTML")
	}
	// The favicon at the path browsers ask for unprompted.
	if r := e.do(request{method: "GET", path: "/favicon.ico"}); r.status != 200 || !strings.HasPrefix(string(r.body), "<svg") {
		t.Errorf("GET /favicon.ico: %d %q", r.status, r.body)
	}

	// No key is ever served: the user types it.
	for name, body := range served {
		if strings.Contains(body, publicKey) || strings.Contains(body, adminKey) {
			t.Errorf("%s holds an API key", name)
		}
	}
	if strings.Contains(page, publicKey) || strings.Contains(page, adminKey) {
		t.Errorf("the page holds an API key")
	}
}

func TestStaticFiles(t *testing.T) {
	e := newEnv(t)
	r := e.do(request{method: "GET", path: "/static/landing.js"})
	etag := r.header.Get("ETag")
	if r.status != 200 || etag == "" || r.header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET /static/landing.js: %d, ETag %q, Cache-Control %q", r.status, etag, r.header.Get("Cache-Control"))
	}
	if r := e.do(request{method: "GET", path: "/static/landing.js", header: map[string]string{"If-None-Match": etag}}); r.status != http.StatusNotModified {
		t.Errorf("revalidation with the ETag: %d, want 304", r.status)
	}
	for _, p := range []string{"/static/nope.js", "/static/", "/static/..%2flanding.html", "/static/%2e%2e/landing.go"} {
		r := e.do(request{method: "GET", path: p})
		if r.status != 404 || r.json["error"] == nil {
			t.Errorf("GET %s: %d %s, want a JSON 404", p, r.status, r.body)
		}
	}
	if r := e.do(request{method: "POST", path: "/static/landing.js"}); r.status != 405 {
		t.Errorf("POST /static/landing.js: %d, want 405", r.status)
	}
}
