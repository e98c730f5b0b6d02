package upstream

import (
	"context"
	"hash/fnv"
	"net"
	"net/http"
)

// set is the upstreams a pool picks from, replaced whole when DNS changes.
type set struct {
	ups   []*Upstream
	order []int // round robin: indexes of ups, each as often as its weight, interleaved
}

func newSet(ups []*Upstream) *set {
	return &set{ups: ups, order: smoothOrder(ups)}
}

// smoothOrder is nginx's smooth weighted round robin written out once: with
// weights 5,1,1 it gives a a b a c a a, not a a a a a b c, so a heavy
// upstream's turns are spread.
func smoothOrder(ups []*Upstream) []int {
	total := 0
	weights := make([]int, len(ups))
	for i, u := range ups {
		weights[i] = int(u.weight.Load())
		total += weights[i]
	}
	cur := make([]int, len(ups))
	order := make([]int, 0, total)
	for range total {
		best := -1
		for i, w := range weights {
			cur[i] += w
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		order = append(order, best)
	}
	return order
}

// tried is the upstreams one request has been to.
type tried []bool

func (t tried) has(i int) bool { return i < len(t) && t[i] }

// pick returns the index of the upstream for req, or -1 when none is
// available that was not tried already.
func (p *Pool) pick(req *http.Request, s *set, tr tried, now int64) int {
	ok := func(i int) bool { return !tr.has(i) && s.ups[i].available(now) }
	switch p.cfg.Policy {
	case LeastConn:
		return p.leastConn(s, ok)
	case IPHash:
		return ipHash(clientIP(req), s, ok)
	case First:
		for i := range s.ups {
			if ok(i) {
				return i
			}
		}
		return -1
	case Cookie:
		if i := p.sticky.lookup(req, s); i >= 0 && ok(i) {
			return i
		}
	}
	return p.roundRobin(s, ok)
}

func (p *Pool) roundRobin(s *set, ok func(int) bool) int {
	n := len(s.order)
	if n == 0 {
		return -1
	}
	// Each look takes the next turn of the shared counter: a skipped
	// upstream's turns spread over the others instead of all going to the
	// one after it in the order.
	for range n {
		if i := s.order[int((p.rr.Add(1)-1)%uint64(n))]; ok(i) {
			return i
		}
	}
	return -1
}

// leastConn compares in-flight counts relative to weight; ties go round
// the upstreams, so an idle pool still spreads.
func (p *Pool) leastConn(s *set, ok func(int) bool) int {
	n := len(s.ups)
	if n == 0 {
		return -1
	}
	start := int(p.rr.Add(1) % uint64(n))
	best := -1
	var bestLoad, bestWeight int64
	for k := range n {
		i := (start + k) % n
		if !ok(i) {
			continue
		}
		u := s.ups[i]
		load, w := u.inflight.Load(), u.weight.Load()
		if best < 0 || load*bestWeight < bestLoad*w {
			best, bestLoad, bestWeight = i, load, w
		}
	}
	return best
}

// ipHash is rendezvous hashing: each client IP ranks the upstreams by
// hash(ip, upstream) and takes the best available, so an upstream that
// goes or comes moves only its own clients.
func ipHash(ip string, s *set, ok func(int) bool) int {
	best := -1
	var bestScore uint64
	for i, u := range s.ups {
		if !ok(i) {
			continue
		}
		h := fnv.New64a()
		_, _ = h.Write([]byte(ip))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(u.key))
		if sc := mix(h.Sum64()); best < 0 || sc > bestScore {
			best, bestScore = i, sc
		}
	}
	return best
}

// mix is a 64-bit finalizer (splitmix64): FNV alone spreads similar
// inputs (IPs differing in the last octet) poorly over the high bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

type clientIPKey struct{}

// WithClientIP returns ctx carrying the client's IP, which IPHash keys
// on. The edge knows the client (its trusted proxies and headers); without
// it the request's RemoteAddr is used.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

func clientIP(req *http.Request) string {
	if ip, ok := req.Context().Value(clientIPKey{}).(string); ok {
		return ip
	}
	if h, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		return h
	}
	return req.RemoteAddr
}
