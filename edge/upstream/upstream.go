package upstream

import (
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Transport is what an upstream's requests go through. CloseIdleConnections
// must also close the connections that become idle afterwards, so that a
// removed upstream drains: its requests in flight finish, then its
// connections close.
type Transport interface {
	http.RoundTripper
	CloseIdleConnections()
}

// Upstream is one address requests go to, and its health. Its state
// outlives reloads that keep it.
type Upstream struct {
	url    *url.URL     // scheme://host:port, no path
	key    string       // url without path: what reloads and DNS match on
	target string       // the configured URL it came from (differs when expanded)
	weight atomic.Int64 // a reload may change it while the old pool still serves
	tr     Transport
	owner  atomic.Pointer[Pool] // the pool that closes it

	healthy   atomic.Bool  // the active checks' verdict
	downUntil atomic.Int64 // passive: out until this UnixNano
	inflight  atomic.Int64

	mu         sync.Mutex
	fails      []time.Time // passive failures within the window
	okRun      int         // passed checks in a row
	badRun     int         // failed checks in a row
	lastCheck  time.Time
	lastResult string
}

func newUpstream(u *url.URL, target string, weight int, tr Transport) *Upstream {
	up := &Upstream{
		url:    &url.URL{Scheme: u.Scheme, Host: u.Host},
		target: target,
		tr:     tr,
	}
	up.weight.Store(int64(weight))
	up.key = up.url.String()
	up.healthy.Store(true) // until a check says otherwise: no 503 while waiting for the first probe
	return up
}

// available reports whether requests may go to u at now.
func (u *Upstream) available(now int64) bool {
	return u.healthy.Load() && now >= u.downUntil.Load()
}

// fail records a failed request for passive health. It reports whether
// that took the upstream out.
func (u *Upstream) fail(p Passive, now time.Time) bool {
	if p.MaxFails <= 0 {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	cut := now.Add(-p.FailTimeout)
	kept := u.fails[:0]
	for _, t := range u.fails {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	u.fails = append(kept, now)
	if len(u.fails) < p.MaxFails {
		return false
	}
	u.fails = u.fails[:0]
	u.downUntil.Store(now.Add(p.FailTimeout).UnixNano())
	return true
}

// report records one active check and reports whether the verdict changed.
func (u *Upstream) report(h Health, ok bool, result string, now time.Time) (changed bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lastCheck, u.lastResult = now, result
	if ok {
		u.okRun++
		u.badRun = 0
		if !u.healthy.Load() && u.okRun >= h.Healthy {
			u.healthy.Store(true)
			// A passive exclusion ends with a passed check: it is up.
			u.downUntil.Store(0)
			changed = true
		}
	} else {
		u.badRun++
		u.okRun = 0
		if u.healthy.Load() && u.badRun >= h.Unhealthy {
			u.healthy.Store(false)
			changed = true
		}
	}
	return changed
}

// close drains u: requests in flight finish, then its connections close.
func (u *Upstream) close() {
	u.tr.CloseIdleConnections()
}
