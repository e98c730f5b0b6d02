package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"weak"
)

// connCounter is an httptest upstream that counts the connections it
// accepted.
type connCounter struct {
	*httptest.Server
	conns atomic.Int64
}

func newConnCounter(t *testing.T, h http.HandlerFunc) *connCounter {
	t.Helper()
	return startConnCounter(t, h, false)
}

// newConnCounterTLS is an https:// connCounter, with the certificate
// testCertFile trusts.
func newConnCounterTLS(t *testing.T, h http.HandlerFunc) *connCounter {
	t.Helper()
	return startConnCounter(t, h, true)
}

func startConnCounter(t *testing.T, h http.HandlerFunc, withTLS bool) *connCounter {
	u := &connCounter{Server: httptest.NewUnstartedServer(h)}
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	if withTLS {
		u.StartTLS()
	} else {
		u.Start()
	}
	t.Cleanup(u.Close)
	return u
}

func testFast(maxIdle int, headerTimeout time.Duration) *fastTransport {
	up := Upstream{DialTimeout: 5 * time.Second, ResponseHeaderTimeout: headerTimeout, MaxIdleConnsPerHost: maxIdle}
	return newFastTransport(up, &net.Dialer{Timeout: up.DialTimeout}, nil)
}

func (t *fastTransport) idleCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.idle {
		n += len(s)
	}
	return n
}

// fetch does one request on rt and reads the whole body.
func fetch(t *testing.T, rt http.RoundTripper, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	res.Body.Close()
	return res, string(b)
}

var oneKiB = strings.Repeat("x", 1024)

func TestFastKeepAlive(t *testing.T) {
	up := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, oneKiB) })
	ft := testFast(8, time.Minute)
	for i := range 20 {
		if _, body := fetch(t, ft, "GET", up.URL+"/x"); body != oneKiB {
			t.Fatalf("request %d: body of %d bytes", i, len(body))
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("20 sequential requests used %d connections, want 1", n)
	}
}

// The fast path is registered in the edge's http.Transport: requests
// without a body take it, the others still work through the Transport.
func TestFastRegisteredInTransport(t *testing.T) {
	up := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %d", r.Method, n)
	})
	tr := newTransport(Upstream{DialTimeout: time.Second, ResponseHeaderTimeout: time.Minute, MaxIdleConnsPerHost: 4}, "http")
	defer closeIdle(tr)
	v, ok := fastOf.Load(weak.Make(tr))
	if !ok {
		t.Fatal("no fast path registered")
	}
	ft := v.(*fastTransport)
	if _, body := fetch(t, tr, "GET", up.URL); body != "GET 0" {
		t.Errorf("GET: %q", body)
	}
	if ft.idleCount() != 1 {
		t.Errorf("the GET left %d idle fast connections, want 1", ft.idleCount())
	}
	res, err := tr.RoundTrip(mustRequest(t, "POST", up.URL, strings.NewReader("hello")))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "POST 5" {
		t.Errorf("POST with a body: %q", b)
	}
	closeIdle(tr)
	if ft.idleCount() != 0 {
		t.Errorf("closeIdle left %d idle fast connections", ft.idleCount())
	}
}

func TestFastOff(t *testing.T) {
	t.Setenv(fastHTTP1Env, "off")
	tr := newTransport(Upstream{DialTimeout: time.Second, MaxIdleConnsPerHost: 4}, "http")
	if _, ok := fastOf.Load(weak.Make(tr)); ok {
		t.Errorf("%s=off still registered the fast path", fastHTTP1Env)
	}
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestFastSkips(t *testing.T) {
	ft := testFast(4, 0)
	for name, req := range map[string]*http.Request{
		"large body": mustRequest(t, "POST", "http://127.0.0.1:1/", strings.NewReader(strings.Repeat("x", fastBodyMax+1))),
		"chunked body": func() *http.Request {
			r := mustRequest(t, "POST", "http://127.0.0.1:1/", io.NopCloser(strings.NewReader("x")))
			r.ContentLength = -1
			return r
		}(),
		"expect": func() *http.Request {
			r := mustRequest(t, "POST", "http://127.0.0.1:1/", strings.NewReader("x"))
			r.Header.Set("Expect", "100-continue")
			return r
		}(),
		"https upgrade": func() *http.Request {
			r := mustRequest(t, "GET", "https://127.0.0.1:1/", nil)
			r.Header.Set("Upgrade", "websocket")
			return r
		}(),
		"other scheme": mustRequest(t, "GET", "ftp://127.0.0.1:1/", nil),
		"upgrade": func() *http.Request {
			r := mustRequest(t, "GET", "http://127.0.0.1:1/", nil)
			r.Header.Set("Upgrade", "websocket")
			return r
		}(),
		"close": func() *http.Request { r := mustRequest(t, "GET", "http://127.0.0.1:1/", nil); r.Close = true; return r }(),
	} {
		if _, err := ft.RoundTrip(req); err != http.ErrSkipAltProtocol {
			t.Errorf("%s: %v, want ErrSkipAltProtocol", name, err)
		}
	}
}

// An idle connection the upstream closed is never handed out: the peek
// sees the close (over TLS, its close_notify), and GET and POST alike go on
// a new connection.
func TestFastServerClosedIdle(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run(fmt.Sprint("tls=", withTLS), func(t *testing.T) {
			up := startConnCounter(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }, withTLS)
			ft := testFast(8, time.Minute)
			ft.tls = &tls.Config{RootCAs: testRoots(t)}
			fetch(t, ft, "GET", up.URL)
			up.CloseClientConnections()
			if _, body := fetch(t, ft, "GET", up.URL); body != "ok" {
				t.Errorf("GET after the upstream closed the idle connection: %q", body)
			}
			if n := up.conns.Load(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
			up.CloseClientConnections()
			waitPeekDirty(t, ft) // the FIN has crossed loopback
			if _, body := fetch(t, ft, "POST", up.URL); body != "ok" {
				t.Errorf("POST after the upstream closed the idle connection: %q", body)
			}
			if n := up.conns.Load(); n != 3 {
				t.Errorf("%d connections, want 3", n)
			}
		})
	}
}

// A POST that meets a close the peek could not see yet (the upstream
// closes as the request is written) is not sent again: it may have been
// acted on.
func TestFastServerClosedIdleRace(t *testing.T) {
	req := mustRequest(t, "POST", "http://127.0.0.1:1/", nil)
	if replayable(req) {
		t.Error("a POST without Idempotency-Key is replayable")
	}
}

func TestFastChunked(t *testing.T) {
	up := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		for i := range 5 {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
		}
	})
	ft := testFast(8, time.Minute)
	for range 3 {
		res, body := fetch(t, ft, "GET", up.URL)
		if body != "part0;part1;part2;part3;part4;" || len(res.TransferEncoding) == 0 || res.TransferEncoding[0] != "chunked" {
			t.Fatalf("chunked: %q %v", body, res.TransferEncoding)
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("chunked responses used %d connections, want 1", n)
	}
}

// rawUpstream answers every request on a connection with resp, then closes
// the connection if close is set.
func rawUpstream(t *testing.T, resp string, close bool) (url string, conns *atomic.Int64) {
	t.Helper()
	addr, conns := serveRequests(t, func(c net.Conn, _ *http.Request) bool {
		_, err := io.WriteString(c, resp)
		return err == nil && !close
	})
	return "http://" + addr, conns
}

// serveRequests is a raw HTTP/1.1 upstream on loopback: it parses each
// request of each connection with http.ReadRequest and lets answer write
// whatever bytes it likes, until answer returns false or the client goes.
// It returns the address and counts the connections accepted.
func serveRequests(t testing.TB, answer func(c net.Conn, req *http.Request) bool) (addr string, conns *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	conns = new(atomic.Int64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil || !answer(c, req) {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String(), conns
}

func TestFastCloseDelimited(t *testing.T) {
	url, conns := rawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", true)
	ft := testFast(8, time.Minute)
	for range 3 {
		if _, body := fetch(t, ft, "GET", url); body != "until close" {
			t.Fatalf("close-delimited body: %q", body)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("close-delimited responses used %d connections, want 3", n)
	}
	if ft.idleCount() != 0 {
		t.Errorf("a close-delimited connection went idle")
	}
}

func TestFastConnectionClose(t *testing.T) {
	up := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	ft := testFast(8, time.Minute)
	for range 3 {
		if _, body := fetch(t, ft, "GET", up.URL); body != "bye" {
			t.Fatalf("body %q", body)
		}
	}
	if n := up.conns.Load(); n != 3 {
		t.Errorf("Connection: close responses used %d connections, want 3", n)
	}
}

func TestFastNoBodyResponses(t *testing.T) {
	up := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "1024")
			if r.Method != "HEAD" {
				io.WriteString(w, oneKiB)
			}
		}
	})
	ft := testFast(8, time.Minute)
	for range 2 {
		res, body := fetch(t, ft, "HEAD", up.URL+"/")
		if res.StatusCode != 200 || res.ContentLength != 1024 || body != "" {
			t.Errorf("HEAD: %d, length %d, body %q", res.StatusCode, res.ContentLength, body)
		}
		for _, code := range []int{204, 304} {
			res, body := fetch(t, ft, "GET", fmt.Sprintf("%s/%d", up.URL, code))
			if res.StatusCode != code || body != "" {
				t.Errorf("%d: got %d, body %q", code, res.StatusCode, body)
			}
		}
		if _, body := fetch(t, ft, "GET", up.URL+"/"); body != oneKiB {
			t.Errorf("GET after HEAD/204/304: %d bytes", len(body))
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("HEAD, 204 and 304 used %d connections, want 1", n)
	}
}

// Bytes after a HEAD response are a body the upstream should not have
// sent: the connection is not reused.
func TestFastHeadWithBody(t *testing.T) {
	url, conns := rawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false)
	ft := testFast(8, time.Minute)
	for range 2 {
		res, err := ft.RoundTrip(mustRequest(t, "HEAD", url, nil))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.ContentLength != 5 {
			t.Errorf("HEAD: length %d", res.ContentLength)
		}
	}
	if _, body := fetch(t, ft, "GET", url); body != "hello" {
		t.Errorf("GET after HEAD with a stray body: %q", body)
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3: none reused after a HEAD with a stray body", n)
	}
}

func TestFastBodyNotRead(t *testing.T) {
	up := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, oneKiB) })
	ft := testFast(8, time.Minute)
	for range 3 {
		res, err := ft.RoundTrip(mustRequest(t, "GET", up.URL, nil))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		if _, err := io.ReadFull(res.Body, buf); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if _, err := res.Body.Read(buf); err == nil {
			t.Error("read after Close succeeded")
		}
	}
	if n := up.conns.Load(); n != 3 {
		t.Errorf("bodies closed early: %d connections, want 3 (none reused)", n)
	}
}

// waitGoroutines polls until at most n goroutines are left, for a bounded
// number of rounds.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	for range 200 {
		if runtime.NumGoroutine() <= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d goroutines, want at most %d", runtime.NumGoroutine(), n)
}

func TestFastCancelMidResponse(t *testing.T) {
	upstreamDone := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	up := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2048")
		io.WriteString(w, oneKiB)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done(): // the edge closed the connection
			close(upstreamDone)
		case <-release:
		}
	})
	ft := testFast(8, time.Minute)
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	req := mustRequest(t, "GET", up.URL, nil).WithContext(ctx)
	res, err := ft.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(res.Body, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(res.Body); err == nil {
		t.Error("reading after the cancel succeeded")
	}
	res.Body.Close()
	select {
	case <-upstreamDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream never saw the connection close")
	}
	if ft.idleCount() != 0 {
		t.Error("a cancelled connection went idle")
	}
	waitGoroutines(t, base)
}

// A context cancelled while waiting for the response header ends the wait,
// with or without a response header timeout (whose deadline must not undo
// the cancellation's).
func TestFastCancelBeforeHeader(t *testing.T) {
	for _, ht := range []time.Duration{0, time.Hour} {
		t.Run(ht.String(), func(t *testing.T) { testFastCancelBeforeHeader(t, ht, false) })
		t.Run(ht.String()+"/already", func(t *testing.T) { testFastCancelBeforeHeader(t, ht, true) })
	}
}

func testFastCancelBeforeHeader(t *testing.T, ht time.Duration, already bool) {
	release := make(chan struct{})
	defer close(release)
	up := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	ft := testFast(8, ht)
	ctx, cancel := context.WithCancel(context.Background())
	if already {
		cancel()
	}
	errc := make(chan error, 1)
	go func() {
		res, err := ft.RoundTrip(mustRequest(t, "GET", up.URL, nil).WithContext(ctx))
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	for !already && up.conns.Load() == 0 {
		runtime.Gosched()
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RoundTrip did not return after the cancel")
	}
}

func TestFastResponseHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	up := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	ft := testFast(8, 20*time.Millisecond)
	_, err := ft.RoundTrip(mustRequest(t, "GET", up.URL, nil))
	if err == nil || !isTimeout(err) {
		t.Errorf("got %v, want a timeout", err)
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("a timed-out GET was sent again: %d connections", n)
	}
}

func TestFastDialRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = testFast(8, 0).RoundTrip(mustRequest(t, "GET", "http://"+addr+"/", nil))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("got %v, want ECONNREFUSED", err)
	}
}

func TestFastEarlyHints(t *testing.T) {
	up := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "final")
	})
	ft := testFast(8, time.Minute)
	var got []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, fmt.Sprintf("%d %s", code, h.Get("Link")))
		return nil
	}}
	req := mustRequest(t, "GET", up.URL, nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	res, body := fetch(t, ft, "GET", up.URL) // without a trace: 1xx skipped
	if res.StatusCode != 200 || body != "final" {
		t.Errorf("without a trace: %d %q", res.StatusCode, body)
	}
	res, err := ft.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "final" {
		t.Errorf("with a trace: %d %q", res.StatusCode, b)
	}
	if len(got) != 1 || got[0] != "103 </style.css>; rel=preload" {
		t.Errorf("1xx seen: %q", got)
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// Through the edge, a 103 reaches the client before the 200.
func TestEdgeEarlyHints(t *testing.T) {
	up := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "final")
	})
	e := startEdge(t, `routes: [ { path: /, to: "${UP}" } ]`, map[string]string{"UP": up.URL})
	var codes []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		codes = append(codes, code)
		return nil
	}}
	req := mustRequest(t, "GET", e.url+"/", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "final" || len(codes) != 1 || codes[0] != 103 {
		t.Errorf("got %d %q after 1xx %v", res.StatusCode, b, codes)
	}
}

func TestFastTooMany1xx(t *testing.T) {
	url, _ := rawUpstream(t, strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", max1xxResponses+2)+"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false)
	if _, err := testFast(8, time.Minute).RoundTrip(mustRequest(t, "GET", url, nil)); !errors.Is(err, errTooMany1xx) {
		t.Errorf("got %v, want errTooMany1xx", err)
	}
}

func TestFastUnaskedSwitch(t *testing.T) {
	url, _ := rawUpstream(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", false)
	if _, err := testFast(8, time.Minute).RoundTrip(mustRequest(t, "GET", url, nil)); !errors.Is(err, errUnaskedSwitch) {
		t.Errorf("got %v, want errUnaskedSwitch", err)
	}
}

func TestFastHeaderTooLarge(t *testing.T) {
	url, _ := rawUpstream(t, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", maxResponseHeaderBytes+10)+"\r\n\r\n", false)
	if _, err := testFast(8, time.Minute).RoundTrip(mustRequest(t, "GET", url, nil)); !errors.Is(err, errHeaderTooLarge) {
		t.Errorf("got %v, want errHeaderTooLarge", err)
	}
}

// Many goroutines share the pool; the pool stays within its bound.
func TestFastConcurrent(t *testing.T) {
	up := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	})
	ft := testFast(4, time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				p := fmt.Sprintf("/g%d/r%d", g, i)
				res, err := ft.RoundTrip(mustRequest(t, "GET", up.URL+p, nil))
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || string(b) != p {
					errs <- fmt.Errorf("%s: got %q, %v", p, b, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := ft.idleCount(); n > 4 {
		t.Errorf("%d idle connections, bound 4", n)
	}
	ft.closeIdle()
	if n := ft.idleCount(); n != 0 {
		t.Errorf("%d idle connections after closeIdle", n)
	}
	fetch(t, ft, "GET", up.URL)
	if n := ft.idleCount(); n != 0 {
		t.Errorf("a connection went idle after closeIdle")
	}
}

// The request the upstream receives is the one Rewrite made: Host, path
// and query exactly, no default User-Agent when the client sent none.
func TestFastRequestLine(t *testing.T) {
	got := make(chan string, 1)
	url, _ := rawUpstreamFunc(t, func(raw string) { got <- raw })
	req := mustRequest(t, "GET", url+"/a%2Fb/c?q=1&r=%20", nil)
	req.Host = "public.example.com"
	req.URL.RawPath = "/a%2Fb/c"
	req.Header["User-Agent"] = []string{""}
	req.Header.Set("X-Request-Id", "abc")
	res, err := testFast(8, time.Minute).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	raw := <-got
	want := "GET /a%2Fb/c?q=1&r=%20 HTTP/1.1\r\nHost: public.example.com\r\nX-Request-Id: abc\r\n\r\n"
	if raw != want {
		t.Errorf("upstream got\n%q\nwant\n%q", raw, want)
	}
}

// rawUpstreamFunc hands the raw request head to seen and answers 204.
func rawUpstreamFunc(t *testing.T, seen func(string)) (string, net.Listener) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		seen(head.String())
		io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
	}()
	return "http://" + l.Addr().String(), l
}

// writeRequest sends what Request.Write sends, header order aside, and
// leaves anything unusual to Request.Write.
func TestWriteRequestAsRequestWrite(t *testing.T) {
	type mod func(r *http.Request)
	cases := map[string]mod{
		"plain":      func(r *http.Request) {},
		"no ua":      func(r *http.Request) { r.Header.Del("User-Agent") },
		"empty ua":   func(r *http.Request) { r.Header["User-Agent"] = []string{""} },
		"blank ua":   func(r *http.Request) { r.Header["User-Agent"] = []string{" "} },
		"nil ua":     func(r *http.Request) { r.Header["User-Agent"] = nil },
		"post":       func(r *http.Request) { r.Method = "POST" },
		"put":        func(r *http.Request) { r.Method = "PUT" },
		"patch":      func(r *http.Request) { r.Method = "PATCH" },
		"delete":     func(r *http.Request) { r.Method = "DELETE" },
		"head":       func(r *http.Request) { r.Method = "HEAD" },
		"options":    func(r *http.Request) { r.Method = "OPTIONS" },
		"no method":  func(r *http.Request) { r.Method = "" },
		"host":       func(r *http.Request) { r.Host = "public.example.com:8443" },
		"ipv6":       func(r *http.Request) { r.Host = "[::1]:8080" },
		"zone":       func(r *http.Request) { r.Host = "[fe80::1%25eth0]:80" },
		"bad host":   func(r *http.Request) { r.Host = "a b" },
		"crlf host":  func(r *http.Request) { r.Host = "a\r\nX-Evil: 1" },
		"idn host":   func(r *http.Request) { r.Host = "bücher.example" },
		"slash host": func(r *http.Request) { r.Host = "a/b" },
		"raw path":   func(r *http.Request) { r.URL.RawPath = "/a%2Fb"; r.URL.Path = "/a/b" },
		"bad raw":    func(r *http.Request) { r.URL.RawPath = "/x%zz"; r.URL.Path = "/x y" },
		"spaces":     func(r *http.Request) { r.URL.Path = "/a b/ü" },
		"force ?":    func(r *http.Request) { r.URL.ForceQuery = true; r.URL.RawQuery = "" },
		"query":      func(r *http.Request) { r.URL.RawQuery = "q=1&r=%20&s" },
		"ctl query":  func(r *http.Request) { r.URL.RawQuery = "q=\x01" },
		"utf8 query": func(r *http.Request) { r.URL.RawQuery = "q=ü" },
		"empty path": func(r *http.Request) { r.URL.Path = "" },
		"multi":      func(r *http.Request) { r.Header["X-Multi"] = []string{"a", " b ", "c\t"} },
		"empty val":  func(r *http.Request) { r.Header["X-Empty"] = []string{""} },
		"no vals":    func(r *http.Request) { r.Header["X-None"] = nil },
		"excluded": func(r *http.Request) {
			r.Header["Host"] = []string{"evil"}
			r.Header["Content-Length"] = []string{"5"}
			r.Header["Transfer-Encoding"] = []string{"chunked"}
			r.Header["Trailer"] = []string{"X"}
		},
		"crlf value": func(r *http.Request) { r.Header["X-Evil"] = []string{"a\r\nX-Injected: 1"} },
		"nul value":  func(r *http.Request) { r.Header["X-Evil"] = []string{"a\x00b"} },
		"bad name":   func(r *http.Request) { r.Header["X Evil"] = []string{"1"} },
		"utf8 value": func(r *http.Request) { r.Header["X-Name"] = []string{"Jürgen"} },
		"bad method": func(r *http.Request) { r.Method = "GE T" },
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			mk := func() *http.Request {
				r := mustRequest(t, "GET", "http://127.0.0.1:9/api/v1/contacts", nil)
				r.Header.Set("User-Agent", "wrk")
				r.Header.Set("X-Forwarded-For", "203.0.113.7")
				r.Header.Set("X-Request-Id", "abc-123")
				r.Header["Accept"] = []string{"*/*"}
				m(r)
				return r
			}
			var want, got strings.Builder
			wb, gb := bufio.NewWriter(&want), bufio.NewWriter(&got)
			werr, gerr := mk().Write(wb), writeRequest(gb, mk())
			wb.Flush()
			gb.Flush()
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("Request.Write: %v; writeRequest: %v", werr, gerr)
			}
			if werr != nil {
				return
			}
			if lines(want.String()) != lines(got.String()) {
				t.Errorf("Request.Write:\n%q\nwriteRequest:\n%q", want.String(), got.String())
			}
		})
	}
}

// lines returns the request line and the header lines sorted, for a
// comparison that ignores header order (but not the order of one header's
// values: those stay in their relative order within the sort).
func lines(head string) string {
	ls := strings.Split(head, "\r\n")
	if len(ls) < 2 {
		return head
	}
	hdr := ls[1:]
	sort.SliceStable(hdr, func(i, j int) bool {
		ki, _, _ := strings.Cut(hdr[i], ":")
		kj, _, _ := strings.Cut(hdr[j], ":")
		return ki < kj
	})
	return ls[0] + "\n" + strings.Join(hdr, "\n")
}

// An idle connection on which the upstream wrote after the end of the
// last response (here, late) is closed at reuse, and the request goes on a
// new connection, unharmed: the peek sees what bufio cannot.
func TestFastPeekRefusesDirtyIdle(t *testing.T) {
	up := newHostileUpstream(t)
	up.set(hostileCase{resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nadmin", late: smuggled})
	ft := testFast(8, time.Minute)
	if _, body := fetch(t, ft, "GET", up.url()+"/admin"); body != "admin" {
		t.Fatalf("first: %q", body)
	}
	up.waitLate(t) // the late response is in the socket, not in bufio
	ft.mu.Lock()
	idle := ft.idle[connKey{"http", strings.TrimPrefix(up.url(), "http://")}]
	ft.mu.Unlock()
	if len(idle) != 1 || idle[0].br.Buffered() != 0 {
		t.Fatalf("want one idle connection with nothing buffered, got %d", len(idle))
	}
	if _, body := fetch(t, ft, "GET", up.url()+"/pub?m=1"); body != "own:1" {
		t.Fatalf("the next request got %q", body)
	}
	if n := ft.idleCount(); n != 1 {
		t.Errorf("%d idle connections, want 1 (the dirty one closed, the new one kept)", n)
	}
}

// waitPeekDirty waits until the peek of ft's idle connection sees what the
// upstream did to it (a close, a stray byte). The peek consumes nothing.
func waitPeekDirty(t *testing.T, ft *fastTransport) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		ft.mu.Lock()
		dirty := false
		for _, s := range ft.idle {
			for _, fc := range s {
				dirty = dirty || !fc.peeker.idleClean()
			}
		}
		ft.mu.Unlock()
		if dirty {
			return
		}
	}
	t.Fatal("the idle connection never looked closed")
}
