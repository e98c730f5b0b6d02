package edge

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The hostile-upstream tests: raw TCP upstreams that misframe on purpose,
// behind an edge with an open /pub and a protected /admin on the SAME
// upstream. The admin's request draws a misframed response that carries,
// past its end, a second complete response holding the admin's secret. The
// next request, an unauthenticated client's on /pub, must get its own
// marker or a clean error, never the secret. One table, run against both
// transports: the fast path and http.Transport (EDGE_FAST_HTTP1=off), so
// the fast path can never do worse than Go's Transport.

// smuggled is a complete response an attacker would love to receive.
const smuggled = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nSECRET-admin"

// hostileCase is how the upstream answers the admin's request.
type hostileCase struct {
	name   string
	method string // of the admin's request; GET if empty
	// resp is written in one piece in answer to the admin's request.
	resp string
	// late, if set, is written after a pause onto the connection left idle.
	late string
	// closeAfter closes the upstream's side after resp (close-delimited bodies).
	closeAfter bool
	// split, if set, writes resp[:split] and, after a pause, the rest: the
	// body then meets a reader that asks for exactly what is left, which
	// bypasses bufio, and the surplus stays in the kernel (Buffered() == 0).
	split int
	// torn, if set, is written after resp by a write of its own (over TLS,
	// a record of its own), of which the first half goes on the wire with
	// resp and the rest only once the next request on the connection has
	// arrived: over TLS, half a record the client has read and cannot yet
	// open, invisible to bufio, the tls.Conn's reads and the socket alike.
	torn string
}

var (
	bigBody   = strings.Repeat("b", 256<<10)
	body32KiB = "HTTP/1.1 200 OK\r\nContent-Length: 32768\r\n\r\n" + strings.Repeat("k", 32<<10)
)

var hostileCases = []hostileCase{
	{name: "HEAD with a body", method: "HEAD", resp: "HTTP/1.1 200 OK\r\nContent-Length: 73\r\n\r\n" + smuggled},
	{name: "HEAD with chunked body", method: "HEAD", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + smuggled},
	{name: "204 with a body", resp: "HTTP/1.1 204 No Content\r\n\r\n" + smuggled},
	{name: "204 with Content-Length", resp: "HTTP/1.1 204 No Content\r\nContent-Length: 73\r\n\r\n" + smuggled},
	{name: "304 with a body", resp: "HTTP/1.1 304 Not Modified\r\nContent-Length: 73\r\n\r\n" + smuggled},
	{name: "304 chunked", resp: "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n" + smuggled},
	{name: "body longer than Content-Length", resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nadmin" + smuggled},
	{name: "empty Content-Length then bytes", resp: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" + smuggled},
	{name: "large body then surplus (read past bufio)", resp: "HTTP/1.1 200 OK\r\nContent-Length: " + fmt.Sprint(len(bigBody)) + "\r\n\r\n" + bigBody + smuggled},
	{name: "surplus in the kernel after a direct read", resp: body32KiB + smuggled, split: len(body32KiB) - 32<<10},
	{name: "bytes after the terminal chunk", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nadmin\r\n0\r\n\r\n" + smuggled},
	{name: "bytes after trailers", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nadmin\r\n0\r\nX-T: 1\r\n\r\n" + smuggled},
	{name: "large chunked then surplus", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n", len(bigBody)) + bigBody + "\r\n0\r\n\r\n" + smuggled},
	{name: "Content-Length and chunked", resp: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nadmin\r\n0\r\n\r\n" + smuggled},
	{name: "conflicting Content-Lengths", resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 78\r\n\r\nadmin" + smuggled},
	{name: "late response on the idle connection", resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nadmin", late: smuggled},
	{name: "late garbage on the idle connection", resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nadmin", late: "garbage\r\n\r\n"},
	{name: "two responses to one request", resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nadmin" + smuggled + smuggled},
	{name: "102 then response then surplus", resp: "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nadmin" + smuggled},
	{name: "1xx with a body", resp: "HTTP/1.1 199 Odd\r\nContent-Length: 73\r\n\r\n" + smuggled},
	{name: "100 after the final response", resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nadminHTTP/1.1 100 Continue\r\n\r\n" + smuggled},
	{name: "103 after the final response", resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nadminHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + smuggled},
	{name: "too many 1xx", resp: strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", 7) + smuggled},
	{name: "unasked 101 h2c", resp: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + smuggled},
	{name: "unasked 101 websocket", resp: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" + smuggled},
	{name: "Connection: close then surplus", resp: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nadmin" + smuggled},
	{name: "HTTP/1.0 without keep-alive", resp: "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nadmin" + smuggled},
	{name: "HTTP/1.0 keep-alive then surplus", resp: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nadmin" + smuggled},
	{name: "close-delimited body", resp: "HTTP/1.1 200 OK\r\n\r\nadmin" + smuggled, closeAfter: true},
	{name: "malformed status line", resp: "HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n" + smuggled},
	{name: "header without colon", resp: "HTTP/1.1 200 OK\r\nBroken\r\nContent-Length: 0\r\n\r\n" + smuggled},
	{name: "negative Content-Length", resp: "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n" + smuggled},
	{name: "bad chunk size", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + smuggled},
	{name: "chunk shorter than said", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n50\r\nadmin\r\n0\r\n\r\n" + smuggled},
	{name: "Transfer-Encoding: identity", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nadmin" + smuggled},
	{name: "bare LF framing", resp: "HTTP/1.1 200 OK\nContent-Length: 5\n\nadmin" + smuggled},
	{name: "response torn across the next request", resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nadmin", torn: smuggled},
}

// hostileUpstream answers /pub?m=X with its own marker "own:X" and the
// admin's request with the current case's bytes, over TCP or TLS.
type hostileUpstream struct {
	l    net.Listener
	tls  *tls.Config // nil: plain HTTP
	mu   sync.Mutex
	c    hostileCase
	late chan struct{} // a late write is done
}

func newHostileUpstream(t *testing.T) *hostileUpstream { return startHostile(t, nil) }

// newHostileUpstreamTLS serves https with the certificate of
// httptest.NewTLSServer, which the CA file testCertFile trusts.
func newHostileUpstreamTLS(t *testing.T) *hostileUpstream {
	return startHostile(t, &tls.Config{Certificates: testTLSCert(t)})
}

func startHostile(t *testing.T, tc *tls.Config) *hostileUpstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &hostileUpstream{l: l, tls: tc, late: make(chan struct{}, 16)}
	go u.serve()
	t.Cleanup(func() { l.Close() })
	return u
}

func (u *hostileUpstream) url() string {
	if u.tls != nil {
		return "https://" + u.l.Addr().String()
	}
	return "http://" + u.l.Addr().String()
}

func (u *hostileUpstream) set(c hostileCase) {
	u.mu.Lock()
	u.c = c
	u.mu.Unlock()
}

// waitLate waits until the upstream has written its late bytes onto the
// idle connection, and lets loopback deliver them.
func (u *hostileUpstream) waitLate(t *testing.T) {
	t.Helper()
	select {
	case <-u.late:
		time.Sleep(10 * time.Millisecond)
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream never wrote its late bytes")
	}
}

func (u *hostileUpstream) serve() {
	for {
		c, err := u.l.Accept()
		if err != nil {
			return
		}
		tc := &tornConn{Conn: c}
		if u.tls != nil {
			go u.conn(tls.Server(tc, u.tls), tc)
		} else {
			go u.conn(tc, tc)
		}
	}
}

func (u *hostileUpstream) conn(c net.Conn, tc *tornConn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if strings.HasPrefix(req.URL.Path, "/admin") {
			u.mu.Lock()
			hc := u.c
			u.mu.Unlock()
			resp := hc.resp
			if hc.split > 0 {
				if _, err := io.WriteString(c, resp[:hc.split]); err != nil {
					return
				}
				time.Sleep(30 * time.Millisecond)
				resp = resp[hc.split:]
			}
			if hc.torn != "" {
				tc.hold()
			}
			if _, err := io.WriteString(c, resp); err != nil {
				return
			}
			if hc.torn != "" {
				mark := tc.held()
				if _, err := io.WriteString(c, hc.torn); err != nil {
					return
				}
				if err := tc.tear(mark); err != nil {
					return
				}
			}
			if hc.closeAfter {
				return
			}
			if hc.late != "" {
				go func() {
					time.Sleep(30 * time.Millisecond)
					_, _ = io.WriteString(c, hc.late)
					u.late <- struct{}{}
				}()
			}
			continue
		}
		own := "own:" + req.URL.Query().Get("m")
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(own), own); err != nil {
			return
		}
	}
}

// tornConn is the socket of a hostile upstream's connection. While holding,
// its writes are kept; tear sends what was held up to mark and half of the
// rest in one write, and the other half at the next read that brings
// bytes, the next request: before it is answered.
type tornConn struct {
	net.Conn
	mu      sync.Mutex
	holding bool
	buf     []byte
	rest    []byte
}

func (c *tornConn) hold() {
	c.mu.Lock()
	c.holding, c.buf = true, nil
	c.mu.Unlock()
}

// held is how many bytes are held.
func (c *tornConn) held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buf)
}

func (c *tornConn) tear(mark int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cut := mark + (len(c.buf)-mark)/2
	c.holding, c.rest = false, c.buf[cut:]
	_, err := c.Conn.Write(c.buf[:cut])
	return err
}

func (c *tornConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *tornConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > 0 && c.rest != nil {
		if _, werr := c.Conn.Write(c.rest); werr != nil {
			return n, werr
		}
		c.rest = nil
	}
	return n, err
}

const hostileYAML = `
access_log: "off"
users: { admins: [ { user: admin, hash: "${HASH}" } ] }
upstream: { response_header_timeout: 2s, tls_ca: "${CA}" }
routes:
  - { path: /pub, to: "${UP}" }
  - { path: /admin, to: "${UP}", auth: admins }
`

// hostileClient is one client with its own keep-alive connection.
func hostileClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
}

// runHostile runs every case against an edge made with the environment
// as it is (fast path on or off). With strict unset (http.Transport), a
// leak is logged, not failed: Go's Transport puts a connection back in its
// pool before its read loop has looked for bytes past the response, and a
// request that takes the connection in that window reads them (golang/go
// #68653; the race detector's slower scheduling hits it); over TLS its read
// loop cannot see half a record at all, and the torn case leaks every time.
// The fast path is held to every case.
func runHostile(t *testing.T, strict bool) { runHostileWith(t, newHostileUpstream(t), strict, false) }

// runHostileWith runs the table against up with GETs or, with bodies set,
// with POSTs carrying a small form body from the admin and from the
// attacker (HEAD cases are skipped then).
func runHostileWith(t *testing.T, up *hostileUpstream, strict, bodies bool) {
	env := map[string]string{"UP": up.url(), "CA": ""}
	if up.tls != nil {
		env["CA"] = testCertFile(t)
	}
	e := startEdge(t, hostileYAML, env)
	admin, attacker := hostileClient(), hostileClient()
	defer admin.CloseIdleConnections()
	defer attacker.CloseIdleConnections()
	for i, hc := range hostileCases {
		if bodies && hc.method == http.MethodHead {
			continue
		}
		t.Run(hc.name, func(t *testing.T) {
			up.set(hc)
			for round := range 2 {
				method := hc.method
				var body io.Reader
				switch {
				case bodies:
					method, body = http.MethodPost, strings.NewReader("form=admin&x=1")
				case method == "":
					method = http.MethodGet
				}
				req, _ := http.NewRequest(method, e.url+"/admin/x", body)
				req.SetBasicAuth(testUser, testPassword)
				if res, err := admin.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				if hc.late != "" {
					up.waitLate(t)
				}
				for j := range 2 {
					m := fmt.Sprintf("c%d-r%d-%d", i, round, j)
					var res *http.Response
					var err error
					if bodies {
						res, err = attacker.Post(e.url+"/pub?m="+m, "application/x-www-form-urlencoded", strings.NewReader("form=attacker"))
					} else {
						res, err = attacker.Get(e.url + "/pub?m=" + m)
					}
					if err != nil {
						t.Fatalf("attacker request %s: %v", m, err)
					}
					b, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode == http.StatusOK && string(b) != "own:"+m || strings.Contains(string(b), "SECRET") {
						if !strict {
							t.Logf("http.Transport's pool (golang/go#68653, or a torn TLS record): the attacker received %d %q, want own:%s", res.StatusCode, b, m)
							continue
						}
						t.Fatalf("the attacker received another response: %d %q, want own:%s", res.StatusCode, b, m)
					}
					if res.StatusCode != http.StatusOK {
						// Served on a clean connection or a clean error, never
						// another's bytes; the request that met a dirty
						// connection must be served.
						t.Errorf("attacker request %s: %d %q, want its own response", m, res.StatusCode, b)
					}
				}
			}
		})
	}
}

// TestHostileUpstreamFast runs the table on the fast HTTP/1.1 path.
func TestHostileUpstreamFast(t *testing.T) {
	t.Setenv(fastHTTP1Env, "on")
	runHostile(t, true)
}

// TestHostileUpstreamFastBodies runs the table with small request bodies
// (POST forms): they take the fast path too, so they are held to every
// case (http.Transport is not: golang/go#68653).
func TestHostileUpstreamFastBodies(t *testing.T) {
	t.Setenv(fastHTTP1Env, "on")
	runHostileWith(t, newHostileUpstream(t), true, true)
}

// TestHostileUpstreamFastTLS runs the table against an https:// upstream,
// with GETs and with small bodies, on the fast path: over TLS the stray
// bytes may also wait decrypted in the tls.Conn, or as part of a record it
// has read (the torn case), where neither bufio nor the socket shows them.
func TestHostileUpstreamFastTLS(t *testing.T) {
	t.Setenv(fastHTTP1Env, "on")
	up := newHostileUpstreamTLS(t)
	t.Run("GET", func(t *testing.T) { runHostileWith(t, up, true, false) })
	t.Run("POST", func(t *testing.T) { runHostileWith(t, up, true, true) })
}

// TestHostileUpstreamTransport runs the same table on Go's http.Transport
// (EDGE_FAST_HTTP1=off), the reference the fast path must never do worse
// than (it is held to more: every case).
func TestHostileUpstreamTransport(t *testing.T) {
	t.Setenv(fastHTTP1Env, "off")
	runHostile(t, false)
}

// TestHostileUpstreamTransportTLS runs the table against an https://
// upstream on http.Transport (EDGE_FAST_HTTP1=off), the reference for
// TestHostileUpstreamFastTLS, held to what runHostile holds it to: it
// leaks in the torn case, which is why https:// upstreams take the fast
// path.
func TestHostileUpstreamTransportTLS(t *testing.T) {
	t.Setenv(fastHTTP1Env, "off")
	runHostileWith(t, newHostileUpstreamTLS(t), false, false)
}
