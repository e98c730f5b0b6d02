package edge

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
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
)

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
func (a *authenticator) check(set *userSet, header, clientIP string, limit int, now time.Time) (user string, res authResult, retry time.Duration) {
	if limit > 0 {
		if wait := a.throttle.blocked(clientIP, limit, now); wait > 0 {
			return "", authThrottled, wait
		}
	}
	var buf [256]byte
	name, pass, ok := parseBasic(header, buf[:])
	if !ok {
		return "", authMissing, 0
	}
	u := set.users[string(name)]
	if u != nil {
		key := a.cache.key(u.name, u.hash, pass)
		if a.cache.valid(key, now) {
			return u.name, authOK, 0
		}
		if a.compare(u.hash, pass) {
			a.cache.put(key, now)
			return u.name, authOK, 0
		}
	} else {
		a.compare(set.dummy, pass) // unknown users cost the same as known ones
	}
	if limit > 0 {
		a.throttle.fail(clientIP, now)
	}
	return "", authFailed, 0
}

func (a *authenticator) compare(hash, pass []byte) bool {
	a.bcryptSlots <- struct{}{}
	defer func() { <-a.bcryptSlots }()
	return bcrypt.CompareHashAndPassword(hash, pass) == nil
}

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

// throttle counts failed logins per client IP in fixed one-minute windows.
type throttle struct {
	mu      sync.Mutex
	clients map[string]*failures
	size    atomic.Int64 // len(clients), read without the lock
}

type failures struct {
	start time.Time
	n     int
}

func newThrottle() *throttle { return &throttle{clients: make(map[string]*failures)} }

// blocked returns how long ip must wait, or 0.
func (t *throttle) blocked(ip string, limit int, now time.Time) time.Duration {
	if t.size.Load() == 0 {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.clients[ip]
	if f == nil {
		return 0
	}
	end := f.start.Add(throttleWindow)
	if !now.Before(end) {
		delete(t.clients, ip)
		t.size.Store(int64(len(t.clients)))
		return 0
	}
	if f.n < limit {
		return 0
	}
	return end.Sub(now)
}

func (t *throttle) fail(ip string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.clients[ip]
	if f == nil || !now.Before(f.start.Add(throttleWindow)) {
		if len(t.clients) >= throttleMaxClients {
			for k, v := range t.clients {
				if !now.Before(v.start.Add(throttleWindow)) {
					delete(t.clients, k)
				}
			}
		}
		if len(t.clients) >= throttleMaxClients {
			return // under a flood this big, bcryptSlots is the bound
		}
		f = &failures{start: now}
		t.clients[strings.Clone(ip)] = f // ip may be a slice of a big header
	}
	f.n++
	t.size.Store(int64(len(t.clients)))
}
