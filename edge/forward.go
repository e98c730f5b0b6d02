package edge

import (
	"context"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"os"
	"strings"
)

// The lean forwarding path. A plain GET or HEAD without a body to a single
// plain-HTTP upstream is most of what the edge forwards, and for it
// httputil.ReverseProxy's generality costs half the edge's allocations per
// request: a full Request.Clone, an httptrace hook and its context, a
// WithContext copy, a header copy value by value into the ResponseWriter,
// and a MIME parse of every Content-Type. forwardLean does the same steps,
// in the same order and with the same rules, for that one kind of request,
// on the fast HTTP/1.1 transport (transport.go) directly:
//
//   - the outbound request is the inbound one with its own URL and header
//     map (values shared, never modified in place);
//   - hop-by-hop headers and those named in Connection are removed, Te:
//     trailers is kept, client X-Forwarded-* and Forwarded are dropped, the
//     query is cleaned as ReverseProxy cleans it, and then the route's
//     rewrite runs, exactly as under ReverseProxy.Rewrite;
//   - the response is read with http.ReadResponse by the fast transport,
//     which pools a connection only after exact framing and hands it out
//     only when clean; 1xx responses are forwarded as they come, 101 is an
//     error (no upgrade is asked here);
//   - hop-by-hop response headers are removed, the route's modifyResponse
//     runs, trailers are announced and copied, SSE and unknown-length
//     bodies are flushed at each write, errors go to proxyError, and a body
//     cut mid-copy aborts the client connection (http.ErrAbortHandler).
//
// Everything else (a body, an Upgrade, an https upstream, a pool of
// upstreams, a header the fast writer would not send as it is) goes to the
// route's ReverseProxy unchanged, as does everything when EDGE_FAST_HTTP1
// turns the fast transport off. The tests run on both (hostile_test.go,
// upgrade_filter_test.go).

// leanForwardEnv names the environment variable that turns the lean path
// off ("off", "0" or "false") while keeping the fast transport under
// ReverseProxy: the harness's side-by-side switch (-edge-env
// EDGE_LEAN_FORWARD=off). It is read when a route is built.
const leanForwardEnv = "EDGE_LEAN_FORWARD"

// leanForwardOn reports whether leanForwardEnv leaves the lean path on.
func leanForwardOn() bool {
	switch os.Getenv(leanForwardEnv) {
	case "off", "0", "false":
		return false
	}
	return true
}

// forward sends r to rt's upstream and copies the answer to w.
func (s *Server) forward(t *table, ex *exchange, rt *route, w http.ResponseWriter, r *http.Request) {
	if rt.fast != nil && leanRequest(r) {
		if ex.lean == nil {
			ex.lean = &leanState{hdr: make(http.Header, 16)}
		}
		if s.forwardLean(t, ex.lean, rt, w, r) {
			return
		}
	}
	rt.proxy.ServeHTTP(w, r)
}

// leanState is the lean path's per-request state. It stays with its
// exchange across requests (see finish), so that forwarding allocates
// none of it; nothing holds it once the handler has returned, because the
// outbound request is written, and its response read and closed, within
// forwardLean.
type leanState struct {
	out http.Request
	url url.URL
	hdr http.Header
	pr  httputil.ProxyRequest
}

// reset drops every reference of the last request, keeping the header
// map's storage.
func (l *leanState) reset() {
	l.out, l.url, l.pr = http.Request{}, url.URL{}, httputil.ProxyRequest{}
	clear(l.hdr)
}

// leanRequest reports whether the inbound r may take the lean path.
func leanRequest(r *http.Request) bool {
	return r.ContentLength == 0 && (r.Body == nil || r.Body == http.NoBody) &&
		len(r.TransferEncoding) == 0 && len(r.Trailer) == 0 && r.Header["Upgrade"] == nil &&
		r.Method != http.MethodConnect
}

// forwardLean forwards r on the lean path. It reports false, having done
// nothing, if the outbound request turns out to need ReverseProxy.
func (s *Server) forwardLean(t *table, ls *leanState, rt *route, w http.ResponseWriter, r *http.Request) bool {
	out := &ls.out
	*out = *r // the same context: a client that goes away cancels the upstream request
	ls.url = *r.URL
	out.URL = &ls.url
	out.Body = nil // as ReverseProxy does for an empty body
	out.Close = false
	out.RequestURI = ""
	h := ls.hdr
	for k, vv := range r.Header {
		h[k] = vv
	}
	out.Header = h
	removeHopByHop(h)
	if hasToken(r.Header["Te"], "trailers") {
		h["Te"] = teTrailers
	}
	delete(h, "Forwarded")
	delete(h, "X-Forwarded-For")
	delete(h, "X-Forwarded-Host")
	delete(h, "X-Forwarded-Proto")
	out.URL.RawQuery = cleanQuery(out.URL.RawQuery)
	ls.pr = httputil.ProxyRequest{In: r, Out: out}
	t.rewrite(rt, &ls.pr)
	out = ls.pr.Out
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = noUserAgent // no Go default
	}
	if !fastPath(out) || !sendableHeader(h) {
		return false // r is untouched: ReverseProxy starts afresh
	}

	res, err := rt.fast.roundTrip(out, w)
	if err != nil {
		s.proxyError(rt, w, out, err)
		return true
	}
	removeHopByHop(res.Header)
	if err := rt.modifyResponse(res); err != nil {
		res.Body.Close()
		s.proxyError(rt, w, out, err)
		return true
	}
	dst := w.Header()
	for k, vv := range res.Header {
		// res is ours alone: its value slices can be handed over.
		if prior, ok := dst[k]; ok {
			dst[k] = append(prior, vv...)
		} else {
			dst[k] = vv
		}
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	err = s.copyBody(w, res, streaming(res))
	if err != nil {
		res.Body.Close()
		if r.Context().Value(http.ServerContextKey) == nil {
			// Not under net/http's server (a test calling ServeHTTP): no
			// one recovers the panic, as ReverseProxy reasons.
			s.proxyLog.Printf("suppressing panic for copyResponse error outside a server; copy error: %v", err)
			return true
		}
		panic(http.ErrAbortHandler) // the client must not take a cut body for a whole one
	}
	res.Body.Close() // now, to fill res.Trailer
	if len(res.Trailer) > 0 {
		// Force chunking, so that net/http does not set a Content-Length
		// and drop the trailers.
		_ = http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announced {
		for k, vv := range res.Trailer {
			dst[k] = append(dst[k], vv...)
		}
		return true
	}
	for k, vv := range res.Trailer {
		dst[http.TrailerPrefix+k] = append(dst[http.TrailerPrefix+k], vv...)
	}
	return true
}

// copyBody copies res's body to w with a pooled buffer, flushing after each
// write when flush is set. Read errors other than the body's end are
// logged, as ReverseProxy logs them.
//
// A stream's headers are flushed before its body when no byte of the body
// has arrived yet, so that they reach the client before a slow first
// event; ReverseProxy does the same from a timer goroutine, which loses
// the race to a body already there. Flushing first would then send the
// headers before net/http could sniff a missing Content-Type, so the lean
// path writes first in that case, as ReverseProxy mostly does.
func (s *Server) copyBody(w http.ResponseWriter, res *http.Response, flush bool) error {
	var flusher func() error
	if flush {
		flusher = http.NewResponseController(w).Flush
		if b, ok := res.Body.(*fastBody); !ok || b.fc.br.Buffered() == 0 {
			_ = flusher()
		}
	}
	buf := s.buffers.Get()
	defer s.buffers.Put(buf)
	for {
		n, rerr := res.Body.Read(buf)
		if rerr != nil && rerr != io.EOF && rerr != context.Canceled {
			s.proxyLog.Printf("edge: read error during body copy: %v", rerr)
		}
		if n > 0 {
			nw, werr := w.Write(buf[:n])
			if werr != nil {
				return werr
			}
			if nw != n {
				return io.ErrShortWrite
			}
			if flusher != nil {
				_ = flusher()
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return nil
			}
			return rerr
		}
	}
}

// streaming reports whether res must be flushed at each write, as
// ReverseProxy decides: server-sent events, or a body of unknown length.
func streaming(res *http.Response) bool {
	if res.ContentLength == -1 {
		return true
	}
	ct := res.Header["Content-Type"]
	if len(ct) == 0 {
		return false
	}
	base, _, _ := strings.Cut(ct[0], ";")
	return strings.EqualFold(strings.TrimSpace(base), "text/event-stream")
}

// forwardInformational writes a 1xx response from the upstream to w (103
// Early Hints), as ReverseProxy's Got1xxResponse hook does.
func forwardInformational(w http.ResponseWriter, res *http.Response) {
	h := w.Header()
	for k, vv := range res.Header {
		h[k] = append(h[k], vv...)
	}
	w.WriteHeader(res.StatusCode)
	clear(h) // WriteHeader does not clear them for a 1xx
}

var (
	teTrailers  = []string{"trailers"}
	noUserAgent = []string{""}
)

// hopHeaders are the hop-by-hop headers of RFC 9110 section 7.6.1 and the
// older ones ReverseProxy also removes.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopByHop removes the headers named in Connection, then the
// hop-by-hop ones, as ReverseProxy does on both legs.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, f := range hopHeaders {
		delete(h, f)
	}
}

// sendableHeader reports whether every field of h has a valid name and
// value, as http.Transport checks before it sends anything; the lean path
// leaves a request that fails this to ReverseProxy, whose Transport
// answers it with its own error.
func sendableHeader(h http.Header) bool {
	for k, vv := range h {
		if !isToken(k) {
			return false
		}
		for _, v := range vv {
			if !fieldValue(v) {
				return false
			}
		}
	}
	return true
}

// cleanQuery is ReverseProxy's cleanQueryParams: a query with a semicolon
// or a malformed escape is re-encoded from what url.ParseQuery makes of it,
// so that the upstream and the edge agree on its parameters.
func cleanQuery(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
