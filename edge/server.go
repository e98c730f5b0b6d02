package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"selfhost.dev/edgeapp/edge/autotls"
	ups "selfhost.dev/edgeapp/edge/upstream"
)

// Options are what a Server needs besides its Config.
type Options struct {
	// Logger receives the edge's own log (not the access log). If nil,
	// slog.Default() is used.
	Logger *slog.Logger
	// Registry receives the edge's metrics and is served on /metrics. If
	// nil, a new registry is used.
	Registry *prometheus.Registry
	// Load reads the configuration again on Reload. If nil, Reload fails.
	Load func() (*Config, error)
	// AccessLog receives the access log. If nil, Config.AccessLog is opened.
	AccessLog io.Writer
	// Listen returns the listening socket called name ("public", "admin"
	// for ListenAndServe; "tls", "http" for Serve with `tls:` and no
	// TLSListener, HTTPListener): inherited from the process this one
	// replaces, from systemd, or bound now (Upgrader.Listen). If nil,
	// net.Listen is used.
	Listen func(name, network, addr string) (net.Listener, error)
	// Ready is called once Serve serves on every listener: the moment a
	// process that replaces another says it took over. An error is logged;
	// the process it replaces then times out, kills it and serves on. If
	// nil, nothing is called.
	Ready func() error
	// Upgrade replaces the running binary (POST /-/upgrade on the admin
	// port): it returns once the new process serves, or why it failed. If
	// nil, the admin port has no /-/upgrade.
	Upgrade func(ctx context.Context) error
	// TLSListener and HTTPListener serve the `tls:` block's listen and
	// http_listen. If nil, Serve listens on the configured addresses.
	TLSListener, HTTPListener net.Listener
}

// Server is the edge: the public handler, the admin handler, the current
// route table and what outlives reloads (upstream transports, metrics, the
// Basic Auth cache and throttle).
type Server struct {
	log      *slog.Logger
	proxyLog *log.Logger
	reg      *prometheus.Registry
	m        *metrics
	load     func() (*Config, error)
	auth     *authenticator
	ids      *requestIDs
	buffers  *bufferPool
	alog     *accessLog // nil when off
	alogFile *os.File   // the access log file, if it is one; guarded by buildMu
	started  *Config    // what the listeners and limits were made from

	cur atomic.Pointer[table]

	reloadMu   sync.Mutex // serializes reloads, so the last file read is the one that serves
	buildMu    sync.Mutex // serializes table builds
	transports map[transportKey]*http.Transport
	pools      map[string]*ups.Pool // the current table's, by route name
	routeM     map[string]*routeMetrics
	noRoute    *routeMetrics

	// Who may pass: rate limiters by route name, kept across reloads
	// (ratelimit.go), and the Transport of forward auth (forwardauth.go).
	limiters     map[string]*rateLimiter
	fwdTransport *http.Transport

	inflight  atomic.Int64 // requests in handlers, websockets included
	exchanges sync.Pool

	baseCtx    context.Context // parent of every request context
	cancelBase context.CancelFunc

	listen        func(name, network, addr string) (net.Listener, error)
	ready         func() error
	upgrade       func(ctx context.Context) error
	handover      chan struct{} // closed by Handover (upgrade.go)
	handOnce      sync.Once
	draining      atomic.Bool                     // answer with Connection: close (upgrade.go)
	tlsLn, httpLn net.Listener                    // from Options, for `tls:`
	tlsMgr        atomic.Pointer[autotls.Manager] // set by Serve with `tls:`
	tlsStatic     atomic.Pointer[autotls.Static]  // set by Serve with tls.certificate
}

var _ http.Handler = (*Server)(nil)

// New returns a Server for cfg, which must come from Load.
func New(cfg *Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	s := &Server{
		log:        opts.Logger,
		proxyLog:   slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		reg:        opts.Registry,
		m:          m,
		load:       opts.Load,
		auth:       newAuthenticator(),
		ids:        newRequestIDs(),
		buffers:    &bufferPool{},
		started:    cfg,
		transports: make(map[transportKey]*http.Transport),
		routeM:     make(map[string]*routeMetrics),

		limiters:     make(map[string]*rateLimiter),
		fwdTransport: newFwdTransport(),
		listen:       opts.Listen,
		ready:        opts.Ready,
		upgrade:      opts.Upgrade,
		handover:     make(chan struct{}),
		tlsLn:        opts.TLSListener,
		httpLn:       opts.HTTPListener,
	}
	s.exchanges.New = func() any { return new(exchange) }
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	s.noRoute = m.forRoute("none")
	w := opts.AccessLog
	if w == nil {
		switch cfg.AccessLog {
		case "off":
		case "stdout":
			w = os.Stdout
		case "stderr":
			w = os.Stderr
		default:
			f, err := openAccessLog(cfg.AccessLog)
			if err != nil {
				return nil, err
			}
			s.alogFile, w = f, f
		}
	}
	if w != nil {
		s.alog = newAccessLog(w, m.logDropped.Inc)
	}
	s.apply(cfg)
	m.reloads.WithLabelValues("success").Inc()
	return s, nil
}

// routeMetrics returns the series of a route name, the same across reloads.
// Callers hold s.buildMu.
func (s *Server) routeMetrics(name string) *routeMetrics {
	if rm, ok := s.routeM[name]; ok {
		return rm
	}
	rm := s.m.forRoute(name)
	s.routeM[name] = rm
	return rm
}

// apply builds cfg's table and swaps it in.
func (s *Server) apply(cfg *Config) {
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	s.auth.cache.configure(cfg.BasicAuth.CacheTTL, cfg.BasicAuth.CacheEntries)
	if cfg.Upstream.TLSInsecureSkipVerify {
		// Said at every load: a lab setting must not go unnoticed in production.
		s.log.Warn("upstream.tls_insecure_skip_verify is on: https:// upstreams' certificates are not checked")
	}
	t := s.buildTable(cfg)
	s.cur.Store(t)
	s.swapPools(t)
	s.dropUnusedTransports(t)
	s.dropUnusedLimiters(t)
	s.m.lastReload.SetToCurrentTime()
}

// Reload reads the configuration again with Options.Load. A valid one
// replaces the routes atomically: requests in flight finish on the old
// routes. An invalid one is logged and counted, the old routes keep
// serving, and its error (every problem, with lines) is returned.
func (s *Server) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.reopenAccessLog()
	if s.load == nil {
		return errors.New("reload: no configuration source")
	}
	cfg, err := s.load()
	if err != nil {
		s.m.reloads.WithLabelValues("failure").Inc()
		s.log.Error("reload failed, keeping the current routes", "err", err)
		return err
	}
	for _, c := range []struct{ name, old, new string }{
		{"listen", s.started.Listen, cfg.Listen},
		{"admin", s.started.Admin, cfg.Admin},
		{"access_log", s.started.AccessLog, cfg.AccessLog},
		{"limits", fmt.Sprint(s.started.Limits), fmt.Sprint(cfg.Limits)},
	} {
		if c.old != c.new {
			s.log.Warn("config change needs a restart to apply", "key", c.name, "running", c.old, "file", c.new)
		}
	}
	s.apply(cfg)
	s.reloadTLS(cfg)
	s.m.reloads.WithLabelValues("success").Inc()
	s.log.Info("reloaded", "routes", len(cfg.Routes))
	return nil
}

// reopenAccessLog opens the access log file again, so that SIGHUP after
// logrotate moved it starts a new file. Lines queued meanwhile go to the
// old file; none is lost.
func (s *Server) reopenAccessLog() {
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	if s.alogFile == nil {
		return
	}
	f, err := openAccessLog(s.started.AccessLog)
	if err != nil {
		s.log.Error("reopen access log, still writing to the old file", "err", err)
		return
	}
	_ = s.alog.use(f)
	_ = s.alogFile.Close()
	s.alogFile = f
}

func openAccessLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open access log: %w", err)
	}
	return f, nil
}

// exchange is one request's state, pooled: the recorder handed to the
// proxy and the access log entry.
type exchange struct {
	rec   recorder
	entry logEntry
	route *route
	body  *limitedBody
}

// ServeHTTP serves the public port: normalize the path, route it, check
// Basic Auth, bound the body, forward, log.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	s.m.inFlight.Inc()
	if s.draining.Load() {
		closeAfter(w, r)
	}
	ex := s.exchanges.Get().(*exchange)
	ex.rec = recorder{w: w, http10: !r.ProtoAtLeast(1, 1)}
	// The log shows the path as the client sent it (without the query), not
	// the normalized one: that is what tells an attack from a typo.
	path, ok := requestPath(r)
	ex.entry = logEntry{start: time.Now(), method: r.Method, host: r.Host, path: path}
	defer s.finish(ex, r)
	s.serve(s.cur.Load(), ex, r, ok)
}

// requestPath returns the path of r's request-target exactly as the client
// sent it, without the query: the origin-form's path, or an absolute-form's
// path after its scheme and authority. It reports false for a target with
// no path ("*", authority-form). r.URL.EscapedPath would not do: when the
// raw path is not in Go's canonical encoding (it holds " { | ^ or
// non-ASCII), it re-encodes the decoded path, and an encoded slash comes
// back as a real one. It does not allocate.
func requestPath(r *http.Request) (string, bool) {
	u := r.RequestURI
	if u == "" {
		// A request made in-process (tests, benchmarks), not read off a
		// connection: its URL is all there is.
		return r.URL.EscapedPath(), true
	}
	if u[0] != '/' {
		// Absolute-form: scheme "://" authority, then the path, if any.
		i := strings.Index(u, "://")
		if i <= 0 {
			return u, false
		}
		u = u[i+3:]
		j := strings.IndexAny(u, "/?#")
		if j < 0 || u[j] == '?' {
			return "/", true
		}
		u = u[j:] // a '#' here is refused by normalizePath
	}
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	return u, true
}

// allowedMethods is the Allow header of the edge's own 405s.
const allowedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

func (s *Server) serve(t *table, ex *exchange, r *http.Request, hasPath bool) {
	w := &ex.rec
	w.pages = t.pages
	e := &ex.entry
	e.clientIP = t.clientOf(r).ip
	e.requestID = s.ids.requestID(r)
	switch r.Method {
	case http.MethodConnect:
		w.Header().Set("Allow", allowedMethods)
		respond(w, r, t.headers, http.StatusMethodNotAllowed, "405 Method Not Allowed: the edge is not a forward proxy\n")
		return
	case http.MethodTrace, "TRACK":
		// An upstream that answers TRACE echoes the request as it got it:
		// the client's cookies and credentials and the edge's own headers
		// (forward auth's user, X-Forwarded-*), for a page's script to
		// read (cross-site tracing). nginx refuses it too.
		w.Header().Set("Allow", allowedMethods)
		respond(w, r, t.headers, http.StatusMethodNotAllowed, "405 Method Not Allowed: "+r.Method+" is not served\n")
		return
	}
	if !hasPath {
		respond(w, r, t.headers, http.StatusBadRequest, "400 Bad Request: the request target has no path\n")
		return
	}
	clean, err := normalizePath(e.path)
	if err != nil {
		respond(w, r, t.headers, http.StatusBadRequest, "400 Bad Request: "+err.Error()+"\n")
		return
	}
	if !validHost(r.Host) {
		respond(w, r, t.headers, http.StatusBadRequest, "400 Bad Request: invalid Host header\n")
		return
	}
	rt := t.lookup(r.Host, clean)
	if rt == nil {
		respond(w, r, t.headers, http.StatusNotFound, "404 Not Found: no route for this path\n")
		return
	}
	ex.route = rt
	if !t.cfg.UnderscoresInHeaders {
		// Before forward auth: its copy_headers are the edge's own, even
		// with '_' in their names; the client's go before anyone sees them.
		dropUnderscoreHeaders(r.Header)
	}
	if t.authHeaders != nil {
		stripHeaders(r.Header, t.authHeaders)
	}
	if rt.access != nil && !s.admit(rt, ex, r) {
		return
	}
	if rt.users != nil {
		user, res, wait := s.auth.check(r.Context(), rt.users, r.Header.Get("Authorization"), e.clientIP, t.failLimit, time.Now())
		switch res {
		case authMissing, authFailed:
			if res == authFailed {
				rt.m.authFailures.Inc()
				e.denyReason = denyBasicAuth
			}
			w.Header()["Www-Authenticate"] = []string{rt.users.realm}
			respond(w, r, rt.headers, http.StatusUnauthorized, "401 Unauthorized\n")
			return
		case authThrottled:
			w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
			respond(w, r, rt.headers, http.StatusTooManyRequests, "429 Too Many Requests: too many failed logins, try again later\n")
			return
		case authBusy:
			w.Header().Set("Retry-After", "1")
			respond(w, r, rt.headers, http.StatusServiceUnavailable, "503 Service Unavailable: too many logins in progress, try again\n")
			return
		}
		e.user = user
	}
	if rt.fwd != nil && !rt.fwd.check(t, rt, ex, r, clean) {
		return
	}
	if rt.Redirect != nil {
		serveRedirect(w, r, rt, clean)
		return
	}
	if rt.MaxBody > 0 && r.ContentLength > rt.MaxBody {
		closeConnAfter(w.Header(), r)
		respond(w, r, rt.headers, http.StatusRequestEntityTooLarge, rt.tooLarge)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		ex.body = &limitedBody{rc: r.Body, limit: rt.MaxBody, expect: expectsContinue(r)}
		if d := s.started.Limits.BodyReadTimeout; d > 0 {
			ex.body.idle = d
			ex.body.setDeadline = http.NewResponseController(ex.rec.w).SetReadDeadline
		}
		r.Body, w.body = ex.body, ex.body
	}
	if clean != e.path || r.URL.Path == "" || strings.IndexByte(clean, '%') >= 0 {
		// What the route matched is what is forwarded, byte for byte.
		r.URL.RawPath = clean
		r.URL.Path = unescapePath(clean)
	}
	filterUpgrade(r)
	if len(rt.encode) > 0 && r.Header["Upgrade"] == nil {
		// Wrapped even when the client accepts no encoding: the response
		// still varies by Accept-Encoding.
		ew := newEncodeWriter(w, r, rt.encode)
		rt.proxy.ServeHTTP(ew, r)
		var in, out int64
		e.encoding, in, out = ew.close()
		rt.m.encoded(e.encoding, in, out)
		return
	}
	rt.proxy.ServeHTTP(w, r)
}

// finish logs and counts the request. It runs deferred, so it also sees
// requests that ReverseProxy aborted with a panic, and re-panics.
func (s *Server) finish(ex *exchange, r *http.Request) {
	p := recover()
	e := &ex.entry
	e.duration = time.Since(e.start)
	e.status = ex.rec.status
	if ex.rec.clientGone || !ex.rec.wroteHeader && r.Context().Err() != nil {
		e.status = 499 // nginx's "client closed request"
	} else if !ex.rec.wroteHeader {
		e.status = http.StatusOK
		if p != nil {
			e.status = http.StatusBadGateway
		}
	}
	e.bytesOut = ex.rec.bytes
	if ex.body != nil {
		ex.body.stop()
		e.bytesIn = ex.body.n.Load()
	}
	if tc := ex.rec.tunnel; tc != nil {
		e.bytesIn += tc.in.Load()
		e.bytesOut += tc.out.Load()
	}
	rm := s.noRoute
	if ex.route != nil {
		rm = ex.route.m
		e.route, e.upstream = ex.route.name, ex.route.upstream
	}
	rm.observe(r.Method, e.status, e.duration.Seconds())
	if s.alog != nil {
		e.userAgent = r.Header.Get("User-Agent")
		e.cfRay = r.Header.Get("Cf-Ray")
		s.alog.log(e)
	}
	*ex = exchange{}
	s.exchanges.Put(ex)
	s.m.inFlight.Dec()
	s.inflight.Add(-1)
	if p != nil {
		panic(p)
	}
}

// AdminHandler serves /metrics, /healthz, GET /-/upstreams and POST /-/reload.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /-/upstreams", s.serveUpstreams)
	mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := s.Reload(); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, "reload failed, the current routes keep serving:\n"+err.Error()+"\n")
			return
		}
		_, _ = io.WriteString(w, "reloaded\n")
	})
	if s.upgrade != nil {
		mux.HandleFunc("POST /-/upgrade", s.serveUpgrade)
	}
	return s.closeWhenDraining(mux)
}

// Routes returns the paths of the current table in match order, for logs.
func (s *Server) Routes() []string {
	t := s.cur.Load()
	var out []string
	for _, rs := range t.byHost {
		for _, r := range rs {
			out = append(out, r.name)
		}
	}
	slices.Sort(out)
	for _, r := range t.any {
		out = append(out, r.name)
	}
	return out
}
