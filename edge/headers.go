package edge

import (
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
)

// Hop-by-hop headers, including those named in Connection, are removed both
// ways by httputil.ReverseProxy before Rewrite runs and before ModifyResponse
// runs. Everything the edge adds is added after that, in Rewrite and
// ModifyResponse, so a client cannot make the edge drop X-Forwarded-For or
// X-Request-ID by naming them in Connection (Traefik CVE-2024-45410,
// golang/go#50580), and an upstream cannot drop the security headers.

// headerOp is one precomputed response header operation.
type headerOp struct {
	name   string
	values []string // shared and never mutated; nil removes the header
}

// headerOps merges the global header list with a route's: a route's entry
// replaces the global one of the same name, and an empty value removes it.
func headerOps(global, route []Header) []headerOp {
	var ops []headerOp
	seen := make(map[string]int)
	for _, list := range [][]Header{global, route} {
		for _, h := range list {
			op := headerOp{name: h.Name}
			if h.Value != "" {
				op.values = []string{h.Value}
			}
			if i, ok := seen[h.Name]; ok {
				ops[i] = op
				continue
			}
			seen[h.Name] = len(ops)
			ops = append(ops, op)
		}
	}
	return ops
}

// apply sets or removes each header of ops in h.
func applyHeaders(h http.Header, ops []headerOp) {
	for _, op := range ops {
		if op.values == nil {
			delete(h, op.name)
		} else {
			h[op.name] = op.values
		}
	}
}

// clientAddr is what the edge knows about who sent a request.
type clientAddr struct {
	peer    string // the TCP peer's IP
	ip      string // the client's IP: from client_ip_headers when peer is trusted
	trusted bool   // whether peer is a trusted proxy
}

// clientOf works out the client of r. It does not allocate: the strings are
// slices of r.RemoteAddr and of r's header values.
func (t *table) clientOf(r *http.Request) clientAddr {
	peer := hostOfAddr(r.RemoteAddr)
	c := clientAddr{peer: peer, ip: peer}
	a, err := netip.ParseAddr(peer)
	if err != nil || !t.isTrusted(a) {
		return c
	}
	c.trusted = true
	for _, name := range t.cfg.ClientIPHeaders {
		if ip := t.rightmostUntrusted(r.Header[name]); ip != "" {
			c.ip = ip
			break
		}
	}
	return c
}

// rightmostUntrusted walks a list of IPs (X-Forwarded-For style, possibly
// over several header lines) from the right and returns the first that is
// not a trusted proxy: entries to its left were written by the client and
// prove nothing. If every entry is trusted, the leftmost one is returned.
func (t *table) rightmostUntrusted(values []string) string {
	var leftmost string
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			var item string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				item, v = v[j+1:], v[:j]
			} else {
				item, v = v, ""
			}
			item = strings.TrimSpace(item)
			a, err := netip.ParseAddr(item)
			if err != nil {
				return leftmost // garbage: believe nothing further left
			}
			if !t.isTrusted(a) {
				return item
			}
			leftmost = item
		}
	}
	return leftmost
}

func (t *table) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// hostOfAddr returns the host of "host:port" or "[host]:port" without allocating.
func hostOfAddr(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr
	}
	host := addr[:i]
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host
}

var protoHTTP, protoHTTPS = []string{"http"}, []string{"https"}

// untrustedHeaders are the request headers that tell an upstream who the
// client is, where it came from or which URL it asked for. Upstreams and
// their frameworks believe them (Symfony and IIS route on X-Original-URL,
// Spring builds redirects from X-Forwarded-Prefix), so from a peer that is
// not a trusted proxy they are dropped, along with every X-Forwarded-*.
// Lower case, with '-' where a client may write '_': CGI-style servers
// read X_Forwarded_For as X-Forwarded-For.
var untrustedHeaders = []string{
	"forwarded",
	"x-original-url",
	"x-rewrite-url",
	"x-client-ip",
	"x-real-ip",
	"true-client-ip",
	"cf-connecting-ip",
	"x-cluster-client-ip",
	"x-original-forwarded-for",
}

// spoofable reports whether name, in any case and with '_' for '-', is an
// X-Forwarded-* header or one of untrustedHeaders. It does not allocate.
func spoofable(name string) bool {
	const xf = "x-forwarded-"
	if len(name) > len(xf) && headerNameEqual(name[:len(xf)], xf) {
		return true
	}
	for _, h := range untrustedHeaders {
		if headerNameEqual(name, h) {
			return true
		}
	}
	return false
}

// headerNameEqual compares a header name with a lower-case one, ignoring
// case and reading '_' as '-'.
func headerNameEqual(name, lower string) bool {
	if len(name) != len(lower) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' {
			c = '-'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// setForwarded sets X-Forwarded-For/-Proto/-Host on out. A trusted peer's
// X-Forwarded-* are extended; anyone else's, their client-IP headers and
// the rest of untrustedHeaders are dropped (ReverseProxy only removes
// Forwarded and X-Forwarded-For/-Host/-Proto).
func (t *table) setForwarded(pr *httputil.ProxyRequest, c clientAddr) {
	in, out := pr.In, pr.Out
	proto := protoHTTP
	if in.TLS != nil {
		proto = protoHTTPS
	}
	host := in.Host
	xff := c.peer
	if c.trusted {
		if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
			xff = strings.Join(prior, ", ") + ", " + c.peer
		}
		if p := in.Header["X-Forwarded-Proto"]; len(p) == 1 && (p[0] == "https" || p[0] == "http") {
			proto = p
		}
		if h := in.Header["X-Forwarded-Host"]; len(h) == 1 && h[0] != "" {
			host = h[0]
		}
	} else {
		for _, name := range t.cfg.ClientIPHeaders {
			delete(out.Header, name)
		}
		for name := range out.Header {
			if spoofable(name) {
				delete(out.Header, name)
			}
		}
	}
	vals := []string{xff, host} // one allocation for both headers
	out.Header["X-Forwarded-For"] = vals[0:1:1]
	out.Header["X-Forwarded-Proto"] = proto
	if host != "" {
		out.Header["X-Forwarded-Host"] = vals[1:2:2]
	}
}
