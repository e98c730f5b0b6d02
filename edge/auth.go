package edge

import (
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// userSet is one named credential set of a table.
type userSet struct {
	name  string
	realm string // the WWW-Authenticate challenge
	users map[string]*userEntry
	dummy []byte // a hash of the set's cost, compared for unknown users
}

type userEntry struct {
	name string
	hash []byte
}

// authResult is the outcome of checking a request's credentials.
type authResult int

const (
	authOK        authResult = iota
	authMissing              // no Basic credentials: challenge, not a failure
	authFailed               // wrong user or password
	authThrottled            // too many failures from this client
	authBusy                 // no bcrypt slot came free in time: 503, not a failure
)

// bcryptWaitMax bounds the wait for a bcrypt slot. A flood of logins from
// many addresses queues behind bcryptSlots; past this wait a request is
// answered 503 rather than holding its connection and goroutine.
const bcryptWaitMax = 3 * time.Second

// authenticator checks Basic credentials. Its cache and throttle outlive
// reloads; the user sets come from the table.
type authenticator struct {
	cache    *authCache
	throttle *throttle
	// bcryptSlots bounds concurrent bcrypt comparisons, so a flood of wrong
	// passwords from many addresses costs at most the machine's cores.
	bcryptSlots chan struct{}

	mu      sync.Mutex
	dummies map[int][]byte // dummy hashes by cost
}

func newAuthenticator() *authenticator {
	return &authenticator{
		cache:       newAuthCache(),
		throttle:    newThrottle(),
		bcryptSlots: make(chan struct{}, runtime.GOMAXPROCS(0)),
		dummies:     make(map[int][]byte),
	}
}

// dummyHash returns a hash of the given cost to compare unknown users
// against, so they cost the same time as known ones.
func (a *authenticator) dummyHash(cost int) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	if h, ok := a.dummies[cost]; ok {
		return h
	}
	var pw [16]byte
	_, _ = rand.Read(pw[:])
	h, err := bcrypt.GenerateFromPassword(pw[:], cost)
	if err != nil {
		h, _ = bcrypt.GenerateFromPassword(pw[:], bcrypt.DefaultCost)
	}
	a.dummies[cost] = h
	return h
}

// newUserSet builds a set from validated users.
func (a *authenticator) newUserSet(name string, users []User) *userSet {
	s := &userSet{name: name, realm: `Basic realm="` + name + `", charset="UTF-8"`, users: make(map[string]*userEntry)}
	maxCost := bcrypt.MinCost
	for _, u := range users {
		s.users[u.Name] = &userEntry{name: u.Name, hash: []byte(u.Hash)}
		if c, err := bcrypt.Cost([]byte(u.Hash)); err == nil && c > maxCost {
			maxCost = c
		}
	}
	s.dummy = a.dummyHash(maxCost)
	return s
}

// check verifies the Basic credentials in header (the Authorization value)
// against set. It returns the user's name on success, and how long to wait
// when throttled. limit is the table's failures per minute (0: no throttle).
//
// The order matters. A cached success is honoured first: it costs no bcrypt
// and proves nothing new, so a throttled address (a NAT shared with a
// guesser) does not lock out an admin already logged in. Then the attempt
// is counted before bcrypt, under the throttle's lock: attempts made plus
// attempts in progress may not pass the limit, so a burst of requests
// released together cannot all get past the check while the first ones are
// still hashing (a success gives its attempt back). The wait for a bcrypt
// slot is bounded, and the cache and the throttle are checked again once
// the slot is held.
func (a *authenticator) check(ctx context.Context, set *userSet, header, clientIP string, limit int, now time.Time) (user string, res authResult, retry time.Duration) {
	var buf [256]byte
	name, pass, ok := parseBasic(header, buf[:])
	if !ok {
		if limit > 0 {
			if wait := a.throttle.blocked(clientIP, limit, now); wait > 0 {
				return "", authThrottled, wait
			}
		}
		return "", authMissing, 0
	}
	u := set.users[string(name)]
	var key [32]byte
	if u != nil {
		key = a.cache.key(u.name, u.hash, pass)
		if a.cache.valid(key, now) {
			return u.name, authOK, 0
		}
	}
	var f *failures
	if limit > 0 {
		var wait time.Duration
		if f, wait = a.throttle.begin(clientIP, limit, now); f == nil {
			return "", authThrottled, wait
		}
	}
	if !a.acquire(ctx) {
		a.throttle.end(f, false)
		return "", authBusy, time.Second
	}
	defer a.release()
	if u != nil && a.cache.valid(key, now) {
		// A request with the same password finished while this one waited.
		a.throttle.end(f, false)
		return u.name, authOK, 0
	}
	if wait := a.throttle.over(f, limit, now); wait > 0 {
		a.throttle.end(f, false)
		return "", authThrottled, wait
	}
	if u != nil {
		if bcrypt.CompareHashAndPassword(u.hash, pass) == nil {
			a.cache.put(key, now)
			a.throttle.end(f, false)
			return u.name, authOK, 0
		}
	} else {
		_ = bcrypt.CompareHashAndPassword(set.dummy, pass) // unknown users cost the same as known ones
	}
	a.throttle.end(f, true)
	return "", authFailed, 0
}

// acquire takes a bcrypt slot, waiting at most bcryptWaitMax, and not past
// the end of ctx (the client went away).
func (a *authenticator) acquire(ctx context.Context) bool {
	select {
	case a.bcryptSlots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(bcryptWaitMax)
	defer t.Stop()
	select {
	case a.bcryptSlots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (a *authenticator) release() { <-a.bcryptSlots }

// parseBasic decodes "Basic base64(user:pass)" into buf, without allocating.
func parseBasic(header string, buf []byte) (user, pass []byte, ok bool) {
	const prefix = "basic "
	if len(header) < len(prefix) || !hasPrefixFold(header, prefix) {
		return nil, nil, false
	}
	enc := header[len(prefix):]
	for len(enc) > 0 && enc[0] == ' ' {
		enc = enc[1:]
	}
	var src [344]byte // base64 of 256 bytes; a copy, as []byte(enc) would allocate
	if len(enc) > len(src) || base64.StdEncoding.DecodedLen(len(enc)) > len(buf) {
		return nil, nil, false
	}
	n, err := base64.StdEncoding.Decode(buf, src[:copy(src[:], enc)])
	if err != nil {
		return nil, nil, false
	}
	dec := buf[:n]
	for i, c := range dec {
		if c == ':' {
			return dec[:i], dec[i+1:], true
		}
	}
	return nil, nil, false
}

// authCache remembers successful verifications, so a dashboard polling
// every few seconds costs a hash lookup, not a bcrypt run. Keys are a keyed
// SHA-256 of the user, the stored hash and the password: a memory dump shows
// no password, and changing a user's hash on reload invalidates its entries.
type authCache struct {
	secret [32]byte
	ttl    atomic.Int64 // nanoseconds
	max    atomic.Int64

	mu      sync.RWMutex
	entries map[[32]byte]int64 // key -> expiry, unix nanoseconds
}

func newAuthCache() *authCache {
	c := &authCache{entries: make(map[[32]byte]int64)}
	_, _ = rand.Read(c.secret[:])
	return c
}

// configure sets the TTL and the bound; a TTL or bound of 0 turns caching off.
func (c *authCache) configure(ttl time.Duration, max int) {
	c.ttl.Store(int64(ttl))
	c.max.Store(int64(max))
	if max == 0 || ttl == 0 {
		c.mu.Lock()
		clear(c.entries)
		c.mu.Unlock()
	}
}

func (c *authCache) key(user string, hash, pass []byte) [32]byte {
	var buf [512]byte
	b := append(buf[:0], c.secret[:]...)
	b = append(b, user...)
	b = append(b, 0)
	b = append(b, hash...)
	b = append(b, 0)
	b = append(b, pass...)
	return sha256.Sum256(b)
}

func (c *authCache) valid(key [32]byte, now time.Time) bool {
	c.mu.RLock()
	exp, ok := c.entries[key]
	c.mu.RUnlock()
	return ok && now.UnixNano() < exp
}

func (c *authCache) put(key [32]byte, now time.Time) {
	ttl, max := c.ttl.Load(), c.max.Load()
	if ttl <= 0 || max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if int64(len(c.entries)) >= max {
		// Drop the expired entries; if none were, drop arbitrary ones (map
		// order is random) until there is room.
		n := now.UnixNano()
		for k, exp := range c.entries {
			if exp <= n {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if int64(len(c.entries)) < max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = now.UnixNano() + ttl
}

// throttleWindow is the period over which failures are counted.
const throttleWindow = time.Minute

// throttleMaxClients bounds the throttle's memory under a flood of addresses.
const throttleMaxClients = 100_000

// throttle counts login attempts per client in fixed one-minute windows:
// those that failed, and those being verified now. Clients are keyed by
// throttleKey, so one host cannot spread its guesses over spellings of its
// address or over the addresses of its IPv6 /64.
type throttle struct {
	mu      sync.Mutex
	clients map[string]*failures
	order   list.List    // of *failures, oldest window first: the eviction order
	size    atomic.Int64 // len(clients), read without the lock
	max     int          // throttleMaxClients; smaller in tests
}

type failures struct {
	key     string
	start   time.Time // the window's start
	n       int       // failed attempts in the window
	pending int       // attempts counted by begin and not yet ended
	elem    *list.Element
}

func newThrottle() *throttle {
	return &throttle{clients: make(map[string]*failures), max: throttleMaxClients}
}

// throttleKey is the throttle's key for a client IP: the canonical form of
// the address (IPv4-mapped IPv6 unmapped, zone dropped, so 2001:DB8::1 and
// 2001:0db8::1 are one client), and for IPv6 its /64 prefix, since one host
// commonly holds a whole /64. Something that is not an IP is used as is.
func throttleKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return strings.Clone(ip) // ip may be a slice of a big header
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// blocked returns how long ip must wait because of its failed attempts, or 0.
func (t *throttle) blocked(ip string, limit int, now time.Time) time.Duration {
	if t.size.Load() == 0 {
		return 0
	}
	key := throttleKey(ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.current(key, now)
	if f == nil || f.n < limit {
		return 0
	}
	return f.start.Add(throttleWindow).Sub(now)
}

// current returns key's entry with its window brought up to date, or nil.
// Callers hold t.mu.
func (t *throttle) current(key string, now time.Time) *failures {
	f := t.clients[key]
	if f == nil || now.Before(f.start.Add(throttleWindow)) {
		return f
	}
	if f.pending == 0 {
		t.remove(f)
		return nil
	}
	f.start, f.n = now, 0
	t.order.MoveToBack(f.elem)
	return f
}

func (t *throttle) remove(f *failures) {
	if t.clients[f.key] == f {
		delete(t.clients, f.key)
		t.order.Remove(f.elem)
		t.size.Store(int64(len(t.clients)))
	}
}

// begin counts an attempt of ip before it is verified. When the failed
// attempts of the window and those in progress already reach limit, it
// returns nil and how long to wait; otherwise the entry to pass to end.
func (t *throttle) begin(ip string, limit int, now time.Time) (*failures, time.Duration) {
	key := throttleKey(ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.current(key, now)
	if f == nil {
		// Full: the oldest windows go first, expired or not, so a flood
		// of new addresses cannot keep new clients from being counted.
		for len(t.clients) >= t.max && t.order.Len() > 0 {
			t.remove(t.order.Front().Value.(*failures))
		}
		f = &failures{key: key, start: now}
		f.elem = t.order.PushBack(f)
		t.clients[key] = f
		t.size.Store(int64(len(t.clients)))
	}
	if f.n+f.pending >= limit {
		wait := f.start.Add(throttleWindow).Sub(now)
		if f.n < limit {
			// Attempts in progress fill the limit; they may succeed.
			wait = min(wait, time.Second)
		}
		return nil, max(wait, time.Second)
	}
	f.pending++
	return f, 0
}

// over returns how long to wait if the failures of f's window alone reach
// limit (a reload may have lowered it while the attempt waited), or 0.
func (t *throttle) over(f *failures, limit int, now time.Time) time.Duration {
	if f == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if f.n < limit {
		return 0
	}
	return max(f.start.Add(throttleWindow).Sub(now), time.Second)
}

// end finishes an attempt counted by begin: a failure is recorded, anything
// else gives the attempt back. f may be nil (no throttle), or evicted.
func (t *throttle) end(f *failures, failed bool) {
	if f == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f.pending--
	if failed {
		f.n++
	}
	if f.n == 0 && f.pending == 0 {
		t.remove(f)
	}
}
