package edge

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRouting(t *testing.T) {
	grafana, prom, minio, app, based, hosted := newUpstream(t), newUpstream(t), newUpstream(t), newUpstream(t), newUpstream(t), newUpstream(t)
	e := startEdge(t, `
routes:
  - { path: /grafana,    to: "${GRAFANA}" }
  - { path: /prometheus, to: "${PROM}" }
  - { path: /minio,      to: "${MINIO}", strip_prefix: true }
  - { path: /based,      to: "${BASED}/base", strip_prefix: true }
  - { path: /kept,       to: "${BASED}/base/" }
  - { path: /grafana,    to: "${HOSTED}", host: dash.test }
  - { path: /,           to: "${APP}" }
`, map[string]string{"GRAFANA": grafana.URL, "PROM": prom.URL, "MINIO": minio.URL, "APP": app.URL,
		"BASED": based.URL, "HOSTED": hosted.URL})

	for _, tc := range []struct {
		path, host string
		up         *upstream
		uri        string // the request URI the upstream saw
	}{
		{"/grafana", "", grafana, "/grafana"},
		{"/grafana/", "", grafana, "/grafana/"},
		{"/grafana/api/x?a=1&b=%2F", "", grafana, "/grafana/api/x?a=1&b=%2F"},
		{"/grafanax", "", app, "/grafanax"},
		{"/Grafana/x", "", grafana, "/Grafana/x"},
		// Prometheus with --web.external-url=.../prometheus: the prefix is kept.
		{"/prometheus/api/v1/query?query=up", "", prom, "/prometheus/api/v1/query?query=up"},
		{"/minio", "", minio, "/"},
		{"/minio/", "", minio, "/"},
		{"/minio/ws/objectManager", "", minio, "/ws/objectManager"},
		{"/MINIO/api/v1/login", "", minio, "/api/v1/login"},
		{"/based/x", "", based, "/base/x"},
		{"/based", "", based, "/base/"},
		{"/kept/x", "", based, "/base/kept/x"},
		{"/caf%C3%A9/x", "", app, "/caf%C3%A9/x"},
		{"/minio/caf%c3%a9", "", minio, "/caf%C3%A9"},
		{"/a//b/./c/../d", "", app, "/a/b/d"},
		{"/", "", app, "/"},
		{"/grafana/x", "dash.test", hosted, "/grafana/x"},
		{"/grafana/x", "DASH.test:8080", hosted, "/grafana/x"},
		{"/other", "dash.test", app, "/other"},
	} {
		req, _ := http.NewRequest("GET", e.url+tc.path, nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		before := tc.up.hits.Load()
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		s := seenBy(t, res)
		res.Body.Close()
		if tc.up.hits.Load() != before+1 {
			t.Errorf("%s (host %q) went to the wrong upstream", tc.path, tc.host)
		}
		if s.URI != tc.uri {
			t.Errorf("%s: upstream saw %q, want %q", tc.path, s.URI, tc.uri)
		}
		wantHost := tc.host
		if wantHost == "" {
			wantHost = e.addr
		}
		if s.Host != wantHost {
			t.Errorf("%s: upstream saw Host %q, want %q (preserved)", tc.path, s.Host, wantHost)
		}
	}
}

func TestNoRoute(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `routes: [ { path: /only, to: "${UP}" } ]`, map[string]string{"UP": up.URL})
	res := e.get(t, "/else")
	if b := body(t, res); res.StatusCode != 404 || !strings.Contains(b, "no route") {
		t.Errorf("got %d %q", res.StatusCode, b)
	}
	if res.Header.Get("X-Frame-Options") != "SAMEORIGIN" {
		t.Error("edge answers lack the security headers")
	}
}

func TestConnectRefused(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `routes: [ { path: /, to: "${UP}" } ]`, map[string]string{"UP": up.URL})
	code, b := rawRequest(t, e.addr, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
	if code != http.StatusMethodNotAllowed || up.hits.Load() != 0 {
		t.Errorf("CONNECT: %d %q, upstream hits %d", code, b, up.hits.Load())
	}
}

// TestTraceRefused: TRACE would have an echoing upstream reflect the
// client's cookies and the edge's own headers; TRACK is IIS's spelling.
func TestTraceRefused(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `routes: [ { path: /, to: "${UP}" } ]`, map[string]string{"UP": up.URL})
	for _, m := range []string{"TRACE", "TRACK"} {
		res, b := rawResponse(t, e.addr, m+" / HTTP/1.1\r\nHost: a\r\nCookie: session=secret\r\n\r\n")
		if res.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(b, m) || res.Header.Get("Allow") == "" || up.hits.Load() != 0 {
			t.Errorf("%s: %d %q (Allow %q), upstream hits %d; want 405 from the edge", m, res.StatusCode, b, res.Header.Get("Allow"), up.hits.Load())
		}
	}
}

func TestMaxBody(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `routes: [ { path: /, to: "${UP}", max_body: 1KiB } ]`, map[string]string{"UP": up.URL})

	// Within the limit, exactly at it: forwarded.
	res := e.do(t, "POST", "/upload", bytes.NewReader(make([]byte, 1024)))
	if s := seenBy(t, res); s.Body != 1024 {
		t.Errorf("upstream got %d bytes", s.Body)
	}
	// A declared length over the limit: refused before the upstream hears of it.
	hits := up.hits.Load()
	res = e.do(t, "POST", "/upload", bytes.NewReader(make([]byte, 1025)))
	if b := body(t, res); res.StatusCode != 413 || !strings.Contains(b, "exceeds the 1 KiB limit of route /") {
		t.Errorf("declared length: got %d %q, want 413 with the limit", res.StatusCode, b)
	}
	if up.hits.Load() != hits {
		t.Error("an over-limit body reached the upstream")
	}
	// A chunked body that grows past the limit: 413 too, not 502.
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 8; i++ {
			if _, err := pw.Write(make([]byte, 512)); err != nil {
				return
			}
		}
		pw.Close()
	}()
	res = e.do(t, "POST", "/upload", pr)
	if b := body(t, res); res.StatusCode != 413 || !strings.Contains(b, "exceeds the 1 KiB limit") {
		t.Errorf("chunked: got %d %q, want 413", res.StatusCode, b)
	}
	if v := e.metric(t, `edge_upstream_errors_total{kind="too_large",route="/"}`); v != 1 {
		t.Errorf("too_large errors = %v, want 1", v)
	}
}

func TestUpstreamErrors(t *testing.T) {
	// A port nobody listens on: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	e := startEdge(t, `
upstream: { response_header_timeout: 100ms }
routes:
  - { path: /down, to: "${CLOSED}" }
  - { path: /slow, to: "${SLOW}" }
`, map[string]string{"CLOSED": closed, "SLOW": slow.URL})

	res := e.get(t, "/down/x")
	b := body(t, res)
	if res.StatusCode != 502 || b != "502 Bad Gateway: the upstream of route /down is unreachable\n" {
		t.Errorf("refused: got %d %q", res.StatusCode, b)
	}
	if strings.Contains(b, "127.0.0.1") || strings.Contains(b, "refused") {
		t.Errorf("the 502 body shows internals: %q", b)
	}
	res = e.get(t, "/slow")
	if b := body(t, res); res.StatusCode != 504 || b != "504 Gateway Timeout: the upstream of route /slow did not answer in time\n" {
		t.Errorf("timeout: got %d %q", res.StatusCode, b)
	}
	if v := e.metric(t, `edge_upstream_errors_total{kind="refused",route="/down"}`); v != 1 {
		t.Errorf("refused errors = %v", v)
	}
	if v := e.metric(t, `edge_upstream_errors_total{kind="timeout",route="/slow"}`); v != 1 {
		t.Errorf("timeout errors = %v", v)
	}
	if v := e.metric(t, `edge_requests_total{code="502",method="GET",route="/down"}`); v != 1 {
		t.Errorf("502s counted = %v", v)
	}
}

// A client that goes away while the upstream thinks is logged as 499.
func TestClientGoneIs499(t *testing.T) {
	arrived := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	}))
	t.Cleanup(slow.Close)
	e := startEdge(t, `routes: [ { path: /, to: "${UP}" } ]`, map[string]string{"UP": slow.URL})
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
	<-arrived
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.accessLg.String(), `"status":499`) {
		if time.Now().After(deadline) {
			t.Fatalf("no 499 in the access log: %s", e.accessLg.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Server-sent events with a charset parameter are flushed as they come.
func TestSSEFlushed(t *testing.T) {
	next := make(chan struct{})
	sse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		for i := 0; i < 3; i++ {
			_, _ = io.WriteString(w, "data: tick\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(sse.Close)
	e := startEdge(t, `routes: [ { path: /, to: "${UP}" } ]`, map[string]string{"UP": sse.URL})
	res := e.get(t, "/events")
	buf := make([]byte, 64)
	for i := 0; i < 3; i++ {
		n, err := io.ReadAtLeast(res.Body, buf, len("data: tick\n\n"))
		if err != nil || string(buf[:n]) != "data: tick\n\n" {
			t.Fatalf("event %d: %q, %v", i, buf[:n], err)
		}
		next <- struct{}{} // the upstream sends the next only once this one arrived
	}
}
