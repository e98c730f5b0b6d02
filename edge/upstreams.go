package edge

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	ups "selfhost.dev/edgeapp/edge/upstream"
)

// Routes with several upstreams (Route.Upstreams) forward through an
// ups.Pool, which ReverseProxy uses as its Transport. The pool owns
// its upstreams' transports; routes with one upstream keep the Server's
// shared transports and today's path.

// poolTransport is one pooled upstream's transport. Closing it drains: the
// requests in flight finish, then both the http.Transport's connections
// and the fast path's close.
type poolTransport struct{ *http.Transport }

var _ ups.Transport = poolTransport{}

// CloseIdleConnections closes the idle connections of both pools, and those
// that become idle later.
func (p poolTransport) CloseIdleConnections() { closeIdle(p.Transport) }

// poolDialTimeout is the dial timeout of a pool's upstreams: short enough
// that failing over to the next upstream fits in retry.duration (a dial
// that outlasts the retry budget gives no failover at all).
func poolDialTimeout(c ups.Config, up Upstream) time.Duration {
	c = c.WithDefaults()
	return min(up.DialTimeout, c.Retry.Duration/time.Duration(c.Retry.Tries))
}

// newPool makes route r's pool, adopting the upstreams (and their health)
// of the pool that served the same route before the reload. Callers hold
// s.buildMu.
func (s *Server) newPool(t *table, r *route) *ups.Pool {
	c := *r.Upstreams
	c.Route = r.name
	up := t.cfg.Upstream
	up.DialTimeout = poolDialTimeout(c, up)
	p, err := ups.New(c, ups.Options{
		NewTransport: func(u *url.URL) ups.Transport { return poolTransport{newTransport(up, u.Scheme)} },
		TransportKey: fmt.Sprint(up),
		Previous:     s.pools[r.name],
		Metrics:      s.m.upstream,
		Logger:       s.log,
	})
	if err != nil {
		// Load has checked what New checks; this is a bug.
		panic(fmt.Sprintf("route %s: %v", r.name, err))
	}
	t.pools = append(t.pools, p)
	return p
}

// swapPools makes t's pools the current ones and closes the previous ones:
// their checks stop and the upstreams no new pool adopted drain. Callers
// hold s.buildMu.
func (s *Server) swapPools(t *table) {
	old := s.pools
	s.pools = make(map[string]*ups.Pool, len(t.pools))
	for _, p := range t.pools {
		s.pools[p.Route()] = p
	}
	for _, p := range old {
		// Close waits for a check in flight (up to its timeout): not on the
		// reload's path.
		go p.Close()
	}
}

// closePools stops every pool, at shutdown. Callers hold s.buildMu.
func (s *Server) closePools() {
	for _, p := range s.pools {
		p.Close()
	}
	s.pools = nil
}

// serveUpstreams answers GET /-/upstreams: the state of every pooled
// upstream, by route.
func (s *Server) serveUpstreams(w http.ResponseWriter, r *http.Request) {
	t := s.cur.Load()
	out := []ups.Status{}
	pools := slices.Clone(t.pools)
	slices.SortFunc(pools, func(a, b *ups.Pool) int { return cmp.Compare(a.Route(), b.Route()) })
	for _, p := range pools {
		out = append(out, p.Status()...)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}
