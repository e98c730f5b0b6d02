package edge

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// parkServer serves h on loopback through a parkingListener that parks
// after a few milliseconds.
func parkServer(t *testing.T, idle time.Duration, h http.Handler) (*parkingListener, *http.Server) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := newParkingListener(l)
	pl.after = 20 * time.Millisecond
	srv := &http.Server{Handler: h, ConnState: parkConnState, IdleTimeout: idle, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(pl) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return pl, srv
}

func okHandler(seen *sync.Map) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			seen.Store(r.RemoteAddr, true)
		}
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	})
}

func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, path string) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return readBody(t, br)
}

func readBody(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Close {
		t.Errorf("%s: response closes the connection", b)
	}
	return string(b)
}

// waitParks waits (boundedly) until n connections have been parked.
func waitParks(t *testing.T, pl *parkingListener, n uint64) {
	t.Helper()
	for i := 0; i < 500 && pl.parks.Load() < n; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := pl.parks.Load(); got < n {
		t.Fatalf("%d connections parked, want %d", got, n)
	}
}

func TestParkedConnectionServesNextRequest(t *testing.T) {
	var seen sync.Map
	pl, _ := parkServer(t, time.Minute, okHandler(&seen))
	c, err := net.Dial("tcp", pl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if got := roundTrip(t, c, br, "/one"); got != "ok /one" {
		t.Fatalf("first: %q", got)
	}
	for i := 1; i <= 3; i++ {
		waitParks(t, pl, uint64(i))
		if got := roundTrip(t, c, br, "/again"); got != "ok /again" {
			t.Fatalf("after park %d: %q", i, got)
		}
	}
	n := 0
	seen.Range(func(k, v any) bool { n++; return true })
	if n != 1 {
		t.Errorf("the handler saw %d client addresses, want 1 (the same connection)", n)
	}
}

func TestPipelinedRequestsAreNotParked(t *testing.T) {
	pl, _ := parkServer(t, time.Minute, okHandler(nil))
	c, err := net.Dial("tcp", pl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// Two requests in one write, then the start of a third that completes
	// only after the park time: net/http holds "GE" meanwhile.
	if _, err := io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGE"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for _, want := range []string{"ok /1", "ok /2"} {
		if got := readBody(t, br); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	time.Sleep(100 * time.Millisecond) // well past the park time
	if n := pl.parks.Load(); n != 0 {
		t.Fatalf("%d connections parked while net/http held part of a request", n)
	}
	if _, err := io.WriteString(c, "T /3 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := readBody(t, br); got != "ok /3" {
		t.Fatalf("got %q after a split request", got)
	}
}

func readsEOF(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("read %d, %v; want the connection closed", n, err)
	}
}

func TestParkedConnectionIdleTimeout(t *testing.T) {
	pl, _ := parkServer(t, 200*time.Millisecond, okHandler(nil))
	c, err := net.Dial("tcp", pl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, bufio.NewReader(c), "/")
	waitParks(t, pl, 1)
	readsEOF(t, c) // closed at idle_timeout, parked or not
}

func TestParkedConnectionsClosedOnShutdown(t *testing.T) {
	pl, srv := parkServer(t, time.Minute, okHandler(nil))
	c, err := net.Dial("tcp", pl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, bufio.NewReader(c), "/")
	waitParks(t, pl, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	readsEOF(t, c)
}

// TestParkedConnectionsHoldNoGoroutine parks many connections and checks
// that they cost no goroutine each (where the system has a poller), that
// each still serves its next request, in any order, and that a client
// closing a parked connection leaves nothing behind.
func TestParkedConnectionsHoldNoGoroutine(t *testing.T) {
	pl, _ := parkServer(t, time.Minute, okHandler(nil))
	const n = 200
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range conns {
		c, err := net.Dial("tcp", pl.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i], readers[i] = c, bufio.NewReader(c)
		roundTrip(t, c, readers[i], "/first")
	}
	waitParks(t, pl, n)
	if pl.poller != nil {
		if g := runtime.NumGoroutine() - before; g > n/2 {
			t.Errorf("%d more goroutines with %d connections parked: parking should hold none per connection", g, n)
		}
	}
	for i := n - 1; i >= 0; i -= 2 { // every other one, backwards
		if got := roundTrip(t, conns[i], readers[i], "/back"); got != "ok /back" {
			t.Fatalf("connection %d after the park: %q", i, got)
		}
	}
	for i := 0; i < n; i += 2 { // the others close while parked
		conns[i].Close()
	}
	waitParks(t, pl, n+n/2) // those that came back park again
	for i := 0; i < 500; i++ {
		pl.mu.Lock()
		left := len(pl.parked)
		pl.mu.Unlock()
		if left == n/2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if len(pl.parked) != n/2 {
		t.Errorf("%d connections parked, want %d: those the clients closed must leave", len(pl.parked), n/2)
	}
}

func TestReleaseMemoryStops(t *testing.T) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() { releaseMemory(done, func() uint64 { return 0 }); close(stopped) }()
	close(done)
	<-stopped
}

// BenchmarkKeepAlive serves small requests on one keep-alive connection,
// with net/http on the listener itself and through a parkingListener: the
// parking's cost on a busy connection.
func BenchmarkKeepAlive(b *testing.B) {
	for _, park := range []bool{false, true} {
		name := "plain"
		if park {
			name = "parking"
		}
		b.Run(name, func(b *testing.B) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := &http.Server{Handler: okHandler(nil), IdleTimeout: time.Minute}
			var sl net.Listener = l
			if park {
				sl, srv.ConnState = newParkingListener(l), parkConnState
			}
			go func() { _ = srv.Serve(sl) }()
			defer srv.Close()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req := []byte("GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
