package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options are what a Pool needs besides its Config.
type Options struct {
	// NewTransport makes the transport of one upstream. Required.
	NewTransport func(u *url.URL) Transport
	// TransportKey describes the settings NewTransport makes transports
	// with: a Previous pool's upstreams are adopted (with their health and
	// connections) only when it is the same.
	TransportKey string
	// Previous is the pool this one replaces on a reload, or nil. Its
	// upstreams that are still configured keep their health state; the
	// others drain when Previous is closed.
	Previous *Pool
	// Metrics receives the pool's series. If nil, none are kept.
	Metrics *Metrics
	// Logger receives health changes. If nil, slog.Default() is used.
	Logger *slog.Logger
	// Resolver expands names when Config.Resolve is set. If nil,
	// net.DefaultResolver is used.
	Resolver Resolver
}

// Resolver looks up a host's addresses.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

var _ Resolver = (*net.Resolver)(nil)

// Pool spreads one route's requests over its upstreams. It is an
// http.RoundTripper: it picks an upstream, points the request at it and
// sends it through that upstream's transport, trying another when that is
// safe.
type Pool struct {
	cfg    Config
	opts   Options
	log    *slog.Logger
	sticky *sticky // nil unless the Cookie policy
	set    atomic.Pointer[set]
	rr     atomic.Uint64

	// names holds the upstreams made for each target, for DNS expansion.
	mu     sync.Mutex
	byKey  map[string]*Upstream // every upstream this pool made or adopted, by key
	cancel context.CancelFunc
	done   sync.WaitGroup
	closed bool
}

var _ http.RoundTripper = (*Pool)(nil)

// New makes the pool of cfg and starts its health checks (the first at
// once) and its DNS refreshes. Close stops them.
func New(cfg Config, opts Options) (*Pool, error) {
	cfg = cfg.WithDefaults()
	if len(cfg.Targets) == 0 {
		return nil, errors.New("upstream pool: no targets")
	}
	if opts.NewTransport == nil {
		return nil, errors.New("upstream pool: no NewTransport")
	}
	if cfg.Policy == Cookie && cfg.Cookie.Secret == "" {
		return nil, errors.New("upstream pool: the cookie policy needs a secret")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	p := &Pool{cfg: cfg, opts: opts, log: opts.Logger, byKey: make(map[string]*Upstream)}
	if cfg.Policy == Cookie {
		p.sticky = &sticky{name: cfg.Cookie.Name, route: cfg.Route, secret: []byte(cfg.Cookie.Secret)}
	}
	var prev map[string]*Upstream
	if opts.Previous != nil && opts.Previous.opts.TransportKey == opts.TransportKey {
		prev = opts.Previous.current()
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	addrs := p.resolveAll(ctx, nil)
	p.set.Store(p.build(addrs, prev))
	if opts.Metrics != nil {
		opts.Metrics.healthy.add(p)
	}
	if cfg.Resolve > 0 {
		p.done.Add(1)
		go p.resolveLoop(ctx, addrs)
	}
	if cfg.Health.Path != "" {
		p.done.Add(1)
		go p.checkLoop(ctx)
	}
	return p, nil
}

// current returns the upstreams now in use by key.
func (p *Pool) current() map[string]*Upstream {
	m := make(map[string]*Upstream)
	for _, u := range p.set.Load().ups {
		m[u.key] = u
	}
	return m
}

// build makes the set for the resolved addresses: addrs[i] are the hosts
// (host:port) of target i. Upstreams already known (in this pool or in
// prev) are kept with their state.
func (p *Pool) build(addrs [][]string, prev map[string]*Upstream) *set {
	var ups []*Upstream
	seen := make(map[string]bool)
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, t := range p.cfg.Targets {
		for _, host := range addrs[i] {
			u := &url.URL{Scheme: t.URL.Scheme, Host: host}
			key := u.String()
			if seen[key] {
				continue
			}
			seen[key] = true
			up := p.byKey[key]
			if up == nil {
				if old := prev[key]; old != nil {
					up = old
					up.weight.Store(int64(t.Weight))
					if p.cfg.Health.Path == "" {
						up.healthy.Store(true) // no checks any more to bring it back
					}
				} else {
					up = newUpstream(u, t.URL.String(), t.Weight, p.opts.NewTransport(u))
				}
				up.owner.Store(p)
				p.byKey[key] = up
			}
			ups = append(ups, up)
		}
	}
	return newSet(ups)
}

// swap replaces the set with one for addrs and drains the upstreams that
// are gone.
func (p *Pool) swap(addrs [][]string) {
	s := p.build(addrs, nil)
	p.set.Store(s)
	keep := make(map[string]bool)
	for _, u := range s.ups {
		keep[u.key] = true
	}
	p.mu.Lock()
	var gone []*Upstream
	for k, u := range p.byKey {
		if !keep[k] {
			gone = append(gone, u)
			delete(p.byKey, k)
		}
	}
	p.mu.Unlock()
	for _, u := range gone {
		p.log.Info("upstream removed", "route", p.cfg.Route, "upstream", u.url.Host)
		p.release(u)
	}
}

// release drains u and drops its series, unless another pool adopted it.
func (p *Pool) release(u *Upstream) {
	if u.owner.Load() != p {
		return
	}
	u.close()
}

// Close stops the pool's checks and refreshes and drains the upstreams that
// no newer pool adopted: their requests in flight finish, then their
// connections close.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.done.Wait()
	if p.opts.Metrics != nil {
		p.opts.Metrics.healthy.remove(p)
	}
	p.mu.Lock()
	ups := make([]*Upstream, 0, len(p.byKey))
	for _, u := range p.byKey {
		ups = append(ups, u)
	}
	p.mu.Unlock()
	for _, u := range ups {
		p.release(u)
	}
}

// NoHealthyError is the error of a request that found no available
// upstream. The edge answers it with 503 and Retry-After.
type NoHealthyError struct {
	Route string
	// RetryAfter is when an upstream may be back: the health interval, or
	// the passive fail_timeout.
	RetryAfter time.Duration
}

func (e *NoHealthyError) Error() string {
	return "no healthy upstream for route " + e.Route
}

// RoundTrip implements http.RoundTripper. A request that could not be
// sent (the connection could not be made) goes to the next available
// upstream, whatever its method. One that was sent is tried again only
// when idempotent (GET, HEAD, OPTIONS, TRACE, or PUT and DELETE without a
// body): a POST that reached an upstream is never repeated. Config.Retry
// bounds the tries and the time in which a new one may start.
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	s := p.set.Load()
	start := time.Now()
	hasBody := req.Body != nil && req.Body != http.NoBody
	var body *replayGuard
	if hasBody {
		// The transport closes the body of a failed request; a dial error
		// reads nothing of it, so it can go to the next upstream as it is.
		body = &replayGuard{rc: req.Body}
	}
	tr := make(tried, len(s.ups))
	var lastErr error
	for try := 1; ; try++ {
		now := time.Now()
		i := p.pick(req, s, tr, now.UnixNano())
		if i < 0 {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, &NoHealthyError{Route: p.cfg.Route, RetryAfter: p.retryAfter()}
		}
		tr[i] = true
		u := s.ups[i]
		out := new(http.Request)
		*out = *req
		ou := *req.URL
		ou.Scheme, ou.Host = u.url.Scheme, u.url.Host
		out.URL = &ou
		if hasBody {
			out.Body = body
		}
		u.inflight.Add(1)
		res, err := u.tr.RoundTrip(out)
		if err == nil {
			p.count(u, strconv.Itoa(res.StatusCode))
			if p.cfg.Passive.Status5xx && res.StatusCode >= 500 && u.fail(p.cfg.Passive, now) {
				p.log.Warn("upstream out after failures", "route", p.cfg.Route, "upstream", u.url.Host, "for", p.cfg.Passive.FailTimeout.String())
			}
			if p.sticky != nil {
				p.sticky.setCookie(req, res, u)
			}
			res.Body = trackBody(res.Body, u)
			return res, nil
		}
		u.inflight.Add(-1)
		if req.Context().Err() != nil {
			// The client went away: not the upstream's fault.
			return nil, err
		}
		p.count(u, "error")
		if u.fail(p.cfg.Passive, now) {
			p.log.Warn("upstream out after failures", "route", p.cfg.Route, "upstream", u.url.Host, "for", p.cfg.Passive.FailTimeout.String(), "err", err)
		}
		lastErr = fmt.Errorf("upstream %s: %w", u.url.Host, err)
		reason := "dial"
		if !IsDialError(err) {
			if !Idempotent(req) {
				return nil, lastErr
			}
			reason = "error"
		}
		if body != nil && body.read.Load() {
			return nil, lastErr // part of the body went: it cannot be sent again
		}
		if try >= p.cfg.Retry.Tries || time.Since(start) >= p.cfg.Retry.Duration {
			return nil, lastErr
		}
		if p.opts.Metrics != nil {
			p.opts.Metrics.retries.WithLabelValues(p.cfg.Route, reason).Inc()
		}
	}
}

func (p *Pool) retryAfter() time.Duration {
	if p.cfg.Health.Path != "" {
		return p.cfg.Health.Interval
	}
	if p.cfg.Passive.MaxFails > 0 {
		return p.cfg.Passive.FailTimeout
	}
	return time.Second
}

func (p *Pool) count(u *Upstream, code string) {
	if p.opts.Metrics != nil {
		p.opts.Metrics.requests.WithLabelValues(p.cfg.Route, u.url.Host, code).Inc()
	}
}

// IsDialError reports whether err is a failure to connect: nothing of the
// request was sent. Both http.Transport and the edge's fast path return
// the dialer's *net.OpError with Op "dial", wrapped.
func IsDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// Idempotent reports whether req may be sent again after it reached an
// upstream: GET, HEAD, OPTIONS and TRACE, and PUT and DELETE without a
// body (a body read once is gone).
func Idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	case http.MethodPut, http.MethodDelete:
		return req.Body == nil || req.Body == http.NoBody
	}
	return false
}

// replayGuard hands a request body to one try after another: it ignores
// Close (the transport of a failed try closes it) and notes whether any
// of it was read.
type replayGuard struct {
	rc   io.ReadCloser
	read atomic.Bool
}

func (g *replayGuard) Read(p []byte) (int, error) {
	g.read.Store(true)
	return g.rc.Read(p)
}

// Close does nothing: the server closes the client's body.
func (g *replayGuard) Close() error { return nil }

// Unwrap returns the client's body.
func (g *replayGuard) Unwrap() io.ReadCloser { return g.rc }

// trackBody counts u's request as in flight until its response body is
// closed, which is what least_conn compares. A 101's body is the upgraded
// connection, which ReverseProxy writes to: the wrapper keeps Write.
func trackBody(rc io.ReadCloser, u *Upstream) io.ReadCloser {
	if rwc, ok := rc.(io.ReadWriteCloser); ok {
		return &trackedRWBody{trackedBody{rc: rc, u: u}, rwc}
	}
	return &trackedBody{rc: rc, u: u}
}

type trackedBody struct {
	rc   io.ReadCloser
	u    *Upstream
	once atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) { return b.rc.Read(p) }

func (b *trackedBody) Close() error {
	if b.once.CompareAndSwap(false, true) {
		b.u.inflight.Add(-1)
	}
	return b.rc.Close()
}

// Unwrap returns the transport's body.
func (b *trackedBody) Unwrap() io.ReadCloser { return b.rc }

type trackedRWBody struct {
	trackedBody
	w io.Writer
}

func (b *trackedRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }
