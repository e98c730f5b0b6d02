package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// backend is a real upstream on loopback that counts what it received.
type backend struct {
	name string
	srv  *httptest.Server
	url  *url.URL
	hits atomic.Int64
}

func newBackend(t *testing.T, name string, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{name: name}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != "edge-health-check" {
			b.hits.Add(1)
		}
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("X-Backend", name)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(b.srv.Close)
	b.url, _ = url.Parse(b.srv.URL)
	return b
}

// deadURL is a loopback address nothing listens on: connecting is refused.
func deadURL(t *testing.T) *url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return &url.URL{Scheme: "http", Host: addr}
}

// countingTransport is a real http.Transport that counts CloseIdleConnections.
type countingTransport struct {
	*http.Transport
	closes atomic.Int64
}

func (c *countingTransport) CloseIdleConnections() {
	c.closes.Add(1)
	c.Transport.CloseIdleConnections()
}

type transports struct {
	mu  sync.Mutex
	all map[string]*countingTransport
}

func (ts *transports) new(u *url.URL) Transport {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	tr := &countingTransport{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DialContext: (&net.Dialer{Timeout: time.Second}).DialContext}}
	if ts.all == nil {
		ts.all = make(map[string]*countingTransport)
	}
	ts.all[u.Host] = tr
	return tr
}

func newPool(t *testing.T, cfg Config, opts Options) *Pool {
	t.Helper()
	if cfg.Route == "" {
		cfg.Route = "/"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.NewTransport == nil {
		ts := &transports{}
		opts.NewTransport = ts.new
	}
	p, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func targets(urls ...*url.URL) []Target {
	var ts []Target
	for _, u := range urls {
		ts = append(ts, Target{URL: u})
	}
	return ts
}

// get sends one request through p and returns the backend name that
// answered, or the error.
func send(p *Pool, method string, body string, mod func(*http.Request)) (string, *http.Response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "http://edge.test/x", rd)
	req.RequestURI = ""
	if mod != nil {
		mod(req)
	}
	res, err := p.RoundTrip(req)
	if err != nil {
		return "", nil, err
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return string(b), res, nil
}

// hostRecorder answers every request in memory with the host it was sent
// to: it measures the selection alone, 10k requests in milliseconds.
type hostRecorder struct {
	mu    sync.Mutex
	hosts map[string]int
}

func (h *hostRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.hosts[r.URL.Host]++
	h.mu.Unlock()
	return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}

func (h *hostRecorder) CloseIdleConnections() {}

func TestRoundRobinWeights(t *testing.T) {
	rec := &hostRecorder{hosts: map[string]int{}}
	u := func(h string) *url.URL { return &url.URL{Scheme: "http", Host: h} }
	p := newPool(t, Config{Targets: []Target{{URL: u("a:1"), Weight: 1}, {URL: u("b:1"), Weight: 2}, {URL: u("c:1"), Weight: 3}}},
		Options{NewTransport: func(*url.URL) Transport { return rec }})
	const n = 10000
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range n / 8 {
				if _, _, err := send(p, "GET", "", nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, x := range []struct {
		host  string
		share float64
	}{{"a:1", 1.0 / 6}, {"b:1", 2.0 / 6}, {"c:1", 3.0 / 6}} {
		got := float64(rec.hosts[x.host]) / n
		if d := got/x.share - 1; d > 0.05 || d < -0.05 {
			t.Errorf("%s: share %.3f, want %.3f ±5%%", x.host, got, x.share)
		}
	}
}

// An upstream out of service gives its turns to all the others, not all
// to the one after it.
func TestRoundRobinSkipsEvenly(t *testing.T) {
	rec := &hostRecorder{hosts: map[string]int{}}
	u := func(h string) *url.URL { return &url.URL{Scheme: "http", Host: h} }
	p := newPool(t, Config{Targets: targets(u("a:1"), u("b:1"), u("c:1"), u("d:1"))},
		Options{NewTransport: func(*url.URL) Transport { return rec }})
	p.set.Load().ups[1].healthy.Store(false)
	for range 3000 {
		if _, _, err := send(p, "GET", "", nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []string{"a:1", "c:1", "d:1"} {
		if n := rec.hosts[h]; n < 950 || n > 1050 {
			t.Errorf("%s got %d of 3000 with b out, want 1000 ±5%%", h, n)
		}
	}
}

// Real upstreams get their turns too.
func TestRoundRobinReal(t *testing.T) {
	a, b := newBackend(t, "a", nil), newBackend(t, "b", nil)
	p := newPool(t, Config{Targets: targets(a.url, b.url)}, Options{})
	for range 100 {
		if _, _, err := send(p, "GET", "", nil); err != nil {
			t.Fatal(err)
		}
	}
	if a.hits.Load() != 50 || b.hits.Load() != 50 {
		t.Errorf("a %d, b %d, want 50 each", a.hits.Load(), b.hits.Load())
	}
}

func TestSmoothOrderInterleaves(t *testing.T) {
	ups := []*Upstream{{}, {}, {}}
	for i, w := range []int64{5, 1, 1} {
		ups[i].weight.Store(w)
	}
	if got := fmt.Sprint(smoothOrder(ups)); got != "[0 0 1 0 2 0 0]" {
		t.Errorf("order %s, want nginx's a a b a c a a", got)
	}
}

func TestIPHashStablePerClient(t *testing.T) {
	a, b, c := newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "c", nil)
	p := newPool(t, Config{Targets: targets(a.url, b.url, c.url), Policy: IPHash}, Options{})
	used := map[string]int{}
	for i := range 60 {
		ip := fmt.Sprintf("192.0.2.%d", i)
		first := ""
		for range 5 {
			name, _, err := send(p, "GET", "", func(r *http.Request) { *r = *r.WithContext(WithClientIP(r.Context(), ip)) })
			if err != nil {
				t.Fatal(err)
			}
			if first == "" {
				first = name
			} else if name != first {
				t.Fatalf("client %s went to %s then %s", ip, first, name)
			}
		}
		used[first]++
	}
	if len(used) != 3 {
		t.Errorf("60 clients spread over %v, want all three upstreams", used)
	}
	// RemoteAddr is the key when the edge gives none.
	if _, _, err := send(p, "GET", "", func(r *http.Request) { r.RemoteAddr = "198.51.100.7:5555" }); err != nil {
		t.Fatal(err)
	}
}

func TestLeastConnPrefersIdle(t *testing.T) {
	release := make(chan struct{})
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = io.WriteString(w, "slow")
	})
	fast := newBackend(t, "fast", nil)
	p := newPool(t, Config{Targets: targets(slow.url, fast.url), Policy: LeastConn}, Options{})
	// Two requests hang on slow (the first two picks split one each, then
	// the second of them goes to the idle one...). Start four and let them
	// settle: slow holds what it got, fast answers the rest at once.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _, _, _ = send(p, "GET", "", nil) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for slow.hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for range 100 {
		if name, _, err := send(p, "GET", "", nil); err != nil || name != "fast" {
			t.Fatalf("with slow busy, went to %q (%v), want fast", name, err)
		}
	}
	close(release)
	wg.Wait()
	if slow.hits.Load() > 2 {
		t.Errorf("slow got %d requests, want at most the 2 sent while all were idle", slow.hits.Load())
	}
}

func TestFirstUsesSpareOnlyWhenNeeded(t *testing.T) {
	a, b := newBackend(t, "a", nil), newBackend(t, "b", nil)
	p := newPool(t, Config{Targets: targets(a.url, b.url), Policy: First}, Options{})
	for range 10 {
		if name, _, _ := send(p, "GET", "", nil); name != "a" {
			t.Fatalf("went to %q, want a", name)
		}
	}
	a.srv.Close()
	if name, _, err := send(p, "GET", "", nil); name != "b" {
		t.Fatalf("a down: went to %q (%v), want b", name, err)
	}
}

func TestDialErrorRetriesAnyMethod(t *testing.T) {
	var got atomic.Value
	alive := newBackend(t, "alive", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		_, _ = io.WriteString(w, "alive")
	})
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := newPool(t, Config{Targets: targets(deadURL(t), alive.url), Policy: First}, Options{Metrics: m})
	name, _, err := send(p, "POST", `{"n":1}`, nil)
	if err != nil || name != "alive" {
		t.Fatalf("POST to a refused upstream: %q %v, want the next one", name, err)
	}
	if got.Load() != `{"n":1}` {
		t.Errorf("body at the next upstream %q, want it whole", got.Load())
	}
	if n := testutil.ToFloat64(m.retries.WithLabelValues("/", "dial")); n != 1 {
		t.Errorf("edge_retries_total{reason=dial} %v, want 1", n)
	}
}

// dyingBackend reads a request, counts it and drops the connection without
// answering: an upstream that died after receiving it.
func dyingBackend(t *testing.T) (*url.URL, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		n.Add(1)
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u, &n
}

func TestSentPOSTNeverReplayed(t *testing.T) {
	dying, received := dyingBackend(t)
	other := newBackend(t, "other", nil)
	p := newPool(t, Config{Targets: targets(dying, other.url), Policy: First}, Options{})
	if _, _, err := send(p, "POST", `{"contact":1}`, nil); err == nil {
		t.Fatal("POST whose upstream died after receiving it: no error")
	}
	if received.Load() != 1 || other.hits.Load() != 0 {
		t.Fatalf("POST received by the dying upstream %d times and by the other %d, want 1 and 0", received.Load(), other.hits.Load())
	}
	// The same failure for a GET is retried: it is idempotent.
	if name, _, err := send(p, "GET", "", nil); err != nil || name != "other" {
		t.Fatalf("GET: %q %v, want a retry on the other upstream", name, err)
	}
	// A PUT with a body is not.
	other.hits.Store(0)
	if _, _, err := send(p, "PUT", "x", nil); err == nil || other.hits.Load() != 0 {
		t.Fatalf("PUT with a body: err %v, other got %d, want no retry", err, other.hits.Load())
	}
}

func TestRetryBounds(t *testing.T) {
	var ts []Target
	for range 5 {
		ts = append(ts, Target{URL: deadURL(t)})
	}
	tries := func(p *Pool) int {
		n := 0
		for _, u := range p.set.Load().ups {
			n += len(u.fails)
		}
		return n
	}
	counting := Passive{MaxFails: 100, FailTimeout: time.Minute} // counts each try, takes none out
	p := newPool(t, Config{Targets: ts, Retry: Retry{Tries: 2}, Passive: counting}, Options{})
	if _, _, err := send(p, "GET", "", nil); !IsDialError(err) {
		t.Fatalf("err %v, want the dial error", err)
	}
	if n := tries(p); n != 2 {
		t.Errorf("%d tries, want 2", n)
	}
	// Duration: no try starts after it, however many are left.
	p2 := newPool(t, Config{Targets: ts, Retry: Retry{Tries: 5, Duration: time.Nanosecond}, Passive: counting}, Options{})
	_, _, _ = send(p2, "GET", "", nil)
	if n := tries(p2); n != 1 {
		t.Errorf("%d tries past the duration, want 1", n)
	}
}

func TestNoHealthyUpstream(t *testing.T) {
	p := newPool(t, Config{Targets: targets(deadURL(t), deadURL(t)), Passive: Passive{MaxFails: 1, FailTimeout: time.Minute}}, Options{})
	if _, _, err := send(p, "GET", "", nil); err == nil {
		t.Fatal("no error with both upstreams refusing")
	}
	_, _, err := send(p, "GET", "", nil)
	var nh *NoHealthyError
	if !errors.As(err, &nh) || nh.Route != "/" || nh.RetryAfter != time.Minute {
		t.Fatalf("err %#v, want *NoHealthyError for route / with RetryAfter 1m", err)
	}
}

func TestPassiveTakesOutAndReturns(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "a")
	})
	b := newBackend(t, "b", nil)
	p := newPool(t, Config{Targets: targets(a.url, b.url), Policy: First,
		Passive: Passive{MaxFails: 2, FailTimeout: 300 * time.Millisecond, Status5xx: true}}, Options{})
	for i := range 2 {
		if _, res, err := send(p, "GET", "", nil); err != nil || res.StatusCode != 500 {
			t.Fatalf("request %d: %v %v, want a's 500 (answers are not retried)", i, res, err)
		}
	}
	if name, _, _ := send(p, "GET", "", nil); name != "b" {
		t.Fatalf("after 2 fails went to %q, want b", name)
	}
	st := p.Status()[0]
	if st.Available || st.DownUntil == nil {
		t.Errorf("status of a %+v, want unavailable with down_until", st)
	}
	failing.Store(false)
	time.Sleep(350 * time.Millisecond)
	if name, _, _ := send(p, "GET", "", nil); name != "a" {
		t.Fatalf("after fail_timeout went to %q, want a again", name)
	}
}

func TestHealthChecks(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	hold := make(chan struct{})
	var probes atomic.Int64
	a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			if probes.Add(1) == 1 {
				<-hold
			}
			if !healthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		_, _ = io.WriteString(w, "a")
	})
	b := newBackend(t, "b", nil)
	reg := prometheus.NewRegistry()
	m, _ := NewMetrics(reg)
	healthy.Store(false)
	p := newPool(t, Config{Targets: targets(a.url, b.url), Policy: First,
		Health: Health{Path: "/health", Interval: 20 * time.Millisecond, Timeout: time.Second, Healthy: 2, Unhealthy: 2}}, Options{Metrics: m})
	// The first probe is running (held): a is healthy until it says otherwise.
	waitFor(t, "the first probe", func() bool { return probes.Load() >= 1 })
	if name, _, _ := send(p, "GET", "", nil); name != "a" {
		t.Fatalf("before the first verdict went to %q, want a", name)
	}
	close(hold)
	waitFor(t, "a unhealthy", func() bool { return !p.Status()[0].Healthy })
	if name, _, _ := send(p, "GET", "", nil); name != "b" {
		t.Fatalf("a unhealthy: went to %q, want b", name)
	}
	if g := healthyOf(t, reg, a.url.Host); g != 0 {
		t.Errorf("edge_upstream_healthy of a %v, want 0", g)
	}
	st := p.Status()[0]
	if st.LastCheck == nil || st.LastResult != "503" {
		t.Errorf("status %+v, want the last check and its 503", st)
	}
	healthy.Store(true)
	waitFor(t, "a healthy again", func() bool { return p.Status()[0].Healthy })
	if name, _, _ := send(p, "GET", "", nil); name != "a" {
		t.Fatalf("a healthy again: went to %q, want a", name)
	}
	if g := healthyOf(t, reg, a.url.Host); g != 1 {
		t.Errorf("edge_upstream_healthy of a %v, want 1", g)
	}
}

// healthyOf reads edge_upstream_healthy of upstream host from reg, or -1.
func healthyOf(t *testing.T, reg *prometheus.Registry, host string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "edge_upstream_healthy" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "upstream" && l.GetValue() == host {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCookieSticky(t *testing.T) {
	a, b, c := newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "c", nil)
	p := newPool(t, Config{Targets: targets(a.url, b.url, c.url), Policy: Cookie, Cookie: CookieConfig{Secret: "0123456789abcdef0123"}}, Options{})
	first, res, err := send(p, "GET", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	cookies := res.Cookies()
	if len(cookies) != 1 || cookies[0].Name != "edge_upstream" || !cookies[0].HttpOnly {
		t.Fatalf("Set-Cookie %v, want one HttpOnly edge_upstream", res.Header["Set-Cookie"])
	}
	ck := cookies[0]
	for range 20 {
		name, res, _ := send(p, "GET", "", func(r *http.Request) { r.AddCookie(ck) })
		if name != first {
			t.Fatalf("with the cookie went to %q, want %q", name, first)
		}
		if res.Header["Set-Cookie"] != nil {
			t.Fatalf("cookie set again: %v", res.Header["Set-Cookie"])
		}
	}
	// A tampered cookie (another upstream's id, the old mac) is ignored:
	// requests spread as without one, and each gets a fresh cookie.
	other := stickyID(p.set.Load().ups[0])
	if other == ck.Value[:16] {
		other = stickyID(p.set.Load().ups[1])
	}
	forged := &http.Cookie{Name: ck.Name, Value: other + ck.Value[16:]}
	seen := map[string]bool{}
	for range 6 {
		name, res, _ := send(p, "GET", "", func(r *http.Request) { r.AddCookie(forged) })
		seen[name] = true
		if res.Header["Set-Cookie"] == nil {
			t.Fatal("tampered cookie: no fresh cookie")
		}
	}
	if len(seen) < 2 {
		t.Errorf("tampered cookie obeyed or pinned: went to %v", seen)
	}
	// The sticky upstream gone, the browser moves.
	for _, bk := range []*backend{a, b, c} {
		if bk.name == first {
			bk.srv.Close()
		}
	}
	if name, _, err := send(p, "GET", "", func(r *http.Request) { r.AddCookie(ck) }); err != nil || name == first {
		t.Fatalf("sticky upstream down: %q %v", name, err)
	}
	if _, err := New(Config{Targets: targets(a.url), Policy: Cookie}, Options{NewTransport: (&transports{}).new}); err == nil {
		t.Error("cookie policy without a secret accepted")
	}
}

func TestReloadKeepsStateAndDrainsRemoved(t *testing.T) {
	a, b := newBackend(t, "a", nil), newBackend(t, "b", nil)
	ts := &transports{}
	cfg := Config{Targets: targets(a.url, b.url), Passive: Passive{MaxFails: 1, FailTimeout: time.Minute}}
	quiet := slog.New(slog.DiscardHandler)
	old, err := New(cfg, Options{NewTransport: ts.new, TransportKey: "k", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ua := old.set.Load().ups[0]
	until := time.Now().Add(time.Minute).UnixNano()
	ua.downUntil.Store(until) // taken out by passive health
	ua.inflight.Add(1)        // a request still running on a, as after a reload
	trB := ts.all[b.url.Host]

	// a stays, b goes.
	cfg2 := Config{Targets: targets(a.url)}
	nw, err := New(cfg2, Options{NewTransport: ts.new, TransportKey: "k", Previous: old, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	if got := nw.set.Load().ups[0]; got != ua || got.downUntil.Load() != until || nw.Status()[0].Available {
		t.Fatalf("a after reload: same %v, status %+v; want its state kept", got == ua, nw.Status()[0])
	}
	old.Close()
	if trB.closes.Load() != 1 {
		t.Errorf("removed b: CloseIdleConnections %d times, want 1 (drain)", trB.closes.Load())
	}
	if ts.all[a.url.Host].closes.Load() != 0 {
		t.Error("kept a was closed by the old pool")
	}
	// Another transport configuration: nothing is adopted.
	nw2, err := New(cfg2, Options{NewTransport: ts.new, TransportKey: "other", Previous: nw, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer nw2.Close()
	if nw2.set.Load().ups[0] == ua {
		t.Error("adopted an upstream across a transport change")
	}
}

// fakeResolver stands in for DNS, which a unit test cannot serve; the edge's
// integration tests use real names.
type fakeResolver struct {
	mu    sync.Mutex
	addrs []string
}

func (f *fakeResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.addrs == nil {
		return nil, errors.New("no such host")
	}
	return append([]string(nil), f.addrs...), nil
}

func (f *fakeResolver) set(a ...string) {
	f.mu.Lock()
	f.addrs = a
	f.mu.Unlock()
}

func TestResolveExpands(t *testing.T) {
	a := newBackend(t, "a", nil)
	_, port, _ := net.SplitHostPort(a.url.Host)
	r := &fakeResolver{}
	r.set("127.0.0.1")
	ts := &transports{}
	u := &url.URL{Scheme: "http", Host: "app.internal:" + port}
	p := newPool(t, Config{Targets: targets(u), Resolve: 20 * time.Millisecond}, Options{Resolver: r, NewTransport: ts.new})
	if name, _, err := send(p, "GET", "", nil); err != nil || name != "a" {
		t.Fatalf("via the resolved address: %q %v", name, err)
	}
	first := p.set.Load().ups[0]
	r.set("127.0.0.1", "127.0.0.2")
	waitFor(t, "two upstreams", func() bool { return len(p.Status()) == 2 })
	if p.set.Load().ups[0] != first {
		t.Error("the address that stayed lost its state")
	}
	st := p.Status()
	if st[1].Upstream != "http://127.0.0.2:"+port || st[1].Target != u.String() {
		t.Errorf("status %+v", st[1])
	}
	// A failed lookup keeps the last addresses.
	r.set()
	time.Sleep(60 * time.Millisecond)
	if len(p.Status()) != 2 {
		t.Fatalf("a failed lookup changed the set: %+v", p.Status())
	}
	r.set("127.0.0.1")
	waitFor(t, "one upstream", func() bool { return len(p.Status()) == 1 })
	waitFor(t, "127.0.0.2 drained", func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return ts.all["127.0.0.2:"+port].closes.Load() == 1
	})
}

// edge_upstream_healthy is read at each scrape: a passive exclusion that
// ended shows as 1 with no request since; two live pools of one route
// (during a reload) give each series once; a closed pool's go.
func TestHealthyGaugeAtScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, _ := NewMetrics(reg)
	dead := deadURL(t)
	ts := &transports{}
	cfg := Config{Route: "/", Targets: targets(dead), Passive: Passive{MaxFails: 1, FailTimeout: 100 * time.Millisecond}}
	quiet := slog.New(slog.DiscardHandler)
	p, err := New(cfg, Options{Metrics: m, NewTransport: ts.new, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	_, _, _ = send(p, "GET", "", nil)
	if g := healthyOf(t, reg, dead.Host); g != 0 {
		t.Fatalf("taken out: %v, want 0", g)
	}
	time.Sleep(120 * time.Millisecond)
	if g := healthyOf(t, reg, dead.Host); g != 1 {
		t.Fatalf("exclusion over, no request since: %v, want 1", g)
	}
	p2, err := New(cfg, Options{Metrics: m, NewTransport: ts.new, Previous: p, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("two live pools of a route: %v", err)
	}
	p.Close()
	p2.Close()
	if g := healthyOf(t, reg, dead.Host); g != -1 {
		t.Fatalf("closed pools still export %v", g)
	}
}
