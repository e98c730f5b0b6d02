package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"selfhost.dev/edgeapp/internal/testserver"
)

// testTLSCert is the certificate of httptest.NewTLSServer (for 127.0.0.1,
// ::1 and example.com), for upstreams the tests serve themselves.
func testTLSCert(t testing.TB) []tls.Certificate {
	srv := httptest.NewTLSServer(nil)
	defer srv.Close()
	return srv.TLS.Certificates
}

// testCertFile writes the PEM of that certificate, the CA file that trusts
// it, and returns its path.
func testCertFile(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "upstream-ca.pem")
	if err := os.WriteFile(p, testCertPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// An https:// upstream is trusted as upstream.tls_* says: its CA file, its
// name, or nothing checked; otherwise the client gets 502 and the upstream
// never sees the request. Bodies large and small, and websockets, go through;
// keep-alive connections are reused.
func TestHTTPSUpstream(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		var seen atomic.Int64
		up := newConnCounterTLS(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") == "websocket" {
				echoWebsocket(w, r)
				return
			}
			seen.Add(1)
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%s %s %d tls=%v", r.Method, r.URL.Path, n, r.TLS != nil)
		})
		ca := testCertFile(t)
		env := map[string]string{"UP": up.URL, "CA": ca, "NAMED": strings.Replace(up.URL, "127.0.0.1", "localhost", 1)}
		for _, c := range []struct {
			name, upstream, to string
			want               int
		}{
			{"trusted CA", `tls_ca: "${CA}"`, "${UP}", 200},
			{"system roots only", ``, "${UP}", 502},
			{"insecure", `tls_insecure_skip_verify: true`, "${UP}", 200},
			{"server name in the certificate", `tls_ca: "${CA}", tls_server_name: example.com`, "${UP}", 200},
			{"server name not in the certificate", `tls_ca: "${CA}", tls_server_name: other.example`, "${UP}", 502},
			{"URL host not in the certificate", `tls_ca: "${CA}"`, "${NAMED}", 502},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := seen.Load()
				e := startEdge(t, "access_log: \"off\"\nupstream: { "+c.upstream+" }\nroutes: [ { path: /, to: \""+c.to+"\" } ]\n", env)
				res, err := http.Get(e.url + "/x")
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != c.want {
					t.Fatalf("%d %q, want %d", res.StatusCode, b, c.want)
				}
				if c.want == 200 && string(b) != "GET /x 0 tls=true" {
					t.Errorf("body %q", b)
				}
				if c.want != 200 && seen.Load() != before {
					t.Errorf("an untrusted upstream saw the request")
				}
			})
		}

		e := startEdge(t, "access_log: \"off\"\nupstream: { tls_ca: \"${CA}\" }\nroutes: [ { path: /, to: \"${UP}\" } ]\n", env)
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		defer c.CloseIdleConnections()
		up.conns.Store(0)
		for i := range 20 {
			res, err := c.Get(e.url + "/k")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("request %d: %d %q", i, res.StatusCode, b)
			}
		}
		if os.Getenv(fastHTTP1Env) == "on" {
			if n := up.conns.Load(); n != 1 {
				t.Errorf("20 requests in a row took %d TLS connections, want 1", n)
			}
		}
		for _, size := range []int{10, 200 << 10} {
			res, err := c.Post(e.url+"/up", "application/octet-stream", bytes.NewReader(make([]byte, size)))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if want := fmt.Sprintf("POST /up %d tls=true", size); string(b) != want {
				t.Errorf("upload of %d bytes: %d %q, want %q", size, res.StatusCode, b, want)
			}
		}
		// A pool of https:// upstreams, health-checked through the same
		// transport: a healthy pool serves from both.
		var checks atomic.Int64 // health checks that reached up2 over TLS
		up2 := newConnCounterTLS(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" && r.TLS != nil {
				checks.Add(1)
			}
			fmt.Fprint(w, "two")
		})
		env["UP2"] = up2.URL
		// A long interval: a slow check on a loaded machine cannot take an
		// upstream out during the test; that the checks arrive is the point.
		pe := startEdge(t, "access_log: \"off\"\nupstream: { tls_ca: \"${CA}\" }\nroutes:\n  - { path: /, to: [\"${UP}\", \"${UP2}\"], health: { path: /health, interval: 5s, timeout: 4s } }\n", env)
		for deadline := time.Now().Add(5 * time.Second); checks.Load() == 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("no health check reached the https upstream")
			}
		}
		got := map[string]int{}
		for range 10 {
			res, err := c.Get(pe.url + "/p")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			got[fmt.Sprint(res.StatusCode, " ", string(b))]++
		}
		if got["200 GET /p 0 tls=true"] != 5 || got["200 two"] != 5 {
			t.Errorf("pool of two https upstreams answered %v, want 5 and 5", got)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws://"+e.addr+"/ws", nil)
		if err != nil {
			t.Fatalf("websocket: %v", err)
		}
		defer ws.CloseNow()
		if err := ws.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, b, err := ws.Read(ctx); err != nil || string(b) != "echo hi" {
			t.Errorf("websocket echo: %q %v", b, err)
		}
	})
}

// Turning certificate checks off is said in the log at every load.
func TestInsecureUpstreamWarned(t *testing.T) {
	cfg, err := Load(strings.NewReader("upstream: { tls_insecure_skip_verify: true }\nroutes: [ { path: /, to: \"https://127.0.0.1:1\" } ]\n"), envLookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Registry: prometheus.NewRegistry(), AccessLog: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer s.alog.Close()
	if !strings.Contains(logs.String(), "level=WARN msg=\"upstream.tls_insecure_skip_verify is on") {
		t.Errorf("no warning in the log:\n%s", logs.String())
	}
}

// A hostile upstream that sends half a TLS record after its response (the
// rest comes with the answer to the next request) gets the connection
// closed before reuse: the bytes were read from the socket, so only the
// record framing shows them. Without it, the next client would read the
// admin's response (TestHostileUpstreamFastTLS holds the edge to it; this
// one holds the check itself).
func TestTLSIdleCleanTornRecord(t *testing.T) {
	up := newHostileUpstreamTLS(t)
	up.set(hostileCase{resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nadmin", torn: smuggled})
	ft := testFast(8, time.Minute)
	ft.tls = &tls.Config{RootCAs: testRoots(t), NextProtos: []string{"http/1.1"}}
	if _, body := fetch(t, ft, "GET", up.url()+"/admin"); body != "admin" {
		t.Fatalf("first: %q", body)
	}
	ft.mu.Lock()
	var fc *fastConn
	for _, s := range ft.idle {
		fc = s[0]
	}
	ft.mu.Unlock()
	if fc == nil || fc.br.Buffered() != 0 || !fc.peeker.idleClean() {
		t.Fatal("want an idle connection with nothing buffered and nothing in the socket")
	}
	if fc.rr.atBoundary() {
		t.Fatal("the half record is not where this test needs it: read by the tls.Conn")
	}
	if fc.idleClean() {
		t.Fatal("a connection holding half a record is called clean")
	}
	if _, body := fetch(t, ft, "GET", up.url()+"/pub?m=1"); body != "own:1" {
		t.Fatalf("the next request got %q", body)
	}
}

func testRoots(t testing.TB) *x509.CertPool {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(testCertPEM(t)) {
		t.Fatal("no certificate")
	}
	return p
}

// The record framing is followed whatever the reads' sizes.
func TestRecordReaderFraming(t *testing.T) {
	var stream []byte
	var ends []int // offsets where a record ends
	for i := range 50 {
		n := rand.IntN(300)
		if i%7 == 0 {
			n = 0
		}
		hdr := []byte{23, 3, 3, 0, 0}
		binary.BigEndian.PutUint16(hdr[3:], uint16(n))
		stream = append(stream, hdr...)
		stream = append(stream, make([]byte, n)...)
		ends = append(ends, len(stream))
	}
	isEnd := map[int]bool{0: true}
	for _, e := range ends {
		isEnd[e] = true
	}
	for range 20 {
		var r recordReader
		for off := 0; off < len(stream); {
			k := min(1+rand.IntN(40), len(stream)-off)
			r.follow(stream[off : off+k])
			off += k
			if r.atBoundary() != isEnd[off] {
				t.Fatalf("at %d: atBoundary %v, want %v", off, r.atBoundary(), isEnd[off])
			}
		}
	}
}

// tlsPair returns the two ends of a TLS connection on loopback: the client
// over a recordReader, the server over a tornConn.
func tlsPair(t *testing.T) (*tls.Conn, *recordReader, *tls.Conn, *tornConn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := &tornConn{Conn: <-accepted}
	srv := tls.Server(sc, &tls.Config{Certificates: testTLSCert(t)})
	go func() { _ = srv.Handshake() }()
	tc, rr, err := dialTLS(t.Context(), &tls.Config{RootCAs: testRoots(t)}, raw, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close(); srv.Close() })
	return tc, rr, srv, sc
}

// tlsIdleClean sees what an idle TLS connection holds, and its probe
// leaves a clean connection as usable as before.
func TestTLSIdleClean(t *testing.T) {
	probe := make([]byte, 1)
	read := func(t *testing.T, c *tls.Conn, n int) string {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, n)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Time{})
		return string(b)
	}
	t.Run("nothing held", func(t *testing.T) {
		tc, rr, srv, _ := tlsPair(t)
		for i := range 3 {
			if _, err := io.WriteString(srv, "ping"); err != nil {
				t.Fatal(err)
			}
			if got := read(t, tc, 4); got != "ping" {
				t.Fatalf("round %d: %q", i, got)
			}
			time.Sleep(5 * time.Millisecond)
			if !tlsIdleClean(tc, rr, probe) {
				t.Fatalf("round %d: a clean connection is called dirty", i)
			}
			if _, err := io.WriteString(tc, "pong"); err != nil {
				t.Fatalf("round %d: write after the probe: %v", i, err)
			}
			if got := read(t, srv, 4); got != "pong" {
				t.Fatalf("round %d: %q", i, got)
			}
		}
	})
	t.Run("decrypted bytes left", func(t *testing.T) {
		tc, rr, srv, _ := tlsPair(t)
		if _, err := io.WriteString(srv, "answer+stray"); err != nil { // one record
			t.Fatal(err)
		}
		if got := read(t, tc, 6); got != "answer" {
			t.Fatal(got)
		}
		if tlsIdleClean(tc, rr, probe) {
			t.Error("bytes decrypted and unread are called clean")
		}
	})
	t.Run("a whole record left", func(t *testing.T) {
		tc, rr, srv, sc := tlsPair(t)
		sc.hold()
		_, _ = io.WriteString(srv, "answer")
		_, _ = io.WriteString(srv, "stray") // a record of its own, sent with the first
		if err := sc.tear(sc.held()); err != nil {
			t.Fatal(err)
		}
		if got := read(t, tc, 6); got != "answer" {
			t.Fatal(got)
		}
		if tlsIdleClean(tc, rr, probe) {
			t.Error("a whole record read from the socket and not opened is called clean")
		}
	})
}

// A real TLS stack as the upstream: nginx (OpenSSL, TLS 1.3 session
// tickets after the handshake, close_notify on its keep-alive close).
// Requests of every kind go through on both paths, and on the fast path
// one connection carries them all.
func TestHTTPSUpstreamNginx(t *testing.T) {
	cert := testTLSCert(t)[0]
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	ng := testserver.StartNginx(t, "ssl", `
		ssl_certificate {{dir}}/cert.pem;
		ssl_certificate_key {{dir}}/key.pem;
		ssl_protocols TLSv1.2 TLSv1.3;
		client_body_buffer_size 1m;
		location / {
			add_header X-Conn $connection always;
			return 200 "ok $request_method $uri $content_length\n";
		}`, map[string]string{
		"cert.pem": string(testCertPEM(t)),
		"key.pem":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})),
	})
	ca := testCertFile(t)
	bothPaths(t, func(t *testing.T) {
		e := startEdge(t, "access_log: \"off\"\nupstream: { tls_ca: \"${CA}\" }\nroutes: [ { path: /, to: \"${UP}\" } ]\n",
			map[string]string{"UP": "https://" + ng.Addr, "CA": ca})
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		defer c.CloseIdleConnections()
		conns := map[string]bool{}
		do := func(method, path string, body []byte, want string) {
			t.Helper()
			req, _ := http.NewRequest(method, e.url+path, bytes.NewReader(body))
			if body == nil {
				req.Body = nil
			}
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || string(b) != want {
				t.Fatalf("%s %s: %d %q, want %q", method, path, res.StatusCode, b, want)
			}
			conns[res.Header.Get("X-Conn")] = true
		}
		for i := range 20 {
			do("GET", fmt.Sprint("/n", i), nil, fmt.Sprintf("ok GET /n%d \n", i))
			if i%5 == 0 {
				time.Sleep(50 * time.Millisecond) // idle a moment: whatever nginx sends late is seen
			}
		}
		do("HEAD", "/h", nil, "")
		do("POST", "/form", []byte("a=1"), "ok POST /form 3\n")
		do("GET", "/after", nil, "ok GET /after \n")
		if os.Getenv(fastHTTP1Env) == "on" && len(conns) != 1 {
			t.Errorf("the fast path used %d connections to nginx for 23 requests, want 1", len(conns))
		}
		do("POST", "/up", make([]byte, 200<<10), fmt.Sprintf("ok POST /up %d\n", 200<<10))
	})
}
