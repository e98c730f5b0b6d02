package edge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func reloadYAML(tag string) string {
	return `
routes:
  - { path: /ws, to: "${WS}" }
  - { path: /events, to: "${SSE}" }
  - { path: /, to: "${UP}", headers: { X-Config: "` + tag + `" } }
`
}

// Reloading in a loop under concurrent requests fails none of them, and
// each response comes from one table or the other.
func TestReloadUnderLoad(t *testing.T) {
	up := newUpstream(t)
	env := map[string]string{"UP": up.URL, "WS": up.URL, "SSE": up.URL}
	e := startEdge(t, reloadYAML("a"), env)
	const reloads = 200
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		requests atomic.Int64
		failures atomic.Int64
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				res, err := client.Get(e.url + "/x")
				if err != nil {
					failures.Add(1)
					t.Errorf("request: %v", err)
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if tag := res.Header.Get("X-Config"); res.StatusCode != 200 || tag != "a" && tag != "b" {
					failures.Add(1)
					t.Errorf("status %d, X-Config %q", res.StatusCode, tag)
				}
				requests.Add(1)
			}
		}()
	}
	for i := range reloads {
		e.rewrite(t, reloadYAML(string(rune('a'+i%2))))
		if i%2 == 0 {
			if err := e.Reload(); err != nil {
				t.Fatal(err)
			}
		} else if res, err := http.Post(e.admin+"/-/reload", "", nil); err != nil || res.StatusCode != 200 {
			t.Fatalf("POST /-/reload: %v %v", res, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 || requests.Load() == 0 {
		t.Fatalf("%d of %d requests failed", failures.Load(), requests.Load())
	}
	if v := e.metric(t, `edge_config_reloads_total{result="success"}`); v != reloads+1 {
		t.Errorf("successful reloads = %v, want %d", v, reloads+1)
	}
	t.Logf("%d requests during %d reloads", requests.Load(), reloads)
}

func TestInvalidReloadKeepsRoutes(t *testing.T) {
	up := newUpstream(t)
	env := map[string]string{"UP": up.URL, "WS": up.URL, "SSE": up.URL}
	e := startEdge(t, reloadYAML("a"), env)
	e.rewrite(t, "routes:\n  - { path: /, to: \"${UP}\", colour: red }\n")
	res, err := http.Post(e.admin+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := body(t, res)
	if res.StatusCode != 400 || !strings.Contains(b, `routes.yaml:2: routes[0]: unknown key "colour"`) {
		t.Errorf("reload answer: %d %q", res.StatusCode, b)
	}
	if err := e.Reload(); err == nil {
		t.Error("Reload accepted a bad file")
	}
	if res := e.get(t, "/x"); res.StatusCode != 200 || res.Header.Get("X-Config") != "a" {
		t.Errorf("old routes gone: %d %q", res.StatusCode, res.Header.Get("X-Config"))
	}
	if v := e.metric(t, `edge_config_reloads_total{result="failure"}`); v != 2 {
		t.Errorf("failed reloads = %v, want 2", v)
	}
	if v := e.metric(t, `edge_config_reloads_total{result="success"}`); v != 1 {
		t.Errorf("successful reloads = %v, want 1", v)
	}
}

// A websocket and an SSE stream opened before a reload keep working after it.
func TestStreamsSurviveReload(t *testing.T) {
	ws := httptest.NewServer(http.HandlerFunc(echoWebsocket))
	t.Cleanup(ws.Close)
	tick := make(chan string)
	sse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		for {
			select {
			case msg := <-tick:
				_, _ = io.WriteString(w, "data: "+msg+"\n\n")
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(sse.Close)
	up := newUpstream(t)
	e := startEdge(t, reloadYAML("a"), map[string]string{"UP": up.URL, "WS": ws.URL, "SSE": sse.URL})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+e.addr+"/ws/socket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	echo := func(msg string) {
		t.Helper()
		if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write %q: %v", msg, err)
		}
		_, got, err := conn.Read(ctx)
		if err != nil || string(got) != "echo "+msg {
			t.Fatalf("read: %q %v", got, err)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	events := bufio.NewReader(res.Body)
	event := func(msg string) {
		t.Helper()
		tick <- msg
		line, err := events.ReadString('\n')
		if err != nil || line != "data: "+msg+"\n" {
			t.Fatalf("event: %q %v", line, err)
		}
		_, _ = events.ReadString('\n')
	}

	echo("before")
	event("before")
	for _, tag := range []string{"b", "c"} {
		e.rewrite(t, reloadYAML(tag))
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	echo("after")
	event("after")
	if res := e.get(t, "/"); res.Header.Get("X-Config") != "c" {
		t.Error("the reload did not take")
	}
	if v := e.metric(t, "edge_requests_in_flight"); v < 2 {
		t.Errorf("in flight = %v, want the two streams counted", v)
	}
	_ = conn.Close(websocket.StatusNormalClosure, "")
}

func TestAdminEndpoints(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `routes: [ { path: /, to: "${UP}" } ]`, map[string]string{"UP": up.URL})
	e.get(t, "/x")
	res, err := http.Get(e.admin + "/healthz")
	if err != nil || res.StatusCode != 200 || body(t, res) != "ok\n" {
		t.Errorf("/healthz: %v %v", res, err)
	}
	res, err = http.Get(e.admin + "/-/reload")
	if err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %v %v", res, err)
	}
	res, err = http.Get(e.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m := body(t, res)
	for _, name := range []string{
		`edge_requests_total{code="200",method="GET",route="/"} 1`,
		`edge_request_duration_seconds_count{route="/"} 1`,
		`edge_config_reloads_total{result="success"} 1`,
		`edge_config_reloads_total{result="failure"} 0`,
		"edge_config_last_reload_success_timestamp_seconds ",
		"edge_requests_in_flight 0",
		`edge_auth_failures_total{route="/"} 0`,
	} {
		if !strings.Contains(m, name) {
			t.Errorf("/metrics lacks %q", name)
		}
	}
	// The public port does not serve the admin endpoints.
	if res := e.get(t, "/metrics"); res.Header.Get("X-Upstream") != "yes" {
		t.Error("/metrics on the public port was not proxied")
	}
}

func TestHeaderLimits(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `
limits: { max_header_bytes: 8KiB, read_header_timeout: 200ms }
routes: [ { path: /, to: "${UP}" } ]
`, map[string]string{"UP": up.URL})
	code, _ := rawRequest(t, e.addr, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 10<<10)+"\r\n\r\n")
	if code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized headers: %d, want 431", code)
	}
	if code, _ := rawRequest(t, e.addr, "GET / HTTP/1.1\r\nHost: x\r\nX-Ok: "+strings.Repeat("a", 4<<10)+"\r\n\r\n"); code != 200 {
		t.Errorf("headers within the limit: %d", code)
	}
	// Slow headers: the connection is closed once read_header_timeout passes.
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Error("the edge kept a connection with slow headers open")
	}
	if up.hits.Load() != 1 {
		t.Errorf("upstream hits %d, want 1", up.hits.Load())
	}
}

// Shutdown stops accepting and lets a request in flight finish.
func TestGracefulShutdown(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		_, _ = io.WriteString(w, "done")
	}))
	t.Cleanup(slow.Close)
	e := startEdge(t, `
shutdown_grace: 10s
routes: [ { path: /, to: "${UP}" } ]
`, map[string]string{"UP": slow.URL})
	type result struct {
		code int
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		res, err := http.Get(e.url + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		got <- result{res.StatusCode, string(b), err}
	}()
	<-arrived
	e.stop()
	// Wait until the listener is closed, then let the request finish.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	r := <-got
	if r.err != nil || r.code != 200 || r.body != "done" {
		t.Errorf("in-flight request: %d %q %v", r.code, r.body, r.err)
	}
	if err := <-e.done; err != nil {
		t.Error(err)
	}
	e.done <- nil
}

// Past the grace period, what is left (here a websocket) is cancelled.
func TestShutdownGraceEnds(t *testing.T) {
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_, _, _ = c.Read(r.Context())
	}))
	t.Cleanup(ws.Close)
	e := startEdge(t, `
shutdown_grace: 100ms
routes: [ { path: /, to: "${UP}" } ]
`, map[string]string{"UP": ws.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+e.addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	e.stop()
	select {
	case err := <-e.done:
		if err != nil {
			t.Error(err)
		}
		e.done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown waited past its grace period")
	}
	if _, _, err := conn.Read(ctx); err == nil {
		t.Error("the websocket is still open")
	}
}

// Upstream connection pools survive a reload: the new table's routes use
// the same Transport as the old one's, unless the upstream settings changed.
func TestTransportsKeptAcrossReload(t *testing.T) {
	up := newUpstream(t)
	env := map[string]string{"UP": up.URL, "WS": up.URL, "SSE": up.URL}
	e := startEdge(t, reloadYAML("a"), env)
	before := e.cur.Load().any[0].proxy.Transport
	e.rewrite(t, reloadYAML("b"))
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if after := e.cur.Load().any[0].proxy.Transport; after != before {
		t.Error("a reload replaced the upstream Transport")
	}
	e.rewrite(t, "upstream: { dial_timeout: 1s }\n"+reloadYAML("b"))
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if after := e.cur.Load().any[0].proxy.Transport; after == before {
		t.Error("new upstream settings kept the old Transport")
	}
}
