package edge

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ups "selfhost.dev/edgeapp/edge/upstream"
)

func TestLoadPools(t *testing.T) {
	env := envLookup(map[string]string{"A": "http://10.0.0.11:8000", "SECRET": "0123456789abcdef-secret"})
	cfg, err := Load(strings.NewReader(`
routes:
  - path: /one
    to: "${A}"
  - path: /list-of-one
    to: ["${A}"]
  - path: /
    to: ["${A}", "http://10.0.0.12:8000", { url: "http://10.0.0.13:8000", weight: 2 }]
    lb: cookie
    health: { path: /health, interval: 5s, timeout: 1s, healthy: 1, unhealthy: 3, expect: 204 }
    passive: { max_fails: 3, fail_timeout: 10s, status_5xx: true }
    retry: { tries: 2, duration: 3s }
    resolve: 30s
    cookie: { name: lb, secret: "${SECRET}" }
  - path: /checked
    to: "http://app:8000/base"
    health: { path: /health }
`), env)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Routes
	if r[0].Upstreams != nil || r[1].Upstreams != nil {
		t.Errorf("one upstream made a pool: %+v %+v", r[0].Upstreams, r[1].Upstreams)
	}
	if r[1].To.String() != "http://10.0.0.11:8000" {
		t.Errorf("list of one: To %v", r[1].To)
	}
	p := r[2].Upstreams
	if p == nil || r[2].To.Host != "10.0.0.11:8000" || len(p.Targets) != 3 || p.Targets[2].Weight != 2 || p.Targets[0].Weight != 1 {
		t.Fatalf("pool %+v, To %v", p, r[2].To)
	}
	want := ups.Config{Policy: ups.Cookie, Targets: p.Targets,
		Health:  ups.Health{Path: "/health", Interval: 5 * time.Second, Timeout: time.Second, Healthy: 1, Unhealthy: 3, Expect: 204},
		Passive: ups.Passive{MaxFails: 3, FailTimeout: 10 * time.Second, Status5xx: true},
		Retry:   ups.Retry{Tries: 2, Duration: 3 * time.Second}, Resolve: 30 * time.Second,
		Cookie: ups.CookieConfig{Name: "lb", Secret: "0123456789abcdef-secret"}}
	if got := *p; got.Policy != want.Policy || got.Health != want.Health || got.Passive != want.Passive || got.Retry != want.Retry ||
		got.Resolve != want.Resolve || got.Cookie != want.Cookie {
		t.Errorf("pool\n got %+v\nwant %+v", got, want)
	}
	if c := r[3].Upstreams; c == nil || len(c.Targets) != 1 || c.Targets[0].URL.Path != "/base" || c.Health.Path != "/health" {
		t.Errorf("one upstream with a health check: %+v", c)
	}
}

func TestLoadPoolErrors(t *testing.T) {
	env := envLookup(map[string]string{"SHORT": "tooshort"})
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"empty list", "routes:\n  - { path: /, to: [] }", []string{`line 2: routes[0].to: empty list (want one URL or more)`}},
		{"bad item", "routes:\n  - path: /\n    to: [\"http://a:1\", \"ftp://b\", { weight: 2 }, { url: \"http://c:1\", weight: 0, colour: red }]", []string{
			`line 3: routes[0].to[1]: bad URL "ftp://b": scheme must be http or https`,
			`line 3: routes[0].to[2]: url is missing`,
			`line 3: routes[0].to[3].weight: want 1 to 100, got "0"`,
			`line 3: routes[0].to[3]: unknown key "colour" (want one of url, weight)`}},
		{"policy", "routes:\n  - { path: /, to: [\"http://a:1\", \"http://b:1\"], lb: random }",
			[]string{`line 2: routes[0].lb: unknown policy "random" (want one of round_robin, least_conn, ip_hash, first, cookie)`}},
		{"cookie without secret", "routes:\n  - path: /\n    to: [\"http://a:1\", \"http://b:1\"]\n    lb: cookie",
			[]string{`line 4: routes[0]: lb cookie needs cookie.secret (e.g. secret: ${EDGE_LB_SECRET})`}},
		{"short secret, not shown", "routes:\n  - path: /\n    to: [\"http://a:1\", \"http://b:1\"]\n    lb: cookie\n    cookie: { secret: \"${SHORT}\" }",
			[]string{"line 5: routes[0].cookie.secret: at least 16 bytes (e.g. secret: ${EDGE_LB_SECRET} set from `openssl rand -hex 32`)"}},
		{"paths differ", "routes:\n  - path: /\n    to: [\"http://a:1/api\", \"http://b:1/v2\"]",
			[]string{`line 3: routes[0].to[1]: path "/v2" differs from the first upstream's "/api" (the upstreams of a route are copies of one service)`}},
		{"repeated", "routes:\n  - path: /\n    to: [\"http://a:1\", \"http://A:1/\"]",
			[]string{`line 3: routes[0].to[1]: http://a:1 repeated (first at to[0]; use weight instead)`}},
		{"health", "routes:\n  - path: /\n    to: \"http://a:1\"\n    health: { path: health, interval: 1s, timeout: 2s, expect: 42, every: 1s }", []string{
			`line 4: routes[0].health.path: "health" must start with / and hold no spaces or #`,
			`line 4: routes[0].health.expect: want a status code 100 to 599, got "42"`,
			`line 4: routes[0].health: unknown key "every" (want one of path, interval, timeout, healthy, unhealthy, expect)`,
			`line 4: routes[0].health: timeout 2s must be shorter than interval 1s`}},
		{"health without path", "routes:\n  - path: /\n    to: \"http://a:1\"\n    health: { interval: 1s }",
			[]string{`line 4: routes[0].health: path is missing (e.g. /health)`}},
		{"retry and resolve", "routes:\n  - path: /\n    to: \"http://a:1\"\n    retry: { tries: 0, duration: soon }\n    resolve: 10ms", []string{
			`line 4: routes[0].retry.tries: want at least 1`,
			`line 4: routes[0].retry.duration: bad duration "soon" (want e.g. 10s, 2m, 500ms)`,
			`line 5: routes[0].resolve: at least 1s (it is a DNS refresh interval)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tc.yaml), env)
			if err == nil {
				t.Fatal("no error")
			}
			if got := err.Error(); got != strings.Join(tc.want, "\n") {
				t.Errorf("error:\n%s\nwant:\n%s", got, strings.Join(tc.want, "\n"))
			}
			if strings.Contains(err.Error(), "tooshort") {
				t.Error("the secret is in the message")
			}
		})
	}
}

const poolYAML = `
routes:
  - path: /api
    to: ["${A}/base", "${B}/base"]
    passive: { max_fails: 1, fail_timeout: 1m }
`

func TestPoolRoute(t *testing.T) {
	a, b := newUpstream(t), newUpstream(t)
	e := startEdge(t, poolYAML, map[string]string{"A": a.URL, "B": b.URL})
	for range 10 {
		if s := seenBy(t, e.get(t, "/api/x")); s.Path != "/base/api/x" {
			t.Fatalf("upstream saw %q, want the base path kept", s.Path)
		}
	}
	if a.hits.Load() != 5 || b.hits.Load() != 5 {
		t.Errorf("hits %d and %d, want 5 each", a.hits.Load(), b.hits.Load())
	}
	res, err := http.Get(e.admin + "/-/upstreams")
	if err != nil {
		t.Fatal(err)
	}
	var st []ups.Status
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil || len(st) != 2 {
		t.Fatalf("/-/upstreams: %v %+v", err, st)
	}
	if st[0].Route != "/api" || st[0].Upstream != a.URL || !st[0].Healthy || !st[0].Available || st[0].InFlight != 0 {
		t.Errorf("status %+v", st[0])
	}
	m := body(t, mustGet(t, e.admin+"/metrics"))
	for _, want := range []string{
		`edge_upstream_healthy{route="/api",upstream="` + strings.TrimPrefix(a.URL, "http://") + `"} 1`,
		`edge_upstream_requests_total{code="200",route="/api",upstream="` + strings.TrimPrefix(b.URL, "http://") + `"} 5`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// One upstream gone: no failed request, the other takes everything.
	a.Close()
	for range 6 {
		if res := e.get(t, "/api/x"); res.StatusCode != 200 {
			t.Fatalf("with a down: %d", res.StatusCode)
		}
	}
	m = body(t, mustGet(t, e.admin+"/metrics"))
	if !strings.Contains(m, `edge_retries_total{reason="dial",route="/api"} 1`) {
		t.Error("/metrics: want one dial retry (passive takes a out after it)")
	}
	// Both gone: 503, Retry-After, a body naming the route.
	b.Close()
	e.get(t, "/api/x") // b fails once and is taken out
	res = e.get(t, "/api/x")
	if res.StatusCode != 503 || res.Header.Get("Retry-After") != "60" ||
		body(t, res) != "503 Service Unavailable: no healthy upstream for route /api\n" {
		t.Errorf("no upstream left: %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
}

func mustGet(t *testing.T, url string) *http.Response {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func TestPoolPOSTAnswered502Once(t *testing.T) {
	var received atomic.Int64
	dying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		received.Add(1)
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close() // died after receiving it
		}
	}))
	defer dying.Close()
	other := newUpstream(t)
	e := startEdge(t, "routes:\n  - { path: /, to: [\"${A}\", \"${B}\"], lb: first }", map[string]string{"A": dying.URL, "B": other.URL})
	res := e.do(t, "POST", "/contact", strings.NewReader(`{"name":"x"}`), "Content-Type: application/json")
	if res.StatusCode != 502 || received.Load() != 1 || other.hits.Load() != 0 {
		t.Fatalf("POST: %d, received %d by the dying upstream and %d by the other; want 502, 1, 0", res.StatusCode, received.Load(), other.hits.Load())
	}
	if res := e.get(t, "/search"); res.StatusCode != 200 || other.hits.Load() != 1 {
		t.Fatalf("GET: %d, want 200 from the other upstream", res.StatusCode)
	}
}

func TestPoolReloadKeepsHealth(t *testing.T) {
	var sick atomic.Bool
	sick.Store(true)
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sick.Load() {
			w.WriteHeader(500)
		}
	}))
	defer a.Close()
	b := newUpstream(t)
	yaml := `
routes:
  - path: /
    to: ["${A}", "${B}"]
    health: { path: /health, interval: 1h, timeout: 1s, unhealthy: 1 }
`
	e := startEdge(t, yaml, map[string]string{"A": a.URL, "B": b.URL})
	status := func() []ups.Status {
		var st []ups.Status
		if err := json.NewDecoder(mustGet(t, e.admin+"/-/upstreams").Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	deadline := time.Now().Add(5 * time.Second)
	for status()[0].Healthy {
		if time.Now().After(deadline) {
			t.Fatal("a never found unhealthy by the first probe")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A reload that changes something else: a keeps its state.
	sick.Store(false)
	e.rewrite(t, yaml+"  - { path: /other, to: \"${B}\" }\n")
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	// The new pool probes at once, but one pass of the two that healthy
	// (2 by default) asks for does not bring a back.
	if st := status(); st[0].Healthy {
		t.Errorf("after reload: %+v, want a still unhealthy", st[0])
	}
	for range 4 {
		if seenBy(t, e.get(t, "/x")); b.hits.Load() == 0 {
			t.Fatal("request went to the unhealthy upstream")
		}
	}
}

// The dial errors of both transports are told apart from errors after
// sending with errors.As, not by their text.
func TestDialErrorClassified(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	tr := newTransport(Upstream{DialTimeout: time.Second, ResponseHeaderTimeout: time.Second, MaxIdleConnsPerHost: 1}, "http")
	defer closeIdle(tr)
	for _, method := range []string{"GET", "POST"} { // the fast path, then http.Transport
		req, _ := http.NewRequest(method, "http://"+addr+"/", strings.NewReader("x"))
		if method == "GET" {
			req.Body, req.ContentLength = nil, 0
		}
		_, err := tr.RoundTrip(req)
		if !ups.IsDialError(err) {
			t.Errorf("%s: %v not classified as a dial error", method, err)
		}
		var ne *net.OpError
		if !errors.As(err, &ne) {
			t.Errorf("%s: %T", method, err)
		}
	}
}

// ip_hash keys on the client IP the edge believes (client_ip_headers from a
// trusted proxy), not on the proxy's address; cookie pins a browser.
func TestPoolStickyPolicies(t *testing.T) {
	a, b := newUpstream(t), newUpstream(t)
	env := map[string]string{"A": a.URL, "B": b.URL, "SECRET": "a-secret-of-32-bytes-or-so-12345"}
	e := startEdge(t, `routes:
  - { path: /ip, to: ["${A}", "${B}"], lb: ip_hash }
  - { path: /ck, to: ["${A}", "${B}"], lb: cookie, cookie: { secret: "${SECRET}" } }
`, env)
	which := func(res *http.Response) string {
		t.Helper()
		seenBy(t, res)
		if a.hits.Load() > 0 {
			a.hits.Store(0)
			return "a"
		}
		b.hits.Store(0)
		return "b"
	}
	spread := map[string]bool{}
	for i := range 16 {
		ip := "203.0.113." + strings.Repeat("1", 1+i%3) + string(rune('0'+i%10))
		first := which(e.get(t, "/ip", "X-Forwarded-For: "+ip))
		spread[first] = true
		for range 3 {
			if got := which(e.get(t, "/ip", "X-Forwarded-For: "+ip)); got != first {
				t.Fatalf("client %s moved from %s to %s", ip, first, got)
			}
		}
	}
	if len(spread) != 2 {
		t.Errorf("16 client IPs all on %v", spread)
	}

	res := e.get(t, "/ck")
	first := which(res)
	cookie := res.Header.Get("Set-Cookie")
	if !strings.HasPrefix(cookie, "edge_upstream=") {
		t.Fatalf("Set-Cookie %q", cookie)
	}
	pair, _, _ := strings.Cut(cookie, ";")
	for range 6 {
		if got := which(e.get(t, "/ck", "Cookie: "+pair)); got != first {
			t.Fatalf("with the cookie went to %s, want %s", got, first)
		}
	}
	// Tampered: ignored, the requests spread again.
	name, val, _ := strings.Cut(pair, "=")
	forged := name + "=" + val[:len(val)-2] + "xx"
	if forged == pair {
		forged = name + "=" + val[:len(val)-2] + "yy"
	}
	got := map[string]bool{}
	for range 4 {
		got[which(e.get(t, "/ck", "Cookie: "+forged))] = true
	}
	if len(got) != 2 {
		t.Errorf("a tampered cookie pinned the requests to %v", got)
	}
}

// resolve expands a name into one upstream per address, through the real
// resolver (localhost, from /etc/hosts). An address where nothing listens
// (::1 here, when localhost has it) costs no failed request: the
// connection is refused and the request goes to the next.
func TestPoolResolvesNames(t *testing.T) {
	up := newUpstream(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(up.URL, "http://"))
	addrs, err := net.DefaultResolver.LookupHost(t.Context(), "localhost")
	if err != nil || len(addrs) == 0 {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	e := startEdge(t, "routes:\n  - { path: /, to: \"http://localhost:${PORT}\", resolve: 1s, passive: { max_fails: 1, fail_timeout: 1m } }",
		map[string]string{"PORT": port})
	for range 6 {
		seenBy(t, e.get(t, "/x"))
	}
	var st []ups.Status
	if err := json.NewDecoder(mustGet(t, e.admin+"/-/upstreams").Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range st {
		got[s.Upstream] = true
		if s.Target != "http://localhost:"+port {
			t.Errorf("target %q", s.Target)
		}
	}
	for _, a := range addrs {
		if want := "http://" + net.JoinHostPort(a, port); !got[want] {
			t.Errorf("upstreams %v lack %s", got, want)
		}
	}
}
