package edge

import (
	"cmp"
	"net/http/httputil"
	"slices"
	"strings"

	ups "selfhost.dev/edgeapp/edge/upstream"
)

// table is an immutable routing table built from one Config. The Server
// swaps whole tables on reload; a request uses the table it started with
// until it ends, so in-flight requests and open websockets finish on the
// routes they were routed by.
type table struct {
	cfg     *Config
	any     []*route            // routes without host, longest path first
	byHost  map[string][]*route // routes with a host, longest path first
	headers []headerOp          // the global header operations
	// failLimit is basic_auth.failures_per_minute.
	failLimit int
	// pools are the pools of the routes with several upstreams.
	pools []*ups.Pool
	// authHeaders are the copy_headers of every auth server, lower case,
	// removed from every request (forwardauth.go); nil without auth servers.
	authHeaders []string
	// pages are the operator's error pages (error_pages).
	pages *ErrorPages
}

// route is a Route made ready to serve: its proxy, its user set, its header
// operations and its metrics are built once, at table build.
type route struct {
	Route
	name      string // label and log value: the path, host-qualified when set
	upstream  string // To, for the log
	baseRaw   string // To's escaped path, prepended to forwarded paths
	baseDec   string // To's path
	stripDec  int    // length of Path once unescaped
	proxy     *httputil.ReverseProxy
	pool      *ups.Pool // nil with one upstream
	users     *userSet  // nil without auth
	headers   []headerOp
	m         *routeMetrics
	tooLarge  string // the 413 body
	noGateway string // the 502 body
	timeout   string // the 504 body
	noHealthy string // the 503 body when a pool has no upstream available

	access *routeAccess // allow/deny and rate limit; nil without them (access.go)
	fwd    *forwardAuth // nil without forward_auth (forwardauth.go)
	encode []string     // the encodings responses may get: the route's, or the global ones
}

// lookup returns the route for host and the normalized path, or nil. It
// does not allocate.
func (t *table) lookup(host, path string) *route {
	if len(t.byHost) > 0 {
		if rs := t.byHost[hostKey(host)]; rs != nil {
			if r := match(rs, path); r != nil {
				return r
			}
		}
	}
	return match(t.any, path)
}

// match returns the longest route of rs (sorted longest first) whose path is
// a prefix of path on a segment boundary, ignoring ASCII case.
func match(rs []*route, path string) *route {
	for _, r := range rs {
		n := len(r.Path)
		if len(path) < n || !hasPrefixFold(path, r.Path) {
			continue
		}
		if len(path) == n || r.Path == "/" || path[n] == '/' {
			return r
		}
	}
	return nil
}

// hostKey strips the port and one trailing dot from a Host header and
// lower-cases it, the form route hosts are stored in: "Admin.Test.:8080"
// must find the routes of admin.test, not fall through to those without a
// host. It allocates only when there is upper case to fold.
func hostKey(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if 'A' <= host[i] && host[i] <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

// sortRoutes orders routes longest path first, which is the match order.
func sortRoutes(rs []*route) {
	slices.SortStableFunc(rs, func(a, b *route) int { return cmp.Compare(len(b.Path), len(a.Path)) })
}

// buildTable makes the table for cfg. The Server supplies what outlives
// tables: transports, metrics, the authenticator.
func (s *Server) buildTable(cfg *Config) *table {
	t := &table{
		cfg:       cfg,
		byHost:    make(map[string][]*route),
		headers:   headerOps(cfg.Headers, nil),
		failLimit: cfg.BasicAuth.FailuresPerMinute,
		pages:     &cfg.ErrorPages,
	}
	t.authHeaders = copyHeaderNames(cfg)
	sets := make(map[string]*userSet)
	for name, users := range cfg.Users {
		sets[name] = s.auth.newUserSet(name, users)
	}
	for _, rc := range cfg.Routes {
		r := &route{
			Route:    rc,
			name:     hostPath(rc.Host, rc.Path),
			stripDec: len(unescapePath(rc.Path)),
			headers:  headerOps(cfg.Headers, rc.Headers),
			encode:   cfg.Encode,
		}
		if rc.EncodeSet {
			r.encode = rc.Encode
		}
		if rc.To != nil {
			r.upstream, r.baseRaw, r.baseDec = rc.To.String(), rc.To.EscapedPath(), rc.To.Path
		}
		if rc.Auth != "" {
			r.users = sets[rc.Auth]
		}
		r.m = s.routeMetrics(r.name)
		r.access = s.newRouteAccess(cfg, rc, r.name)
		if rc.ForwardAuth != "" {
			r.fwd = s.newForwardAuth(cfg, rc, r.name)
		}
		r.tooLarge = "413 Request Entity Too Large: the request body exceeds the " + formatSize(rc.MaxBody) + " limit of route " + r.name + "\n"
		r.noGateway = "502 Bad Gateway: the upstream of route " + r.name + " is unreachable\n"
		r.noHealthy = "503 Service Unavailable: no healthy upstream for route " + r.name + "\n"
		r.timeout = "504 Gateway Timeout: the upstream of route " + r.name + " did not answer in time\n"
		switch {
		case rc.Upstreams != nil:
			r.upstream = poolLabel(rc.Upstreams)
			r.pool = s.newPool(t, r)
			r.proxy = s.newProxy(t, r)
		case rc.To != nil:
			r.proxy = s.newProxy(t, r)
		default:
			r.upstream = "redirect"
		}
		if rc.Host != "" {
			t.byHost[rc.Host] = append(t.byHost[rc.Host], r)
		} else {
			t.any = append(t.any, r)
		}
	}
	sortRoutes(t.any)
	for _, rs := range t.byHost {
		sortRoutes(rs)
	}
	return t
}

// all returns every route of t.
func (t *table) all() []*route {
	out := slices.Clone(t.any)
	for _, rs := range t.byHost {
		out = append(out, rs...)
	}
	return out
}
