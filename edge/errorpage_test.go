package edge

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNegotiateError(t *testing.T) {
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
	for _, c := range []struct {
		accept string
		want   errorFormat
	}{
		{"", formatText},
		{"*/*", formatText}, // curl, fetch(): as before
		{browser, formatHTML},
		{"application/json", formatJSON},
		{"application/json, text/plain, */*", formatJSON}, // axios: listed first
		{"text/plain, application/json", formatText},
		{"text/html;q=0.5, application/json", formatJSON},
		{"application/json;q=0.5, text/html", formatHTML},
		{"application/*", formatJSON},
		{"application/problem+json", formatJSON},
		{"text/*", formatText},
		{"application/json;q=0", formatText},
		{"image/png", formatText},
		{"TEXT/HTML", formatHTML},
		// A malformed q is 0, never a NaN that beats everything.
		{"text/html;q=NaN", formatText},
		{"text/html;q=NaN, application/json;q=0.1", formatJSON},
		// Vendor JSON types (GitHub, JSON:API) are JSON.
		{"application/vnd.github+json", formatJSON},
		{"application/vnd.api+json, text/html;q=0.5", formatJSON},
		{"application/json ; q=0.9 , text/html ; q=0.8", formatJSON},
	} {
		var accept []string
		if c.accept != "" {
			accept = []string{c.accept}
		}
		if got := negotiateError(accept); got != c.want {
			t.Errorf("Accept %q: got %d, want %d", c.accept, got, c.want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	for _, c := range []struct {
		status     int
		text, want string
	}{
		{502, "502 Bad Gateway: the upstream of route / is unreachable\n", "the upstream of route / is unreachable"},
		{401, "401 Unauthorized\n", "Unauthorized"},
		{400, "400 Bad Request: bad path\n", "bad path"},
		{418, "something else", "something else"},
	} {
		if got := errorMessage(c.status, c.text); got != c.want {
			t.Errorf("%q: got %q, want %q", c.text, got, c.want)
		}
	}
}

// TestEdgeErrorsInClientFormat makes the edge produce each of its own
// errors and checks the answer in each format.
func TestEdgeErrorsInClientFormat(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	dead.Close()
	up := newUpstream(t)
	e := startEdge(t, `
upstream: { response_header_timeout: 300ms }
limits: { body_read_timeout: 300ms }
basic_auth: { failures_per_minute: 1 }
users:
  admins: [{ user: admin, hash: "${HASH}" }]
routes:
  - { path: /api, to: "${UP}", max_body: 10 }
  - { path: /admin, to: "${UP}", auth: admins }
  - { path: /throttled, to: "${UP}", auth: admins }
  - { path: /dead, to: "${DEAD}" }
  - { path: /slow, to: "${SLOW}" }
`, map[string]string{"UP": up.URL, "DEAD": deadURL, "SLOW": slow.URL})
	const browser = "text/html,application/xhtml+xml,*/*;q=0.8"
	for _, c := range []struct {
		status  int
		request func(accept string) string // raw request bytes
	}{
		{400, func(a string) string { return "GET /api/%2F HTTP/1.1\r\nHost: x\r\n" + a + "\r\n" }},
		{401, func(a string) string { return "GET /admin HTTP/1.1\r\nHost: x\r\n" + a + "\r\n" }},
		{404, func(a string) string { return "GET /nothing HTTP/1.1\r\nHost: x\r\n" + a + "\r\n" }},
		{405, func(a string) string { return "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n" + a + "\r\n" }},
		{408, func(a string) string {
			return "POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n" + a + "\r\nab"
		}},
		{502, func(a string) string { return "GET /dead HTTP/1.1\r\nHost: x\r\n" + a + "\r\n" }},
		{504, func(a string) string { return "GET /slow HTTP/1.1\r\nHost: x\r\n" + a + "\r\n" }},
		{413, func(a string) string {
			return "POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n" + a + "\r\n0123456789a"
		}},
		{429, func(a string) string {
			// Use up the login throttle of 127.0.0.1 (last in the table:
			// it throttles every auth route).
			for i := 0; i < 2; i++ {
				e.get(t, "/throttled", basic("admin", "wrong"))
			}
			return "GET /throttled HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46d3Jvbmc=\r\n" + a + "\r\n"
		}},
	} {
		t.Run(http.StatusText(c.status), func(t *testing.T) {
			// Plain text without Accept, or with */*, as before.
			for _, accept := range []string{"", "Accept: */*\r\n"} {
				res, b := rawResponse(t, e.addr, c.request(accept))
				if res.StatusCode != c.status {
					t.Fatalf("status %d, want %d: %s", res.StatusCode, c.status, b)
				}
				if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || !strings.HasPrefix(b, res.Status[:3]) {
					t.Errorf("%q: %s %q, want plain text starting with the status", accept, ct, b)
				}
			}
			res, b := rawResponse(t, e.addr, c.request("Accept: application/json\r\nX-Request-Id: req-"+strconv.Itoa(c.status)+"\r\n"))
			if res.StatusCode != c.status || res.Header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Fatalf("JSON: %d %s %q", res.StatusCode, res.Header.Get("Content-Type"), b)
			}
			var j struct {
				Error     string `json:"error"`
				Status    int    `json:"status"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal([]byte(b), &j); err != nil || j.Status != c.status || j.Error == "" || j.RequestID == "" {
				t.Errorf("JSON body %q: %+v %v", b, j, err)
			}
			res, b = rawResponse(t, e.addr, c.request("Accept: "+browser+"\r\n"))
			if res.StatusCode != c.status || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("HTML: %d %s %q", res.StatusCode, res.Header.Get("Content-Type"), b)
			}
			id := res.Header.Get("X-Request-Id")
			if id == "" || !strings.Contains(b, id) || !strings.Contains(b, "<title>"+strconv.Itoa(c.status)) {
				t.Errorf("HTML page lacks the status or the request id %q:\n%s", id, b)
			}
			if retry := strings.Contains(b, `http-equiv="refresh"`); retry != (c.status == 502 || c.status == 504) {
				t.Errorf("page retries: %v", retry)
			}
		})
	}
	// The upstream's own errors pass through untouched, whatever the
	// client accepts.
	up2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"error":"from the app","status":`+strconv.Itoa(code)+`}`)
	}))
	t.Cleanup(up2.Close)
	e2 := startEdge(t, `routes: [{ path: /, to: "${UP}" }]`, map[string]string{"UP": up2.URL})
	for _, code := range []int{400, 401, 403, 404, 405, 408, 413, 415, 422, 429, 500, 502, 503, 504} {
		for _, accept := range [][]string{nil, {"Accept: application/json"}, {"Accept: " + browser}} {
			res := e2.get(t, "/status/"+strconv.Itoa(code), accept...)
			want := `{"error":"from the app","status":` + strconv.Itoa(code) + `}`
			if b := body(t, res); res.StatusCode != code || b != want || res.Header.Get("Content-Type") != "application/json" {
				t.Errorf("app's %d with %q changed: %d %s %q", code, accept, res.StatusCode, res.Header.Get("Content-Type"), b)
			}
		}
	}
}

func TestOperatorErrorPages(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"502.html":  `<h1>Back soon</h1><p>{{.Status}} {{.Message}} id={{.RequestID}}</p>`,
		"4xx.html":  `<p>client error {{.Status}} {{.StatusText}} id={{.RequestID}}</p>`,
		"notes.txt": "ignored",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + dead.Addr().String()
	dead.Close()
	e := startEdge(t, `
error_pages: { dir: "${DIR}" }
routes:
  - { path: /dead, to: "${DEAD}" }
`, map[string]string{"DIR": dir, "DEAD": deadURL})
	res := e.get(t, "/dead", "Accept: text/html", "X-Request-Id: abc123")
	if b := body(t, res); res.StatusCode != 502 || b != "<h1>Back soon</h1><p>502 the upstream of route /dead is unreachable id=abc123</p>" {
		t.Errorf("502 page: %d %q", res.StatusCode, b)
	}
	res = e.get(t, "/nope", "Accept: text/html", "X-Request-Id: <script>")
	if b := body(t, res); res.StatusCode != 404 || !strings.Contains(b, "client error 404 Not Found") || strings.Contains(b, "<script>") {
		t.Errorf("404 page (class file, escaped id): %d %q", res.StatusCode, b)
	}
	// JSON clients still get JSON.
	res = e.get(t, "/dead", "Accept: application/json")
	if ct := res.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("JSON client got %s", ct)
	}
}

func TestErrorPagesConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("503.html", "{{.Status")
	write("600.html", "x")
	write("504.html", "{{.Nope}}")
	_, err := Load(strings.NewReader(`
error_pages: { dir: "`+dir+`" }
routes: [{ path: /, to: "http://127.0.0.1:1" }]
`), nil)
	for _, want := range []string{"503.html", "600.html: want a name like", "504.html", "Nope"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to mention %q", err, want)
		}
	}
	_, err = Load(strings.NewReader(`
error_pages: { dir: /does/not/exist }
routes: [{ path: /, to: "http://127.0.0.1:1" }]
`), nil)
	if err == nil || !strings.Contains(err.Error(), "line 2: error_pages.dir") {
		t.Errorf("missing dir: %v", err)
	}
}
