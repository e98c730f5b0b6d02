package edge

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Forward auth asks an auth server (oauth2-proxy, Authelia, Authentik)
// about each request, as Caddy's forward_auth, Traefik's ForwardAuth and
// nginx's auth_request do: a 2xx lets the request through with the
// server's identity headers copied onto it; any other answer goes back to
// the client as it is (a 302 to the login page, a 401, a 403); a server
// that cannot be reached or does not answer in time gives 503. Nothing is
// ever let through on an error.

// fwdMaxBody bounds the auth server's body passed back to the client.
const fwdMaxBody = 1 << 20

// forwardAuth is one route's forward auth, built with the table.
type forwardAuth struct {
	srv    *AuthServer
	url    string
	route  string
	tr     http.RoundTripper
	sendAZ bool      // send the client's Authorization (not when the edge's Basic Auth used it)
	cache  *fwdCache // nil when off

	unavailable string // the 503 body

	allowed, denied, failed prometheus.Counter
}

// newForwardAuth returns the forward auth of route rc. Callers hold
// s.buildMu.
func (s *Server) newForwardAuth(cfg *Config, rc Route, name string) *forwardAuth {
	as := cfg.AuthServers[rc.ForwardAuth]
	fa := &forwardAuth{
		srv:         as,
		url:         as.URL.String(),
		route:       name,
		tr:          s.fwdTransport,
		sendAZ:      rc.Auth == "",
		unavailable: "503 Service Unavailable: the auth server of route " + name + " is unavailable, try again\n",
		allowed:     s.m.forwardAuth.WithLabelValues(name, "allowed"),
		denied:      s.m.forwardAuth.WithLabelValues(name, "denied"),
		failed:      s.m.forwardAuth.WithLabelValues(name, "error"),
	}
	if as.CacheTTL > 0 {
		fa.cache = newFwdCache(as.CacheTTL, as.CacheEntries)
	}
	return fa
}

// newFwdTransport is the Transport of every auth server: kept across
// reloads, no environment proxy, no redirects followed (RoundTrip never
// follows them; a 302 is the server's answer for the client). Checks
// (bodiless GETs, to http:// and https:// auth servers; https trusts the
// system's roots) take the fast path, whose pooled connections are proven
// clean before reuse: stray bytes from an auth server, read as the answer
// to another client's check, would be a verdict on the wrong request.
func newFwdTransport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return withFastHTTP1(&http.Transport{
		Proxy:               nil,
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
		DisableCompression:  true,
	}, Upstream{MaxIdleConnsPerHost: 64}, d, "")
}

// fwdRequestHeaders are passed from the client's request to the auth
// server besides Cookie and Authorization: what oauth2-proxy and Authelia
// read to choose between a redirect and a 401.
var fwdRequestHeaders = []string{"Accept", "User-Agent", "X-Requested-With", "X-Request-Id"}

// check asks the auth server about r, whose normalized path is clean. It
// answers the client and returns false when r may not pass; on true, the
// copy headers of the server's answer are on r.
func (fa *forwardAuth) check(t *table, rt *route, ex *exchange, r *http.Request, clean string) bool {
	c := t.clientOf(r)
	proto, host := "http", r.Host
	if r.TLS != nil {
		proto = "https"
	}
	if c.trusted {
		// The same belief as setForwarded: cloudflared's word for the scheme and host.
		if p := r.Header["X-Forwarded-Proto"]; len(p) == 1 && (p[0] == "https" || p[0] == "http") {
			proto = p[0]
		}
		if h := r.Header["X-Forwarded-Host"]; len(h) == 1 && h[0] != "" {
			host = h[0]
		}
	}
	uri := clean
	if r.URL.RawQuery != "" {
		uri += "?" + r.URL.RawQuery
	}
	var key [32]byte
	if fa.cache != nil {
		// Everything the auth server is told about the request is in the
		// key: it may decide by method, host, path or client network
		// (Authelia's access_control), so a 2xx for one page is no
		// verdict on another.
		key = fa.cache.key(fa.route, r.Header["Cookie"], fa.authorization(r),
			[]string{r.Method, proto, host, uri, ex.entry.clientIP})
		if h, ok := fa.cache.get(key, time.Now()); ok {
			for name, v := range h {
				r.Header[name] = v[:len(v):len(v)] // an append must not reach the cache
			}
			fa.allowed.Inc()
			return true
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), fa.srv.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fa.url, nil)
	if err != nil {
		fa.fail(ex, r, rt)
		return false
	}
	h := req.Header
	h["X-Forwarded-Method"] = []string{r.Method}
	h["X-Forwarded-Proto"] = []string{proto}
	h["X-Forwarded-Host"] = []string{host}
	h["X-Forwarded-Uri"] = []string{uri}
	h["X-Forwarded-For"] = []string{ex.entry.clientIP}
	if v := r.Header["Cookie"]; v != nil {
		h["Cookie"] = v
	}
	if v := fa.authorization(r); v != nil {
		h["Authorization"] = v
	}
	for _, name := range fwdRequestHeaders {
		if v := r.Header[name]; v != nil {
			h[name] = v
		}
	}
	res, err := fa.tr.RoundTrip(req)
	if err != nil {
		fa.fail(ex, r, rt)
		return false
	}
	defer res.Body.Close()
	if res.StatusCode < 200 {
		// A 101 or another informational answer is no verdict.
		fa.fail(ex, r, rt)
		return false
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		var cached http.Header
		if fa.cache != nil {
			cached = make(http.Header, len(fa.srv.CopyHeaders))
		}
		for _, name := range fa.srv.CopyHeaders {
			if v := res.Header[name]; v != nil {
				r.Header[name] = v
				if cached != nil {
					cached[name] = v
				}
			}
		}
		// A cookie the auth server sets with its yes (oauth2-proxy's
		// refreshed session) is for the browser, as nginx's
		// auth_request_set recipe passes it. Never cached: it belongs
		// to this answer.
		if v := res.Header["Set-Cookie"]; v != nil {
			wh := ex.rec.Header()
			wh["Set-Cookie"] = append(wh["Set-Cookie"], v...)
		}
		// Drained so that the connection goes back to the pool.
		_, _ = io.CopyN(io.Discard, res.Body, fwdMaxBody)
		if fa.cache != nil {
			fa.cache.put(key, cached, time.Now())
		}
		fa.allowed.Inc()
		return true
	}
	fa.denied.Inc()
	ex.entry.denyReason = denyForwardAuth
	wh := ex.rec.Header()
	for name, v := range res.Header {
		if !hopByHop(name) {
			wh[name] = v
		}
	}
	applyHeaders(wh, rt.headers)
	if id := r.Header["X-Request-Id"]; id != nil {
		wh["X-Request-Id"] = id
	}
	ex.rec.WriteHeader(res.StatusCode)
	_, _ = io.Copy(&ex.rec, io.LimitReader(res.Body, fwdMaxBody))
	return false
}

// authorization returns the client's Authorization to send to the auth
// server: none when the route's Basic Auth already used it, as the admin's
// password is not the auth server's business.
func (fa *forwardAuth) authorization(r *http.Request) []string {
	if !fa.sendAZ {
		return nil
	}
	return r.Header["Authorization"]
}

// fail answers 503: the auth server could not be asked. Never "let through".
func (fa *forwardAuth) fail(ex *exchange, r *http.Request, rt *route) {
	fa.failed.Inc()
	ex.entry.denyReason = denyAuthUnavailable
	ex.rec.Header().Set("Retry-After", "1")
	respond(&ex.rec, r, rt.headers, http.StatusServiceUnavailable, fa.unavailable)
}

// hopByHop reports whether a response header of the auth server must not
// be passed on: the connection's own, and Content-Length, which the body
// bound may change.
func hopByHop(name string) bool {
	switch name {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te", "Trailer",
		"Proxy-Authenticate", "Content-Length":
		return true
	}
	return false
}

// copyHeaderNames returns the lower-case names of every auth server's
// copy_headers, which are removed from every request on every route: a
// client must not be able to name itself by sending X-Auth-Request-User.
func copyHeaderNames(cfg *Config) []string {
	var out []string
	for _, as := range cfg.AuthServers {
		for _, h := range as.CopyHeaders {
			lower := strings.ToLower(h)
			if !containsString(out, lower) {
				out = append(out, lower)
			}
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// stripHeaders removes from h every header named in lower (lower-case), in
// any case and with '_' for '-': CGI-style upstreams read
// X_Auth_Request_User as X-Auth-Request-User.
func stripHeaders(h http.Header, lower []string) {
	for name := range h {
		for _, l := range lower {
			if headerNameEqual(name, l) {
				delete(h, name)
				break
			}
		}
	}
}

// fwdCache remembers the 2xx answers of an auth server, per route, Cookie,
// Authorization and request (method, proto, host, URI, client IP), for a
// short TTL: a dashboard polling the same URLs every few seconds then costs
// one round trip per URL and TTL instead of one per request.
// Keys are SHA-256 of a per-process salt and those values, so the cache
// holds no cookie.
type fwdCache struct {
	ttl  time.Duration
	max  int
	salt [16]byte

	mu      sync.Mutex
	entries map[[32]byte]fwdCached
}

type fwdCached struct {
	exp     int64 // unix nanoseconds
	headers http.Header
}

func newFwdCache(ttl time.Duration, max int) *fwdCache {
	c := &fwdCache{ttl: ttl, max: max, entries: make(map[[32]byte]fwdCached)}
	_, _ = rand.Read(c.salt[:])
	return c
}

func (c *fwdCache) key(route string, cookie, authorization, request []string) [32]byte {
	h := sha256.New()
	h.Write(c.salt[:])
	for _, part := range [][]string{{route}, cookie, authorization, request} {
		for _, v := range part {
			h.Write([]byte(v))
			h.Write([]byte{0})
		}
		h.Write([]byte{1})
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (c *fwdCache) get(key [32]byte, now time.Time) (http.Header, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || now.UnixNano() >= e.exp {
		return nil, false
	}
	return e.headers, true
}

func (c *fwdCache) put(key [32]byte, h http.Header, now time.Time) {
	if c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		n := now.UnixNano()
		for k, e := range c.entries {
			if n >= e.exp {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k) // an arbitrary one: a bounded cache beats a perfect one
		}
	}
	c.entries[key] = fwdCached{exp: now.Add(c.ttl).UnixNano(), headers: h}
}
