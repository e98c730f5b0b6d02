package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"selfhost.dev/edgeapp/internal/testlog"
	"selfhost.dev/edgeapp/internal/testserver"
)

// tlsEdge is an edge with a `tls:` block, on loopback listeners whose
// ports Pebble validates against.
type tlsEdge struct {
	*testEdge
	log      *testlog.Buffer
	tlsAddr  string
	httpAddr string
}

// tlsYAML is a routes.yaml with automatic HTTPS from Pebble for domains.
func tlsYAML(domains, extra string) string {
	return `
listen: 127.0.0.1:1
h2c: true
tls:
  domains: [` + domains + `]
  email: ops@edge.test
  ca: "${CA}"
  ca_root: "${CA_ROOT}"
  storage: "${STORE}"
  listen: "${TLS_ADDR}"
  http_listen: "${HTTP_ADDR}"
` + extra + `
routes:
  - { path: /ws, to: "${WS}" }
  - { path: /small, to: "${UP}", max_body: 10B }
  - { path: /, to: "${UP}" }
`
}

// startTLSEdge serves yaml with TLS listeners on tlsAddr and httpAddr
// ("127.0.0.1:0" for new ports).
func startTLSEdge(t testing.TB, yaml string, env map[string]string, tlsAddr, httpAddr string) *tlsEdge {
	t.Helper()
	tlsLn, err := net.Listen("tcp", tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	return startTLSEdgeOpts(t, yaml, env, tlsLn.Addr().String(), httpLn.Addr().String(), Options{TLSListener: tlsLn, HTTPListener: httpLn})
}

// startTLSEdgeOpts serves yaml with TLS listeners on tlsAddr and httpAddr,
// as opts.TLSListener and opts.HTTPListener or opts.Listen give them.
func startTLSEdgeOpts(t testing.TB, yaml string, env map[string]string, tlsAddr, httpAddr string, opts Options) *tlsEdge {
	t.Helper()
	te := &tlsEdge{log: &testlog.Buffer{}, tlsAddr: tlsAddr, httpAddr: httpAddr}
	e := &testEdge{env: map[string]string{"HASH": testHash, "TLS_ADDR": te.tlsAddr, "HTTP_ADDR": te.httpAddr},
		reg: prometheus.NewRegistry(), accessLg: &testlog.Buffer{}}
	for k, v := range env {
		e.env[k] = v
	}
	e.cfgPath = filepath.Join(t.TempDir(), "routes.yaml")
	e.rewrite(t, yaml)
	load := func() (*Config, error) { return LoadFile(e.cfgPath, envLookup(e.env)) }
	cfg, err := load()
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	var w io.Writer = te.log
	if testing.Verbose() {
		w = io.MultiWriter(te.log, os.Stderr)
	}
	opts.Logger, opts.Registry, opts.Load, opts.AccessLog = slog.New(slog.NewTextHandler(w, nil)), e.reg, load, e.accessLg
	e.serve(t, cfg, opts)
	te.testEdge = e
	return te
}

// waitCert waits until the edge serves a certificate for domain.
func (te *tlsEdge) waitCert(t testing.TB, p *testserver.Pebble, domain string) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if m := te.TLSManager(); m != nil {
			if c := m.Certificate(domain); c != nil {
				return c
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no certificate for %s; edge log:\n%s\npebble log:\n%s", domain, te.log.String(), p.Log())
	return nil
}

// h2Client trusts only roots and dials the edge's TLS listener whatever
// the URL's host.
func (te *tlsEdge) h2Client(roots *x509.CertPool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				if _, tlsPort, _ := net.SplitHostPort(te.tlsAddr); port == tlsPort {
					return d.DialContext(ctx, network, te.tlsAddr)
				}
				return d.DialContext(ctx, network, te.httpAddr)
			},
		},
	}
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// The whole ACME flow against Pebble: a certificate obtained with real
// validation, served over HTTP/2 to a client that trusts only Pebble's
// root; :80 redirects; a domain the CA refuses does not stop the others;
// a reload adding a domain gets it a certificate; a restart reuses the
// stored certificates and orders nothing.
func TestAutoTLSPebble(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Pebble")
	}
	// The listeners' ports must be known before Pebble starts: they are
	// where its validation authority connects.
	tlsLn, _ := net.Listen("tcp", "127.0.0.1:0")
	httpLn, _ := net.Listen("tcp", "127.0.0.1:0")
	tlsAddr, httpAddr := tlsLn.Addr().String(), httpLn.Addr().String()
	tlsLn.Close()
	httpLn.Close()
	tp, _ := strconv.Atoi(port(tlsAddr))
	hp, _ := strconv.Atoi(port(httpAddr))
	p := testserver.StartPebble(t, testserver.PebbleConfig{TLSPort: tp, HTTPPort: hp, Blocklist: []string{"refused.edge.test"}})
	up := newUpstream(t)
	ws := httptest.NewServer(http.HandlerFunc(echoWebsocket))
	t.Cleanup(ws.Close)
	env := map[string]string{"CA": p.DirectoryURL, "CA_ROOT": p.CARootFile, "STORE": t.TempDir(), "UP": up.URL, "WS": ws.URL}

	e := startTLSEdge(t, tlsYAML("a.edge.test, refused.edge.test", ""), env, tlsAddr, httpAddr)
	first := e.waitCert(t, p, "a.edge.test")
	roots := p.IssuingRoots(t)
	client := e.h2Client(roots)
	defer client.CloseIdleConnections()
	base := "https://a.edge.test:" + port(e.tlsAddr)

	t.Run("h2", func(t *testing.T) {
		res, err := client.Get(base + "/x?y=1")
		if err != nil {
			t.Fatal(err)
		}
		s := seenBy(t, res)
		if res.ProtoMajor != 2 || s.Header.Get("X-Forwarded-Proto") != "https" || s.URI != "/x?y=1" {
			t.Errorf("proto %s, upstream saw %+v", res.Proto, s)
		}
	})
	t.Run("limits over h2", func(t *testing.T) {
		res, err := client.Post(base+"/small", "text/plain", strings.NewReader(strings.Repeat("x", 100)))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge || res.ProtoMajor != 2 {
			t.Errorf("over max_body: %s %d, want HTTP/2 413", res.Proto, res.StatusCode)
		}
		// Go's client refuses to send more than the edge advertises in
		// SETTINGS_MAX_HEADER_LIST_SIZE; raw frames do not.
		conn, err := tls.Dial("tcp", e.tlsAddr, &tls.Config{RootCAs: roots, ServerName: "a.edge.test", NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		// Many fields, each under the limit: one string longer than the
		// whole limit is a decoding error that closes the connection.
		big := [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "a.edge.test"}, {":path", "/"}}
		for i := range 20 {
			big = append(big, [2]string{"x-big-" + strconv.Itoa(i), strings.Repeat("b", 4<<10)})
		}
		if st := h2Request(t, conn, big); st != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("over max_header_bytes: %d, want 431", st)
		}
		res, err = client.Get(base + "/a/./b/../%2e/x")
		if err != nil {
			t.Fatal(err)
		}
		if s := seenBy(t, res); s.Path != "/a/x" {
			t.Errorf("path normalization over h2: upstream saw %q", s.Path)
		}
	})
	t.Run("websocket over TLS", func(t *testing.T) {
		// Browsers open websockets over HTTP/1.1: a client offering only
		// http/1.1 in ALPN.
		h1 := e.h2Client(roots)
		tr := h1.Transport.(*http.Transport)
		tr.ForceAttemptHTTP2 = false
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "wss://a.edge.test:"+port(e.tlsAddr)+"/ws", &websocket.DialOptions{HTTPClient: h1})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "echo hi" {
			t.Errorf("echo %q %v", msg, err)
		}
	})
	t.Run("h2spec", func(t *testing.T) {
		runH2Spec(t, e.tlsAddr, true, h2specKnown)
	})
	t.Run("no SNI", func(t *testing.T) {
		// Dialing an IP address, Go's client sends no SNI; the edge answers
		// with its first domain's certificate.
		c, err := tls.Dial("tcp", e.tlsAddr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		if names := c.ConnectionState().PeerCertificates[0].DNSNames; len(names) != 1 || names[0] != "a.edge.test" {
			t.Errorf("certificate without SNI for %v, want a.edge.test", names)
		}
		c.Close()
		// An unmanaged name fails the handshake: no on-demand issuance.
		if c, err := tls.Dial("tcp", e.tlsAddr, &tls.Config{InsecureSkipVerify: true, ServerName: "other.edge.test"}); err == nil {
			c.Close()
			t.Error("handshake for an unmanaged name succeeded")
		}
	})
	t.Run("http redirect", func(t *testing.T) {
		res, err := client.Get("http://a.edge.test:" + port(e.httpAddr) + "/p/q?r=1&s=%2F")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if want := base + "/p/q?r=1&s=%2F"; res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != want {
			t.Errorf("%d %q, want 308 %q", res.StatusCode, res.Header.Get("Location"), want)
		}
		res, err = client.Get("http://unknown.edge.test:" + port(e.httpAddr) + "/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("unmanaged host: %d, want 404", res.StatusCode)
		}
	})
	t.Run("refused domain", func(t *testing.T) {
		// Logged with the domain and the CA's answer; counted.
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(e.log.String(), "refused.edge.test") || e.metric(t, `edge_tls_certificate_operations_total{operation="obtain",result="failure"}`) < 1 {
			if time.Now().After(deadline) {
				t.Fatalf("no failure logged; log:\n%s", e.log.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		var line string
		for _, l := range strings.Split(e.log.String(), "\n") {
			if strings.Contains(l, "certificate obtain failed") && strings.Contains(l, "refused.edge.test") {
				line = l
			}
		}
		if !strings.Contains(line, "rejectedIdentifier") {
			t.Errorf("failure log without the CA's answer: %q", line)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		exp := e.metric(t, `edge_tls_certificate_expiry_timestamp_seconds{domain="a.edge.test"}`)
		if exp != float64(first.NotAfter.Unix()) {
			t.Errorf("expiry metric %v, want %d", exp, first.NotAfter.Unix())
		}
		if v := e.metric(t, `edge_tls_certificate_operations_total{operation="obtain",result="success"}`); v != 1 {
			t.Errorf("obtain successes = %v, want 1", v)
		}
	})
	t.Run("reload adds a domain", func(t *testing.T) {
		e.rewrite(t, tlsYAML("a.edge.test, b.edge.test", ""))
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
		e.waitCert(t, p, "b.edge.test")
		res, err := client.Get("https://b.edge.test:" + port(e.tlsAddr) + "/")
		if err != nil {
			t.Fatal(err)
		}
		if seenBy(t, res); res.ProtoMajor != 2 {
			t.Errorf("proto %s", res.Proto)
		}
		// refused.edge.test was dropped: its retries end.
		if got := e.TLSManager().Domains(); strings.Join(got, ",") != "a.edge.test,b.edge.test" {
			t.Errorf("managed %v", got)
		}
	})

	t.Run("reload removes a domain", func(t *testing.T) {
		before := p.Orders(t)
		e.rewrite(t, tlsYAML("a.edge.test", ""))
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
		// Its certificate is no longer served (no loading from storage at
		// handshake: that would be on-demand TLS by another name), nor is
		// it redirected to on :80.
		if c, err := tls.Dial("tcp", e.tlsAddr, &tls.Config{RootCAs: roots, ServerName: "b.edge.test"}); err == nil {
			c.Close()
			t.Error("handshake for a removed domain succeeded")
		}
		res, err := client.Get("http://b.edge.test:" + port(e.httpAddr) + "/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("removed domain on http_listen: %d, want 404", res.StatusCode)
		}
		if res, err := client.Get(base + "/"); err != nil {
			t.Fatal(err)
		} else {
			seenBy(t, res)
		}
		// Added back, it is served from storage: no new order.
		e.rewrite(t, tlsYAML("a.edge.test, b.edge.test", ""))
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
		e.waitCert(t, p, "b.edge.test")
		c, err := tls.Dial("tcp", e.tlsAddr, &tls.Config{RootCAs: roots, ServerName: "b.edge.test"})
		if err != nil {
			t.Fatalf("handshake for the domain added back: %v", err)
		}
		c.Close()
		if n := p.Orders(t); n != before {
			t.Errorf("pebble saw %d new orders for a domain added back", n-before)
		}
	})

	orders := p.Orders(t)
	if orders < 1 {
		t.Fatalf("pebble saw %d orders, want at least 1; log:\n%s", orders, p.Log())
	}
	e.shutdown(t)
	client.CloseIdleConnections()

	t.Run("restart reuses the stored certificates", func(t *testing.T) {
		e2 := startTLSEdge(t, tlsYAML("a.edge.test, b.edge.test", ""), env, tlsAddr, httpAddr)
		c := e2.waitCert(t, p, "a.edge.test")
		e2.waitCert(t, p, "b.edge.test")
		if c.SerialNumber.Cmp(first.SerialNumber) != 0 {
			t.Errorf("serial %v after restart, want the stored %v", c.SerialNumber, first.SerialNumber)
		}
		client := e2.h2Client(roots)
		defer client.CloseIdleConnections()
		res, err := client.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		seenBy(t, res)
		if n := p.Orders(t); n != orders {
			t.Errorf("pebble saw %d new orders after a restart", n-orders)
		}
	})
}

// A stored certificate inside its renewal window is renewed when the edge
// starts, in the background, while the old one keeps serving; the renewal
// is counted and the expiry metric follows. (certmagic renews in the last
// third of a certificate's life, or earlier as the CA's renewal info says;
// a certificate valid for 5 minutes is always due.)
func TestAutoTLSRenewal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Pebble")
	}
	tlsLn, _ := net.Listen("tcp", "127.0.0.1:0")
	httpLn, _ := net.Listen("tcp", "127.0.0.1:0")
	tlsAddr, httpAddr := tlsLn.Addr().String(), httpLn.Addr().String()
	tlsLn.Close()
	httpLn.Close()
	tp, _ := strconv.Atoi(port(tlsAddr))
	hp, _ := strconv.Atoi(port(httpAddr))
	p := testserver.StartPebble(t, testserver.PebbleConfig{TLSPort: tp, HTTPPort: hp, Validity: 300})
	up := newUpstream(t)
	env := map[string]string{"CA": p.DirectoryURL, "CA_ROOT": p.CARootFile, "STORE": t.TempDir(), "UP": up.URL, "WS": up.URL}

	e := startTLSEdge(t, tlsYAML("a.edge.test", ""), env, tlsAddr, httpAddr)
	first := e.waitCert(t, p, "a.edge.test")
	e.shutdown(t)

	e2 := startTLSEdge(t, tlsYAML("a.edge.test", ""), env, tlsAddr, httpAddr)
	deadline := time.Now().Add(60 * time.Second)
	for e2.metric(t, `edge_tls_certificate_operations_total{operation="renew",result="success"}`) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no renewal; edge log:\n%s", e2.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := e2.waitCert(t, p, "a.edge.test")
	for c.SerialNumber.Cmp(first.SerialNumber) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		c = e2.waitCert(t, p, "a.edge.test")
	}
	if c.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("the renewed certificate is not served")
	}
	if got := e2.metric(t, `edge_tls_certificate_expiry_timestamp_seconds{domain="a.edge.test"}`); got != float64(c.NotAfter.Unix()) {
		t.Errorf("expiry metric %v, want the renewed %d", got, c.NotAfter.Unix())
	}
}
