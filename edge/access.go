package edge

import (
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// routeAccess is who may reach a route before any credentials are looked
// at: the client IP lists and the rate limit. A route without either has
// none, and pays one nil check per request.
type routeAccess struct {
	allow     []netip.Prefix // nil: everyone not denied
	deny      []netip.Prefix
	limiter   *rateLimiter // nil: no rate limit
	forbidden string       // the 403 body
	policy    []string     // RateLimit-Limit and RateLimit-Policy values

	deniedIP, deniedRate prometheus.Counter
}

// Deny reasons: the access log's deny_reason and edge_denied_total's reason.
const (
	denyIP              = "ip"
	denyRateLimit       = "rate_limit"
	denyBasicAuth       = "basic_auth"
	denyForwardAuth     = "forward_auth"
	denyAuthUnavailable = "forward_auth_unavailable"
)

// newRouteAccess returns the access rules of rc under cfg's global lists,
// or nil when it has none. Callers hold s.buildMu.
func (s *Server) newRouteAccess(cfg *Config, rc Route, name string) *routeAccess {
	allow, deny := rc.Allow, rc.Deny
	if allow == nil {
		allow = cfg.Allow
	}
	if deny == nil {
		deny = cfg.Deny
	}
	// A route's empty list overrides a global one: `allow: []` opens the
	// route to everyone.
	if len(allow) == 0 {
		allow = nil
	}
	if len(deny) == 0 {
		deny = nil
	}
	if allow == nil && deny == nil && rc.RateLimit == nil {
		return nil
	}
	a := &routeAccess{
		allow:      allow,
		deny:       deny,
		forbidden:  "403 Forbidden: your address may not use route " + name + "\n",
		deniedIP:   s.m.denied.WithLabelValues(name, denyIP),
		deniedRate: s.m.denied.WithLabelValues(name, denyRateLimit),
	}
	if rc.RateLimit != nil {
		a.limiter = s.rateLimiter(name, *rc.RateLimit)
		w := int64(a.limiter.window() / time.Second)
		a.policy = []string{
			strconv.Itoa(rc.RateLimit.Burst),
			strconv.Itoa(rc.RateLimit.Burst) + ";w=" + strconv.FormatInt(max(w, 1), 10),
		}
	}
	return a
}

// permits reports whether the client IP ip may use the route: not in deny,
// and in allow when there is one. An IP that cannot be parsed is in no
// list, so it is refused by an allow list and passes a deny list.
func (a *routeAccess) permits(ip string) bool {
	if a.allow == nil && a.deny == nil {
		return true
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return a.allow == nil
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range a.deny {
		if p.Contains(addr) {
			return false
		}
	}
	if a.allow == nil {
		return true
	}
	for _, p := range a.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// admit applies rt's IP lists (403) and rate limit (429) to the request,
// answering it and returning false when it may not pass. It runs before
// Basic Auth and forward auth, so a refused client costs neither a bcrypt
// nor a round trip to the auth server.
func (s *Server) admit(rt *route, ex *exchange, r *http.Request) bool {
	a := rt.access
	w := &ex.rec
	if !a.permits(ex.entry.clientIP) {
		a.deniedIP.Inc()
		ex.entry.denyReason = denyIP
		respond(w, r, rt.headers, http.StatusForbidden, a.forbidden)
		return false
	}
	if a.limiter == nil {
		return true
	}
	v := a.limiter.allow(ex.entry.clientIP, time.Now())
	if v.ok {
		return true
	}
	a.deniedRate.Inc()
	ex.entry.denyReason = denyRateLimit
	h := w.Header()
	// Whole seconds, rounded up: a client that waits this long finds a token.
	h.Set("Retry-After", strconv.FormatInt(ceilSeconds(v.retryAfter), 10))
	// draft-ietf-httpapi-ratelimit-headers-06: the bucket's size, what is
	// left (nothing), and the seconds until the bucket is full again.
	h["Ratelimit-Limit"] = a.policy[0:1:1]
	h["Ratelimit-Policy"] = a.policy[1:2:2]
	h.Set("Ratelimit-Remaining", "0")
	h.Set("Ratelimit-Reset", strconv.FormatInt(ceilSeconds(v.reset), 10))
	respond(w, r, rt.headers, http.StatusTooManyRequests, "429 Too Many Requests: rate limit of route "+rt.name+" exceeded, see Retry-After\n")
	return false
}

// ceilSeconds rounds d up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int64 {
	return max(int64((d+time.Second-1)/time.Second), 1)
}
