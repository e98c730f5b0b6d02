package edge

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ups "selfhost.dev/edgeapp/edge/upstream"
)

// copyBufferSize is the size of the buffers ReverseProxy copies bodies with.
const copyBufferSize = 32 << 10

// bufferPool is the httputil.BufferPool shared by every route. It pools
// array pointers, so Put does not allocate a slice header per call.
type bufferPool struct{ p sync.Pool }

var _ httputil.BufferPool = (*bufferPool)(nil)

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return v[:]
	}
	return make([]byte, copyBufferSize)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
	}
}

// transportKey identifies a Transport that can be kept across reloads.
type transportKey struct {
	scheme, host string
	up           Upstream
}

// newTransport returns a Transport tuned for one upstream on a fast network:
// an idle pool sized for hundreds of concurrent clients (Go's default of 2
// makes most requests open a new connection), no transparent gzip (bodies
// pass through as they are), no environment proxy, HTTP/1.1 (over TLS to
// https:// upstreams, trusted as up says). Requests without a body or with
// a small one take the fast path of transport.go, and what is left to
// http.Transport gets a connection of its own (see withFastHTTP1).
func newTransport(up Upstream, scheme string) *http.Transport {
	d := &net.Dialer{Timeout: up.DialTimeout, KeepAlive: 30 * time.Second}
	return withFastHTTP1(&http.Transport{
		Proxy:                 nil,
		DialContext:           dialAnswered(d.DialContext),
		MaxIdleConns:          0, // no global bound; MaxIdleConnsPerHost bounds each upstream
		MaxIdleConnsPerHost:   up.MaxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSClientConfig:       upstreamTLS(up),
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: up.ResponseHeaderTimeout,
		ExpectContinueTimeout: 1 * time.Second,
		DisableCompression:    true,
		ReadBufferSize:        16 << 10,
		WriteBufferSize:       16 << 10,
	}, up, d, scheme)
}

// transport returns the kept Transport for u and up, making it if needed.
// Callers hold s.buildMu.
func (s *Server) transport(u *url.URL, up Upstream) *http.Transport {
	k := transportKey{u.Scheme, u.Host, up}
	if tr, ok := s.transports[k]; ok {
		return tr
	}
	tr := newTransport(up, u.Scheme)
	s.transports[k] = tr
	return tr
}

// dropUnusedTransports closes the idle connections of transports that t no
// longer uses. Requests still running on an older table keep theirs.
// Callers hold s.buildMu.
func (s *Server) dropUnusedTransports(t *table) {
	used := make(map[transportKey]bool)
	for _, rc := range t.cfg.Routes {
		if rc.Upstreams != nil || rc.To == nil {
			continue // a pool owns its transports; a redirect has none
		}
		used[transportKey{rc.To.Scheme, rc.To.Host, t.cfg.Upstream}] = true
	}
	for k, tr := range s.transports {
		if !used[k] {
			closeIdle(tr)
			delete(s.transports, k)
		}
	}
}

// newProxy returns the ReverseProxy of route r in table t.
func (s *Server) newProxy(t *table, r *route) *httputil.ReverseProxy {
	var tr http.RoundTripper = r.pool
	if r.pool == nil {
		tr = s.transport(r.To, t.cfg.Upstream)
	}
	return &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { t.rewrite(r, pr) },
		Transport:      tr,
		BufferPool:     s.buffers,
		ErrorLog:       s.proxyLog,
		ModifyResponse: r.modifyResponse,
		ErrorHandler:   func(w http.ResponseWriter, req *http.Request, err error) { s.proxyError(r, w, req, err) },
	}
}

// rewrite makes the outbound request. ReverseProxy has already removed
// hop-by-hop headers (and those named in Connection) and X-Forwarded-*.
func (t *table) rewrite(r *route, pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	// The handler has put the normalized path in In.URL: that is what the
	// route matched, so that is what is forwarded.
	path, raw := in.URL.Path, in.URL.RawPath
	if r.StripPrefix && r.Path != "/" {
		path = path[min(r.stripDec, len(path)):]
		if path == "" || path[0] != '/' {
			path = "/" + path
		}
		if raw != "" {
			raw = raw[min(len(r.Path), len(raw)):]
			if raw == "" || raw[0] != '/' {
				raw = "/" + raw
			}
		}
	}
	if r.baseDec != "" {
		path = r.baseDec + path
		if raw != "" {
			raw = r.baseRaw + raw
		}
	}
	out.URL.Scheme = r.To.Scheme
	out.URL.Host = r.To.Host
	out.URL.Path, out.URL.RawPath = path, raw
	// out.Host keeps in.Host: Grafana Live checks Origin against it.

	t.setForwarded(pr, t.clientOf(in))
	if id := in.Header["X-Request-Id"]; id != nil {
		out.Header["X-Request-Id"] = id
	}
	if r.pool != nil && r.pool.UsesClientIP() {
		pr.Out = pr.Out.WithContext(ups.WithClientIP(pr.Out.Context(), t.clientOf(in).ip))
	}
	if !r.PassAuth {
		// On every route, not only those with auth: after a 401 browsers
		// resend the edge's credentials to the whole site, and Grafana would
		// try to log in with them.
		delete(out.Header, "Authorization")
	}
}

// modifyResponse applies the route's header operations and echoes the
// request ID. Hop-by-hop headers are already gone.
func (r *route) modifyResponse(res *http.Response) error {
	if err := checkSwitch(res); err != nil {
		return err
	}
	applyHeaders(res.Header, r.headers)
	if res.Request != nil {
		if id := res.Request.Header["X-Request-Id"]; id != nil {
			res.Header["X-Request-Id"] = id
		}
	}
	return nil
}

// errBodyTooLarge is what a body reader returns past a route's max_body.
var errBodyTooLarge = errors.New("request body too large")

// limitedBody counts a request body, stops it past a limit and bounds the
// wait for each read. The Transport reads it from another goroutine, hence
// the atomics and the mutex.
//
// A chunked body that passes the limit gets the client a 413, but the
// upstream has already received the chunks before it, and then sees the
// request aborted (the connection closed mid-body), not a complete
// request: an upstream must not act on a body it did not get whole.
type limitedBody struct {
	rc       io.ReadCloser
	limit    int64 // 0: none
	expect   bool  // the client sent Expect: 100-continue (see closeIfBodyUnsent)
	n        atomic.Int64
	tooLarge atomic.Bool
	// malformed is set when reading the client's body failed other than by
	// its end, the limit or a timeout (a malformed chunked encoding, a
	// connection cut mid-body): the client's fault, answered 400, not 502.
	malformed atomic.Bool

	// idle bounds the wait for each Read of the client's body (0: none):
	// setDeadline moves the connection's read deadline before each one, so
	// a client sending a byte now and then cannot hold the connection and
	// the upstream request forever, while a slow steady upload goes on.
	idle        time.Duration
	setDeadline func(time.Time) error // http.ResponseController.SetReadDeadline
	timedOut    atomic.Bool
	mu          sync.Mutex
	done        bool // the body ended or the handler returned: deadlines are no longer ours
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.idle > 0 {
		b.mu.Lock()
		if !b.done {
			_ = b.setDeadline(time.Now().Add(b.idle))
		}
		b.mu.Unlock()
	}
	n, err := b.limitedRead(p)
	if err != nil && err != io.EOF && err != errBodyTooLarge && !isTimeout(err) {
		b.malformed.Store(true)
	}
	if err != nil && b.idle > 0 {
		if isTimeout(err) {
			b.timedOut.Store(true)
		}
		// Clear the deadline once the body is over: after EOF the server
		// reads the connection in the background (to see the client go),
		// and a stream or a long answer must not be cut by it. A hijack
		// (websocket) clears the deadlines itself.
		b.mu.Lock()
		if !b.done {
			b.done = true
			_ = b.setDeadline(time.Time{})
		}
		b.mu.Unlock()
	}
	return n, err
}

// stop is called when the handler returns: the connection is no longer
// this request's, so its deadlines are left alone. A deadline still set
// (the body was not read to its end) bounds the server's discarding of
// the rest of the body; the next request sets its own.
func (b *limitedBody) stop() {
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
}

func (b *limitedBody) limitedRead(p []byte) (int, error) {
	if b.limit > 0 {
		left := b.limit + 1 - b.n.Load() // one byte more, to tell "exactly limit" from "over"
		if left <= 0 {
			b.tooLarge.Store(true)
			return 0, errBodyTooLarge
		}
		if int64(len(p)) > left {
			p = p[:left]
		}
	}
	n, err := b.rc.Read(p)
	if b.limit > 0 && b.n.Add(int64(n)) > b.limit {
		b.tooLarge.Store(true)
		return 0, errBodyTooLarge
	}
	if b.limit == 0 {
		b.n.Add(int64(n))
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// proxyError answers a failed round trip. The client sees a short message
// naming the route; the cause goes to the edge's log.
func (s *Server) proxyError(r *route, w http.ResponseWriter, req *http.Request, err error) {
	ex := recorderOf(w)
	var kind string
	var status int
	var body string
	var lb *limitedBody // req is the outbound request, whose Body ReverseProxy wrapped
	var noHealthy *ups.NoHealthyError
	if ex != nil {
		lb = ex.body
	}
	switch {
	case errors.Is(err, errBodyTooLarge) || lb != nil && lb.tooLarge.Load():
		kind, status, body = "too_large", http.StatusRequestEntityTooLarge, r.tooLarge
	case lb != nil && lb.timedOut.Load():
		// The client's body stalled past limits.body_read_timeout: the
		// client's fault, not the upstream's (not a 504).
		kind, status, body = "client_timeout", http.StatusRequestTimeout, "408 Request Timeout: the request body stalled\n"
	case lb != nil && lb.malformed.Load():
		// The client's body is broken (a bad chunked encoding, a cut
		// connection): a client error, not an unreachable upstream.
		kind, status, body = "bad_request", http.StatusBadRequest, "400 Bad Request: the request body is malformed or incomplete\n"
	case req.Context().Err() != nil:
		// The client went away; there is no one to answer.
		r.m.upstreamError("canceled")
		if ex != nil {
			ex.clientGone = true
		}
		return
	case errors.As(err, &noHealthy):
		kind, status, body = "no_healthy", http.StatusServiceUnavailable, r.noHealthy
		w.Header().Set("Retry-After", strconv.FormatInt(ceilSeconds(noHealthy.RetryAfter), 10)) // at least 1: "0" invites a hot loop
	case isTimeout(err):
		kind, status, body = "timeout", http.StatusGatewayTimeout, r.timeout
	case errors.Is(err, syscall.ECONNREFUSED):
		kind, status, body = "refused", http.StatusBadGateway, r.noGateway
	default:
		kind, status, body = "unreachable", http.StatusBadGateway, r.noGateway
	}
	if status != http.StatusBadRequest {
		// A broken request body is the client's error: it shows as a 400 in
		// edge_requests_total, not as a failure of the upstream.
		r.m.upstreamError(kind)
	}
	if status != http.StatusRequestEntityTooLarge && status != http.StatusRequestTimeout && status != http.StatusBadRequest {
		s.log.Warn("upstream error", "route", r.name, "upstream", r.upstream, "kind", kind,
			"request_id", req.Header.Get("X-Request-Id"), "err", err)
	}
	h := w.Header()
	if status == http.StatusRequestEntityTooLarge || status == http.StatusRequestTimeout || status == http.StatusBadRequest {
		closeConnAfter(h, req) // the rest of the body is not worth reading
	}
	respond(w, req, r.headers, status, body)
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

var (
	textPlain = []string{"text/plain; charset=utf-8"}
	noSniff   = []string{"nosniff"}
)

// respond writes a response made by the edge itself: header operations of
// the route (or the global ones), the request ID, and body (a short text
// starting with the status) in the format the client prefers (errorpage.go).
func respond(w http.ResponseWriter, req *http.Request, ops []headerOp, status int, body string) {
	h := w.Header()
	applyHeaders(h, ops)
	h["X-Content-Type-Options"] = noSniff
	if id := req.Header["X-Request-Id"]; id != nil {
		h["X-Request-Id"] = id
	}
	var pages *ErrorPages
	if rec := recorderOf(w); rec != nil {
		pages = rec.pages
	}
	writeError(w, req, pages, status, body)
}

// recorderOf finds the edge's recorder under w's wrappers, or nil.
func recorderOf(w http.ResponseWriter) *recorder {
	for {
		switch v := w.(type) {
		case *recorder:
			return v
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return nil
		}
	}
}
