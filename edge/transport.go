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
	"net/http/httptrace"
	"net/textproto"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// The fast HTTP/1.1 path. The edge's hot path is a small request without a
// body to an upstream on loopback. http.Transport serves it with
// two goroutines per connection (readLoop, writeLoop) and several channel
// handoffs per request; profiles of the edge put a third of its CPU there.
// fastTransport does the same exchange on the calling goroutine: write the
// request, read the response, hand the connection back to a LIFO idle pool
// once the body is consumed. It speaks HTTP/1.1 over TCP or TLS
// (transport_tls.go). Everything else (large, chunked or Expect request
// bodies, upgrades) stays with the tuned http.Transport it is registered
// in, which uses each connection once.
//
// A pooled connection must never carry bytes of one response into the next
// request: that request may be another client's, on another route of the
// same upstream. So a connection goes back to the pool only when its
// response was framed exactly (Content-Length read to the byte, chunked to
// the terminal chunk and trailers, bodiless HEAD/204/304, nothing left in
// its buffer; close-delimited, Connection: close, HTTP/1.0 without
// keep-alive, unasked 101, early close and errors close it), and it is
// handed out again only if a peek of its socket finds nothing pending
// (transport_peek.go): bytes a large read left in the kernel, or a late
// answer written while it was idle, close it and the request goes on
// another connection.

// fastHTTP1Env names the environment variable that turns the fast path off
// ("off", "0" or "false"), for side-by-side measurements and as an escape
// hatch; it is read when a Transport is made (at start and on reload).
const fastHTTP1Env = "EDGE_FAST_HTTP1"

// maxResponseHeaderBytes bounds an upstream's response header, as
// http.Transport's default MaxResponseHeaderBytes does.
const maxResponseHeaderBytes = 10 << 20

// max1xxResponses bounds the informational responses read before the real
// one, as http.Transport does (5).
const max1xxResponses = 5

// idleConnTimeout is how long an idle upstream connection is kept, as the
// http.Transport's IdleConnTimeout.
const idleConnTimeout = 90 * time.Second

var (
	errHeaderTooLarge = errors.New("response header too large")
	errTooMany1xx     = errors.New("too many 1xx responses")
	errUnaskedSwitch  = errors.New("upstream switched protocols unasked")
	errBodyClosed     = errors.New("read on closed response body")
	// aLongTimeAgo is a deadline in the past: it wakes blocked I/O now.
	aLongTimeAgo = time.Unix(1, 0)
)

// fastOf maps an http.Transport to the fast path registered in it, so that
// closeIdle reaches both pools. Keys are weak: a Transport dropped without
// closeIdle takes its entry (and the idle connections) with it.
var fastOf sync.Map // weak.Pointer[http.Transport] -> *fastTransport

// withFastHTTP1 registers the fast path for "http" and "https" URLs in tr
// (https with tr's TLSClientConfig, or the system's roots if nil), unless
// EDGE_FAST_HTTP1 turns it off. tr keeps serving what the fast path skips.
//
// For an upstream's Transport (scheme "http" or "https"; "" for a Transport
// shared by several, as forward auth's, which keeps its pool), tr then
// never reuses a connection: what it gets (bodies past fastBodyMax, chunked
// or with Expect, upgrades) are the requests after which the edge cannot
// prove the connection clean. Its pool hands a connection back before its
// read loop looks for bytes past the response (golang/go#68653), and an
// upstream that refused a body without reading it would take that body, an
// attacker's, as the head of the next client's request. A connection per
// such request costs a loopback connect (over TLS, a resumed handshake)
// against a body of 64 KiB or more, or a websocket's lifetime.
func withFastHTTP1(tr *http.Transport, up Upstream, d *net.Dialer, scheme string) *http.Transport {
	switch os.Getenv(fastHTTP1Env) {
	case "off", "0", "false":
		return tr
	}
	if scheme == "http" || scheme == "https" {
		// Not DisableKeepAlives: its Connection: close makes Go's server
		// skip reading up to 256 KiB of a refused body before it answers,
		// and its reset then often beats the answer (refusal_test.go).
		// The upstream sees a keep-alive request; the edge closes after it.
		tr.MaxIdleConnsPerHost = -1
	}
	f := newFastTransport(up, d, tr.TLSClientConfig)
	tr.RegisterProtocol("http", f)
	tr.RegisterProtocol("https", f)
	k := weak.Make(tr)
	fastOf.Store(k, f)
	runtime.AddCleanup(tr, func(k weak.Pointer[http.Transport]) {
		if v, ok := fastOf.LoadAndDelete(k); ok {
			v.(*fastTransport).closeIdle()
		}
	}, k)
	return tr
}

// closeIdle closes the idle connections of tr and of its fast path; both
// close the connections that become idle afterwards.
func closeIdle(tr *http.Transport) {
	tr.CloseIdleConnections()
	if v, ok := fastOf.Load(weak.Make(tr)); ok {
		v.(*fastTransport).closeIdle()
	}
}

// fastTransport is an http.RoundTripper for HTTP/1.1 requests without a
// body or with a small one; it answers http.ErrSkipAltProtocol to the
// others, which sends them to the http.Transport it is registered in.
type fastTransport struct {
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	tls           *tls.Config   // of https:// upstreams
	headerTimeout time.Duration // 0: none
	maxIdle       int

	mu      sync.Mutex
	idle    map[connKey][]*fastConn // most recently used last
	closing bool                    // closeIdle was called: close what becomes idle
}

// connKey is what idle connections are kept by.
type connKey struct{ scheme, host string }

// newFastTransport returns the fast path for up. tc configures https://
// upstreams; if nil, the system's roots are trusted.
func newFastTransport(up Upstream, d *net.Dialer, tc *tls.Config) *fastTransport {
	if tc == nil {
		tc = &tls.Config{NextProtos: []string{"http/1.1"}}
	}
	return &fastTransport{
		dial:          d.DialContext,
		tls:           tc,
		headerTimeout: up.ResponseHeaderTimeout,
		maxIdle:       up.MaxIdleConnsPerHost,
		idle:          make(map[connKey][]*fastConn),
	}
}

// fastConn is one upstream connection with its buffers.
type fastConn struct {
	t      *fastTransport
	key    connKey
	conn   net.Conn // the socket or, for https, tc
	raw    net.Conn // the socket
	peeker *socketPeeker
	// tc and rr are set for https: the TLS connection over rr, which
	// follows the record framing on the socket (transport_tls.go).
	tc       *tls.Conn
	rr       *recordReader
	probe    [1]byte
	cr       connReader
	br       *bufio.Reader
	bw       *bufio.Writer
	idleAt   time.Time
	canceled atomic.Bool // the request's context ended: the deadline is in the past
	// onCancel is fc.cancel, bound once per connection rather than per
	// request. It can only run for the request in flight: release calls
	// the AfterFunc's stop before the connection is pooled, and closes the
	// connection instead if the function had already started.
	onCancel func()
}

// idleClean reports whether nothing at all is waiting on fc, an idle
// connection: bytes or a close that arrived while it was idle mean the
// upstream is out of step with it (see socketPeeker).
func (fc *fastConn) idleClean() bool {
	if fc.br.Buffered() != 0 {
		return false
	}
	if fc.tc != nil && !tlsIdleClean(fc.tc, fc.rr, fc.probe[:]) {
		return false
	}
	return fc.peeker.idleClean()
}

// cancel ends the I/O of the request in flight: its context ended.
func (fc *fastConn) cancel() {
	fc.canceled.Store(true)
	_ = fc.conn.SetDeadline(aLongTimeAgo)
}

// connReader counts what is read from the connection and, while limit is
// not negative, bounds it (the response header).
type connReader struct {
	c     net.Conn
	limit int64 // < 0: none
	n     int64 // bytes read since the request was written
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.limit >= 0 {
		if r.limit == 0 {
			return 0, errHeaderTooLarge
		}
		if int64(len(p)) > r.limit {
			p = p[:r.limit]
		}
	}
	n, err := r.c.Read(p)
	r.n += int64(n)
	if r.limit >= 0 {
		r.limit -= int64(n)
	}
	return n, err
}

// fastBodyMax bounds the request bodies the fast path sends: a body of
// known length that fits the sockets' buffers, written whole before the
// response is read. Larger and chunked bodies, and Expect: 100-continue,
// go to http.Transport, which writes and reads at once (an upstream may
// answer before it has read the body), on a connection used once.
const fastBodyMax = 64 << 10

// fastPath reports whether req is one the fast path serves: no body, or a
// small one of known length. Requests with a body take it too because
// http.Transport hands a connection back to its pool before its read loop
// looks for bytes past the response (golang/go#68653), and the fast path
// hands out only connections a socket peek proves clean.
func fastPath(req *http.Request) bool {
	noBody := req.Body == nil || req.Body == http.NoBody
	return (req.URL.Scheme == "http" || req.URL.Scheme == "https") &&
		(req.ContentLength == 0 && noBody || req.ContentLength > 0 && req.ContentLength <= fastBodyMax && !noBody && req.Header["Expect"] == nil) &&
		!req.Close && len(req.TransferEncoding) == 0 &&
		len(req.Trailer) == 0 && req.Header["Upgrade"] == nil && req.URL.Host != ""
}

// replayable reports whether req may be sent again on a fresh connection
// after a reused one failed before any byte of the response arrived.
func replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return req.Header["Idempotency-Key"] != nil || req.Header["X-Idempotency-Key"] != nil
}

// RoundTrip implements http.RoundTripper. Like http.Transport, it closes
// the request's body, once it has taken the request.
func (t *fastTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !fastPath(req) {
		return nil, http.ErrSkipAltProtocol
	}
	if req.ContentLength > 0 {
		defer req.Body.Close()
	}
	ctx := req.Context()
	for retried := false; ; retried = true {
		fc, reused, err := t.get(ctx, connKey{req.URL.Scheme, req.URL.Host}, retried)
		if err != nil {
			return nil, err
		}
		res, err := fc.roundTrip(ctx, req)
		if err == nil {
			return res, nil
		}
		fc.close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("upstream request: %w", context.Cause(ctx))
		}
		// An idle connection the upstream closed meanwhile fails before any
		// byte of a response: send the request again, once, on a new one.
		// A body has been read from the client: it cannot be sent again.
		if !reused || retried || fc.cr.n != 0 || isTimeout(err) || !replayable(req) || req.ContentLength > 0 {
			return nil, err
		}
	}
}

// get returns an idle connection for k, or dials one (always, if fresh).
func (t *fastTransport) get(ctx context.Context, k connKey, fresh bool) (fc *fastConn, reused bool, err error) {
	now := time.Now()
	t.mu.Lock()
	for s := t.idle[k]; len(s) > 0 && !fresh; s = t.idle[k] {
		fc = s[len(s)-1]
		s[len(s)-1] = nil
		t.idle[k] = s[:len(s)-1]
		t.mu.Unlock()
		// Handed out only if provably clean now; otherwise the request
		// goes on another connection.
		if now.Sub(fc.idleAt) < idleConnTimeout && fc.idleClean() {
			return fc, true, nil
		}
		fc.close()
		t.mu.Lock()
	}
	t.mu.Unlock()
	return t.dialConn(ctx, k)
}

// dialConn opens a connection for k.
func (t *fastTransport) dialConn(ctx context.Context, k connKey) (*fastConn, bool, error) {
	host, port, err := net.SplitHostPort(k.host)
	if err != nil { // no port: the scheme's
		host, port = strings.TrimSuffix(strings.TrimPrefix(k.host, "["), "]"), "80"
		if k.scheme == "https" {
			port = "443"
		}
	}
	raw, err := t.dial(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, false, fmt.Errorf("dial upstream: %w", err)
	}
	fc := &fastConn{t: t, key: k, conn: raw, raw: raw, peeker: newSocketPeeker(raw)}
	if k.scheme == "https" {
		if fc.tc, fc.rr, err = dialTLS(ctx, t.tls, raw, host); err != nil {
			raw.Close()
			return nil, false, err
		}
		fc.conn = fc.tc
	}
	fc.cr = connReader{c: fc.conn, limit: -1}
	fc.onCancel = fc.cancel
	fc.br = bufio.NewReaderSize(&fc.cr, 16<<10)
	fc.bw = bufio.NewWriterSize(fc.conn, 4<<10)
	return fc, false, nil
}

// put makes fc idle, or closes it if the pool is full or closing. Idle
// connections past idleConnTimeout at the bottom of the stack go.
func (t *fastTransport) put(fc *fastConn) {
	fc.idleAt = time.Now()
	t.mu.Lock()
	s := t.idle[fc.key]
	if t.closing || len(s) >= t.maxIdle {
		t.mu.Unlock()
		fc.close()
		return
	}
	var stale *fastConn
	if len(s) > 0 && fc.idleAt.Sub(s[0].idleAt) >= idleConnTimeout {
		stale = s[0]
		s = append(s[:0], s[1:]...)
	}
	t.idle[fc.key] = append(s, fc)
	t.mu.Unlock()
	if stale != nil {
		stale.close()
	}
}

// closeIdle closes the idle connections, and from now on those that
// become idle.
func (t *fastTransport) closeIdle() {
	t.mu.Lock()
	m := t.idle
	t.idle = make(map[connKey][]*fastConn)
	t.closing = true
	t.mu.Unlock()
	for _, s := range m {
		for _, fc := range s {
			fc.close()
		}
	}
}

// close closes the socket. Not through tls.Conn: its close_notify could
// wait up to 5 s on an upstream that reads nothing, and a connection is
// closed because it is out of step or done with, when no alert is owed.
func (fc *fastConn) close() { fc.raw.Close() }

// roundTrip writes req and reads the response header on fc. A context that
// ends meanwhile (the client went away) puts fc's deadline in the past,
// which ends any read or write at once; fc is then never reused.
func (fc *fastConn) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	fc.cr.n = 0
	// The header deadline is set before the context can put one in the
	// past, so that it never undoes a cancellation.
	if ht := fc.t.headerTimeout; ht > 0 {
		if err := fc.conn.SetReadDeadline(time.Now().Add(ht)); err != nil {
			return nil, fmt.Errorf("set deadline: %w", err)
		}
	}
	stop := context.AfterFunc(ctx, fc.onCancel)
	res, err := fc.exchange(ctx, req)
	if err != nil {
		stop()
		return nil, err
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		stop()
		res.Body.Close()
		return nil, errUnaskedSwitch
	}
	// An answer other than 2xx to a request with a body may have been
	// given without reading it (a refusal: 401, 413, a redirect to a
	// login): its bytes would then be the head of the next request on
	// this connection, and a body ending in an unfinished header would
	// capture the next client's request, cookies included. Such a
	// connection is not reused.
	keep := !res.Close && (req.ContentLength == 0 || res.StatusCode < 300)
	if res.Body == http.NoBody {
		// HEAD, 204, 304 and empty bodies: done already. Bytes already
		// waiting after such a response are a body the upstream should not
		// have sent: the connection is not reused.
		fc.release(stop, keep && fc.br.Buffered() == 0)
		return res, nil
	}
	res.Body = &fastBody{fc: fc, rc: res.Body, stop: stop, keep: keep}
	return res, nil
}

// exchange writes req and reads responses up to the first that is not
// informational, handing 1xx ones to the request's httptrace (which is how
// ReverseProxy forwards 103 Early Hints).
func (fc *fastConn) exchange(ctx context.Context, req *http.Request) (*http.Response, error) {
	err := writeRequest(fc.bw, req)
	if err == nil {
		err = fc.bw.Flush()
	}
	if err != nil {
		var be *bodyError
		if errors.As(err, &be) {
			// The client's body failed (it left, stalled, was cut short or
			// too large): the upstream got half a request and the
			// connection is done; the error is the client's.
			return nil, be.err
		}
		if req.ContentLength > 0 {
			// The upstream may have answered and closed before reading the
			// whole body (a refusal): its answer, if it is there, is what
			// the client should get, as with http.Transport.
			if res := fc.earlyAnswer(req); res != nil {
				return res, nil
			}
		}
		return nil, fmt.Errorf("write request: %w", err)
	}
	ht := fc.t.headerTimeout
	if ht > 0 && req.ContentLength > 0 {
		// The wait for the response's header starts once the request is
		// sent, not while a slow client was still sending its body.
		if err := fc.conn.SetReadDeadline(time.Now().Add(ht)); err != nil {
			return nil, fmt.Errorf("set deadline: %w", err)
		}
		if fc.canceled.Load() {
			_ = fc.conn.SetDeadline(aLongTimeAgo)
		}
	}
	for n1xx := 0; ; n1xx++ {
		fc.cr.limit = maxResponseHeaderBytes
		res, err := http.ReadResponse(fc.br, req)
		fc.cr.limit = -1
		if err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
		if res.StatusCode < 100 || res.StatusCode > 199 || res.StatusCode == http.StatusSwitchingProtocols {
			if ht > 0 {
				// A context ending meanwhile set a past deadline: keep it
				// (fc.canceled is set before that deadline).
				if err := fc.conn.SetReadDeadline(time.Time{}); err != nil {
					return nil, fmt.Errorf("set deadline: %w", err)
				}
				if fc.canceled.Load() {
					_ = fc.conn.SetDeadline(aLongTimeAgo)
				}
			}
			return res, nil
		}
		if n1xx >= max1xxResponses {
			return nil, errTooMany1xx
		}
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(res.StatusCode, textproto.MIMEHeader(res.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// earlyAnswer reads a response the upstream sent before a write of the
// request failed, or returns nil. The connection is never reused after it.
func (fc *fastConn) earlyAnswer(req *http.Request) *http.Response {
	_ = fc.conn.SetReadDeadline(time.Now().Add(time.Second))
	fc.cr.limit = maxResponseHeaderBytes
	res, err := http.ReadResponse(fc.br, req)
	fc.cr.limit = -1
	if err != nil || res.StatusCode < 200 {
		return nil
	}
	_ = fc.conn.SetReadDeadline(time.Time{})
	if fc.canceled.Load() {
		_ = fc.conn.SetDeadline(aLongTimeAgo)
	}
	res.Close = true
	return res
}

// release ends the request on fc: back to the pool if reusable and its
// context did not end, closed otherwise.
func (fc *fastConn) release(stop func() bool, reusable bool) {
	if stop() && reusable && !fc.canceled.Load() {
		fc.t.put(fc)
		return
	}
	fc.close()
}

// fastBody is a response body on the fast path. The connection goes back to
// the pool once the body has been read to its end cleanly; a body closed
// early, or a read error, closes it.
type fastBody struct {
	fc   *fastConn
	rc   io.ReadCloser
	stop func() bool
	keep bool  // the response allows reuse
	err  error // once set, the connection is released and reads return it
}

func (b *fastBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	if err != nil {
		b.err = err
		b.fc.release(b.stop, err == io.EOF && b.keep && b.fc.br.Buffered() == 0)
	}
	return n, err
}

func (b *fastBody) Close() error {
	if b.err != nil {
		return nil
	}
	b.err = errBodyClosed
	b.fc.release(b.stop, false)
	return nil
}
