package edge

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Allow lists are matched on the client IP the edge derives: a trusted
// peer's X-Forwarded-For / CF-Connecting-IP is believed, anyone else's is
// not, and entries a client wrote to the left of the rightmost untrusted
// one prove nothing.
func TestAllowDeny(t *testing.T) {
	up := newUpstream(t)
	const routes = `
trusted_proxies: [%s]
allow: [192.168.1.0/24, "2001:db8:1::/48"]
routes:
  - { path: /admin,  to: "${UP}", allow: [10.0.0.0/8], deny: [10.9.0.0/16] }
  - { path: /lan,    to: "${UP}" }
  - { path: /public, to: "${UP}", allow: [] }
  - { path: /nobots, to: "${UP}", allow: [], deny: [203.0.113.0/24] }
`
	trusted := startEdge(t, strings.Replace(routes, "%s", "127.0.0.1/32", 1), map[string]string{"UP": up.URL})
	for _, tc := range []struct {
		path    string
		headers []string
		want    int
	}{
		{"/admin", nil, 403}, // the peer itself, 127.0.0.1
		{"/admin", []string{"X-Forwarded-For: 10.1.2.3"}, 200},
		{"/admin/x", []string{"CF-Connecting-IP: 10.1.2.3"}, 200},
		{"/admin", []string{"X-Forwarded-For: 10.9.2.3"}, 403},                                  // deny wins over allow
		{"/admin", []string{"X-Forwarded-For: 10.1.2.3, 203.0.113.9"}, 403},                     // the client wrote 10.1.2.3 itself
		{"/admin", []string{"X-Forwarded-For: 203.0.113.9, 10.1.2.3"}, 200},                     // as cloudflared appends
		{"/admin", []string{"X-Forwarded-For: ::ffff:10.1.2.3"}, 200},                           // mapped IPv4 is IPv4
		{"/admin", []string{"CF-Connecting-IP: 203.0.113.9", "X-Forwarded-For: 10.1.2.3"}, 403}, // CF-Connecting-IP first
		{"/lan", []string{"X-Forwarded-For: 192.168.1.77"}, 200},                                // the global allow list
		{"/lan", []string{"X-Forwarded-For: 2001:db8:1:2::5"}, 200},
		{"/lan", []string{"X-Forwarded-For: 192.168.2.77"}, 403},
		{"/lan", []string{"X-Forwarded-For: garbage"}, 403}, // the peer then, not in the list
		{"/public", []string{"X-Forwarded-For: 198.51.100.1"}, 200},
		{"/nobots", []string{"X-Forwarded-For: 198.51.100.1"}, 200},
		{"/nobots", []string{"X-Forwarded-For: 203.0.113.1"}, 403},
	} {
		res := trusted.get(t, tc.path, tc.headers...)
		b := body(t, res)
		if res.StatusCode != tc.want {
			t.Errorf("trusted peer: GET %s %v: %d, want %d: %s", tc.path, tc.headers, res.StatusCode, tc.want, b)
		}
		if tc.want == 403 && !strings.Contains(b, "403 Forbidden: your address may not use route") {
			t.Errorf("GET %s %v: body %q", tc.path, tc.headers, b)
		}
	}
	if n := up.hits.Load(); n != 8 {
		t.Errorf("upstream saw %d requests, want the 8 allowed", n)
	}
	if v := trusted.metric(t, `edge_denied_total{reason="ip",route="/admin"}`); v != 4 {
		t.Errorf(`edge_denied_total{reason="ip",route="/admin"} = %v, want 4`, v)
	}
	waitFor(t, func() bool { return strings.Contains(trusted.accessLg.String(), `"deny_reason":"ip"`) })

	// From a peer that is not a trusted proxy, every client-IP header is a lie.
	untrusted := startEdge(t, strings.Replace(routes, "%s", "192.0.2.1/32", 1), map[string]string{"UP": up.URL})
	for _, h := range []string{"X-Forwarded-For: 10.1.2.3", "CF-Connecting-IP: 10.1.2.3", "X-Real-IP: 10.1.2.3", "Forwarded: for=10.1.2.3"} {
		if res := untrusted.get(t, "/admin", h); res.StatusCode != 403 {
			t.Errorf("untrusted peer with %q: %d, want 403", h, res.StatusCode)
		}
	}
}

func TestRateLimit(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `
routes:
  - { path: /contact, to: "${UP}", rate_limit: { rate: 10/m, burst: 5 } }
  - { path: /open,    to: "${UP}" }
`, map[string]string{"UP": up.URL})
	from := func(ip string) string { return "X-Forwarded-For: " + ip }
	for i := range 5 {
		if res := e.get(t, "/contact", from("203.0.113.1")); res.StatusCode != 200 {
			t.Fatalf("request %d: %d, want 200", i+1, res.StatusCode)
		}
	}
	res := e.get(t, "/contact", from("203.0.113.1"))
	b := body(t, res)
	if res.StatusCode != 429 || !strings.Contains(b, "rate limit of route /contact") {
		t.Fatalf("6th request: %d %q, want 429", res.StatusCode, b)
	}
	// 10/m is a token every 6 s; the bucket refills in 30 s.
	ra, _ := strconv.Atoi(res.Header.Get("Retry-After"))
	if ra < 5 || ra > 6 {
		t.Errorf("Retry-After %q, want 6 (or 5 if a second went by)", res.Header.Get("Retry-After"))
	}
	for k, want := range map[string]string{"Ratelimit-Limit": "5", "Ratelimit-Remaining": "0", "Ratelimit-Policy": "5;w=30"} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if r, _ := strconv.Atoi(res.Header.Get("Ratelimit-Reset")); r < 25 || r > 30 {
		t.Errorf("RateLimit-Reset %q, want about 30", res.Header.Get("Ratelimit-Reset"))
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("429 without the security headers")
	}
	// Another client has its own bucket; an IPv6 /64 is one client.
	if res := e.get(t, "/contact", from("203.0.113.2")); res.StatusCode != 200 {
		t.Errorf("another client: %d, want 200", res.StatusCode)
	}
	for i := range 5 {
		if res := e.get(t, "/contact", from("2001:db8:0:1::"+strconv.Itoa(i+1))); res.StatusCode != 200 {
			t.Fatalf("IPv6 %d: %d", i, res.StatusCode)
		}
	}
	if res := e.get(t, "/contact", from("2001:db8:0:1:ffff::9")); res.StatusCode != 429 {
		t.Errorf("6th address of one /64: %d, want 429", res.StatusCode)
	}
	if res := e.get(t, "/contact", from("2001:db8:0:2::1")); res.StatusCode != 200 {
		t.Errorf("another /64: %d, want 200", res.StatusCode)
	}
	// Routes without a rate limit are not limited.
	for range 10 {
		if res := e.get(t, "/open", from("203.0.113.1")); res.StatusCode != 200 {
			t.Fatalf("open route: %d", res.StatusCode)
		}
	}
	if v := e.metric(t, `edge_denied_total{reason="rate_limit",route="/contact"}`); v != 2 {
		t.Errorf("edge_denied_total rate_limit = %v, want 2", v)
	}

	// A reload that leaves the route alone keeps its buckets...
	e.rewrite(t, `
routes:
  - { path: /contact, to: "${UP}", rate_limit: { rate: 10/m, burst: 5 } }
  - { path: /open2,   to: "${UP}" }
`)
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if res := e.get(t, "/contact", from("203.0.113.1")); res.StatusCode != 429 {
		t.Errorf("after a reload that kept the route: %d, want 429", res.StatusCode)
	}
	// ...one that changes its rate starts afresh.
	e.rewrite(t, `
routes:
  - { path: /contact, to: "${UP}", rate_limit: { rate: 20/m, burst: 5 } }
`)
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if res := e.get(t, "/contact", from("203.0.113.1")); res.StatusCode != 200 {
		t.Errorf("after a reload that changed the rate: %d, want 200", res.StatusCode)
	}
}

// Under concurrency exactly the burst passes: no token is handed out twice.
func TestRateLimitExactUnderConcurrency(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `
routes: [ { path: /, to: "${UP}", rate_limit: { rate: 1/h, burst: 40 } } ]
`, map[string]string{"UP": up.URL})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 16 {
		wg.Go(func() {
			for range 10 {
				req, _ := http.NewRequest("GET", e.url+"/x", nil)
				req.Header.Set("X-Forwarded-For", "198.51.100.7")
				res, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				mu.Lock()
				codes[res.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if codes[200] != 40 || codes[429] != 120 || up.hits.Load() != 40 {
		t.Errorf("codes %v, upstream hits %d: want exactly 40×200 and 120×429", codes, up.hits.Load())
	}

	// The same on the limiter alone, with many more goroutines.
	rl := newRateLimiter(RateLimit{Rate: 1, Per: time.Hour, Burst: 1000, MaxClients: 10})
	var passed sync.WaitGroup
	var ok, no int64
	var cmu sync.Mutex
	now := time.Now()
	for range 100 {
		passed.Go(func() {
			var o, n int64
			for range 50 {
				if rl.allow("198.51.100.8", now).ok {
					o++
				} else {
					n++
				}
			}
			cmu.Lock()
			ok, no = ok+o, no+n
			cmu.Unlock()
		})
	}
	passed.Wait()
	if ok != 1000 || no != 4000 {
		t.Errorf("limiter: %d passed, %d refused; want 1000 and 4000", ok, no)
	}
}

// Retry-After is honest: waiting that long finds a token, a moment less
// does not.
func TestRateLimitRetryAfterHonest(t *testing.T) {
	rl := newRateLimiter(RateLimit{Rate: 10, Per: time.Minute, Burst: 2, MaxClients: 10})
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 2 {
		if !rl.allow("192.0.2.1", t0).ok {
			t.Fatalf("request %d refused", i)
		}
	}
	v := rl.allow("192.0.2.1", t0)
	if v.ok || v.retryAfter != 6*time.Second || v.reset != 12*time.Second {
		t.Fatalf("verdict %+v, want refused, retry after 6s, full after 12s", v)
	}
	if rl.allow("192.0.2.1", t0.Add(v.retryAfter-time.Millisecond)).ok {
		t.Error("allowed before Retry-After")
	}
	if !rl.allow("192.0.2.1", t0.Add(v.retryAfter)).ok {
		t.Error("refused at Retry-After")
	}
}

// The limiter holds at most MaxClients; the least recently seen goes first.
func TestRateLimitLRU(t *testing.T) {
	rl := newRateLimiter(RateLimit{Rate: 1, Per: time.Hour, Burst: 1, MaxClients: 3})
	now := time.Now()
	for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		rl.allow(ip, now)
	}
	rl.allow("192.0.2.1", now) // refused, and now the most recent
	rl.allow("192.0.2.4", now) // evicts .2
	if n := rl.len(); n != 3 {
		t.Fatalf("holds %d clients, want 3", n)
	}
	if rl.allow("192.0.2.1", now).ok || rl.allow("192.0.2.3", now).ok || rl.allow("192.0.2.4", now).ok {
		t.Error("a client still held got a new bucket")
	}
	if !rl.allow("192.0.2.2", now).ok {
		t.Error("the evicted client should start with a full bucket")
	}
}

func TestRateKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":          "192.0.2.1",
		"::ffff:192.0.2.1":   "192.0.2.1",
		"2001:db8:1:2:3::4":  "2001:db8:1:2::",
		"2001:DB8:1:2::ffff": "2001:db8:1:2::",
		"fe80::1%eth0":       "fe80::",
		"garbage":            "invalid IP",
	} {
		if got := rateKey(in).String(); got != want {
			t.Errorf("rateKey(%q) = %s, want %s", in, got, want)
		}
	}
}

// waitFor polls cond for up to 5 s (the access log is written off the
// request path).
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met in 5s")
}

// BenchmarkRateLimitFlood sends one request from each of 1,000,000
// distinct client IPs (IPv4 and IPv6 /64s) through a route's limiter,
// bounded at the default 100,000 clients, and reports the live heap after
// 100,000, 500,000 and 1,000,000 clients: memory stays flat once the bound
// is reached. Run with -benchtime=1x.
func BenchmarkRateLimitFlood(b *testing.B) {
	const clients, bound = 1_000_000, 100_000
	heap := func() float64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapAlloc)
	}
	for b.Loop() {
		rl := newRateLimiter(RateLimit{Rate: 10, Per: time.Minute, Burst: 5, MaxClients: bound})
		now := time.Now()
		base := heap()
		var at100k, at500k float64
		for i := range clients {
			var ip string
			if i%2 == 0 {
				ip = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
			} else {
				ip = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 15: 1}).String() // one /64 each
			}
			if !rl.allow(ip, now).ok {
				b.Fatal("a new client was refused")
			}
			switch i + 1 {
			case bound:
				at100k = heap() - base
			case clients / 2:
				at500k = heap() - base
			}
		}
		at1M := heap() - base
		if n := rl.len(); n != bound {
			b.Fatalf("holds %d clients, want %d", n, bound)
		}
		b.ReportMetric(at100k, "heap-bytes@100k")
		b.ReportMetric(at500k, "heap-bytes@500k")
		b.ReportMetric(at1M, "heap-bytes@1M")
		b.ReportMetric(at1M/bound, "bytes/client")
		runtime.KeepAlive(rl)
	}
}

// BenchmarkProxyAccessRules is BenchmarkProxySmallGET/handler on a route
// with an allow list and a rate limit that never refuses: what the rules
// cost a request that passes them.
func BenchmarkProxyAccessRules(b *testing.B) {
	s := benchServer(b, `
routes:
  - { path: /, to: "${UP}", allow: [127.0.0.0/8, 10.0.0.0/8], rate_limit: { rate: 1000000000/s } }
`, map[string]string{"UP": cannedUpstream(b)})
	w := &discardWriter{h: make(http.Header)}
	req := httptest.NewRequest("GET", "/api/v1/contacts", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("User-Agent", "bench")
	hdr := req.Header.Clone()
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		r := *req
		r.Header = hdr.Clone()
		s.ServeHTTP(w, &r)
	}
}
