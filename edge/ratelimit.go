package edge

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// rateLimiter is one route's token buckets, one per client (rateKey). The
// buckets are golang.org/x/time/rate Limiters; the least recently seen
// client is forgotten when MaxClients are held, so a flood of addresses
// costs a bounded amount of memory (forgetting a client gives it a full
// bucket again, which is the price of the bound). It outlives reloads that
// leave the route's name and its rate_limit unchanged.
type rateLimiter struct {
	conf  RateLimit
	limit rate.Limit // tokens per second

	// One lock for the map, the LRU list and the buckets: the bucket is
	// used under it, so an evicted bucket can never be in use elsewhere,
	// and the critical section is a map lookup and a few float operations.
	mu         sync.Mutex
	clients    map[netip.Addr]*bucket
	head, tail *bucket // most recently seen first
}

// bucket is one client's token bucket, a node of the LRU list.
type bucket struct {
	key        netip.Addr
	lim        *rate.Limiter
	prev, next *bucket
}

func newRateLimiter(conf RateLimit) *rateLimiter {
	return &rateLimiter{
		conf:    conf,
		limit:   rate.Limit(float64(conf.Rate) / conf.Per.Seconds()),
		clients: make(map[netip.Addr]*bucket),
	}
}

// rateKey is the client key of an IP: the address itself for IPv4 (and
// IPv4-mapped IPv6), its /64 for IPv6, since one host commonly holds a
// whole /64. Anything that is not an IP shares the zero key.
func rateKey(ip string) netip.Addr {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{}
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// rateVerdict is the outcome of one request against a rate limit.
type rateVerdict struct {
	ok         bool
	retryAfter time.Duration // until one request will pass
	reset      time.Duration // until the bucket is full again
}

// allow takes a token for ip at now. It does not allocate for a client it
// already holds.
func (rl *rateLimiter) allow(ip string, now time.Time) rateVerdict {
	key := rateKey(ip)
	rl.mu.Lock()
	defer rl.mu.Unlock()
	b := rl.clients[key]
	switch {
	case b != nil:
		rl.unlink(b)
	case len(rl.clients) >= rl.conf.MaxClients:
		// Reuse the least recently seen client's node for this one.
		b = rl.tail
		rl.unlink(b)
		delete(rl.clients, b.key)
		b.key, b.lim = key, rate.NewLimiter(rl.limit, rl.conf.Burst)
		rl.clients[key] = b
	default:
		b = &bucket{key: key, lim: rate.NewLimiter(rl.limit, rl.conf.Burst)}
		rl.clients[key] = b
	}
	rl.pushFront(b)
	if b.lim.AllowN(now, 1) {
		return rateVerdict{ok: true}
	}
	tokens := b.lim.TokensAt(now)
	return rateVerdict{
		retryAfter: rl.seconds(1 - tokens),
		reset:      rl.seconds(float64(rl.conf.Burst) - tokens),
	}
}

// seconds is how long the bucket takes to gain n tokens.
func (rl *rateLimiter) seconds(n float64) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(n / float64(rl.limit) * float64(time.Second)))
}

// window is the period over which Burst requests are allowed from a full
// bucket: what RateLimit-Policy calls its window.
func (rl *rateLimiter) window() time.Duration {
	return rl.seconds(float64(rl.conf.Burst))
}

// len returns how many clients are held.
func (rl *rateLimiter) len() int {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return len(rl.clients)
}

func (rl *rateLimiter) unlink(b *bucket) {
	if b.prev != nil {
		b.prev.next = b.next
	} else if rl.head == b {
		rl.head = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	} else if rl.tail == b {
		rl.tail = b.prev
	}
	b.prev, b.next = nil, nil
}

func (rl *rateLimiter) pushFront(b *bucket) {
	b.next = rl.head
	if rl.head != nil {
		rl.head.prev = b
	}
	rl.head = b
	if rl.tail == nil {
		rl.tail = b
	}
}

// rateLimiter returns the kept limiter of a route, or a new one when the
// route is new or its rate_limit changed. Callers hold s.buildMu.
func (s *Server) rateLimiter(name string, conf RateLimit) *rateLimiter {
	if rl, ok := s.limiters[name]; ok && rl.conf == conf {
		return rl
	}
	rl := newRateLimiter(conf)
	s.limiters[name] = rl
	return rl
}

// dropUnusedLimiters forgets the limiters t does not use. Callers hold
// s.buildMu.
func (s *Server) dropUnusedLimiters(t *table) {
	used := make(map[*rateLimiter]bool)
	for _, r := range t.all() {
		if r.access != nil && r.access.limiter != nil {
			used[r.access.limiter] = true
		}
	}
	for name, rl := range s.limiters {
		if !used[rl] {
			delete(s.limiters, name)
		}
	}
}
