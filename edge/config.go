package edge

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	ups "selfhost.dev/edgeapp/edge/upstream"
)

// Config is a parsed and validated routes.yaml. Load is the only way to make
// one that the Server accepts; every field has its default filled in.
type Config struct {
	// Listen is the public address (":8080" by default).
	Listen string
	// Admin is the private address of /metrics, /healthz and POST /-/reload
	// ("127.0.0.1:9180" by default); "off" disables it.
	Admin string
	// TrustedProxies are the TCP peers whose client-IP and X-Forwarded-*
	// headers are believed (loopback by default).
	TrustedProxies []netip.Prefix
	// ClientIPHeaders name the headers, in order, that carry the client's IP
	// when the peer is trusted (CF-Connecting-IP, X-Forwarded-For by default).
	ClientIPHeaders []string
	// AccessLog is "stdout" (the default), "stderr", "off" or a file path.
	AccessLog string
	// Limits bound what a client may send.
	Limits Limits
	// Upstream tunes the connections to the upstreams.
	Upstream Upstream
	// BasicAuth tunes the verification cache and the failure throttle.
	BasicAuth BasicAuth
	// UnderscoresInHeaders forwards request header names that hold '_'
	// (false: they are dropped, as nginx's underscores_in_headers off, since
	// CGI-style backends read X_Forwarded_For as X-Forwarded-For).
	UnderscoresInHeaders bool
	// ShutdownGrace is how long a shutdown waits for in-flight requests (30s).
	ShutdownGrace time.Duration
	// Headers are set on every response, in order; an empty value removes the
	// header. By default they are the security headers of DefaultHeaders.
	Headers []Header
	// Users are the named credential sets that routes name in Auth.
	Users map[string][]User
	// Encode lists the encodings responses may be compressed with, in the
	// edge's order of preference (zstd, gzip); routes may override it.
	// Empty (the default): responses pass as the upstream sent them.
	Encode []string
	// ErrorPages gives the HTML pages of the edge's own errors; by default
	// built-in ones.
	ErrorPages ErrorPages
	// Routes are in file order.
	Routes []Route
	// AuthServers are the forward-auth servers routes name in ForwardAuth
	// (config_access.go).
	AuthServers map[string]*AuthServer
	// Allow and Deny are the default client IP lists of routes that set
	// none (nil: everyone).
	Allow, Deny []netip.Prefix
	// TLS turns on automatic HTTPS (config_tls.go); nil: plain HTTP only.
	TLS *TLS
	// H2C accepts HTTP/2 without TLS (prior knowledge) on Listen, as
	// cloudflared's http2Origin sends it (false).
	H2C bool
}

// Limits bound what a client may send.
type Limits struct {
	// MaxHeaderBytes bounds the request line and headers (64 KiB); beyond it
	// the client gets 431.
	MaxHeaderBytes int64
	// ReadHeaderTimeout closes a connection whose headers are slower (10s).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes an idle keep-alive connection (120s).
	IdleTimeout time.Duration
	// BodyReadTimeout bounds the wait for each read of a request body (60s;
	// 0: none), so a client sending a byte now and then cannot hold a
	// connection and an upstream request forever. It is an idle bound, not a
	// bound on the whole upload: a slow but steady upload is not cut off.
	BodyReadTimeout time.Duration
}

// Upstream tunes the connections to the upstreams.
type Upstream struct {
	// DialTimeout bounds connecting to an upstream (5s).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for an upstream's response
	// headers; past it the client gets 504 (60s). Streams are not affected
	// once their headers have arrived.
	ResponseHeaderTimeout time.Duration
	// MaxIdleConnsPerHost is the idle pool kept per upstream (512).
	MaxIdleConnsPerHost int
	// TLSCA is the PEM file of the CAs that https:// upstreams' certificates
	// must chain to, instead of the system's ("": the system's), and TLSCAPEM
	// its content, read at load: a reload with a changed file makes new
	// connections.
	TLSCA, TLSCAPEM string
	// TLSServerName is the name https:// upstreams' certificates are checked
	// against and sent as SNI ("": the host of the upstream's URL).
	TLSServerName string
	// TLSInsecureSkipVerify accepts any certificate from https:// upstreams:
	// encrypted, not authenticated. For a lab, never across a network.
	TLSInsecureSkipVerify bool
}

// BasicAuth tunes Basic Auth.
type BasicAuth struct {
	// FailuresPerMinute is how many failed logins a client IP may make in a
	// minute before it gets 429 (10).
	FailuresPerMinute int
	// CacheTTL is how long a successful verification is remembered (5m).
	CacheTTL time.Duration
	// CacheEntries bounds the verification cache (1024).
	CacheEntries int
}

// Header is one header operation: set Name to Value, or remove Name when
// Value is empty.
type Header struct {
	Name  string
	Value string
}

// User is one Basic Auth credential: a name and its bcrypt hash.
type User struct {
	Name string
	Hash string
}

// Route sends requests under Path (and Host, when set) to To.
type Route struct {
	// Path is the prefix, matched on segment boundaries.
	Path string
	// To is the upstream; its path, if any, is prepended to forwarded paths.
	To *url.URL
	// Auth names the user set that guards the route ("" for none).
	Auth string
	// StripPrefix removes Path before forwarding.
	StripPrefix bool
	// MaxBody bounds the request body in bytes (0: no limit).
	MaxBody int64
	// Host restricts the route to one Host header (lower case, no port, no
	// trailing dot).
	Host string
	// Headers are response header operations applied after the global ones.
	Headers []Header
	// Upstreams, when set, spreads the route over a pool of upstreams (to:
	// is a list, or lb, health, passive, retry, resolve or cookie is
	// given); To is then the first target. Nil keeps the single-upstream
	// path, unchanged.
	Upstreams *ups.Config
	// PassAuth forwards the client's Authorization header to the upstream.
	// Without it the header is removed on every route, with or without auth:
	// browsers resend the edge's Basic credentials to every path of the site
	// after a 401, and no upstream should see the admin's password unasked.
	PassAuth bool
	// Allow, when not nil, lets only these client IPs in (403 for others);
	// nil uses Config.Allow.
	Allow []netip.Prefix
	// Deny refuses these client IPs with 403, before Allow; nil uses
	// Config.Deny.
	Deny []netip.Prefix
	// ForwardAuth names the auth server asked about every request ("" for none).
	ForwardAuth string
	// RateLimit bounds requests per client IP (nil: none).
	RateLimit *RateLimit
	// Encode overrides Config.Encode for this route when EncodeSet
	// (`encode: []` turns compression off).
	Encode    []string
	EncodeSet bool
	// Redirect, when set, answers the route's requests with a redirect; the
	// route then has no To.
	Redirect *Redirect
	// Line is where the route starts in the file.
	Line int
}

// DefaultHeaders are the security headers every response gets unless the
// file says otherwise.
var DefaultHeaders = []Header{
	{"Strict-Transport-Security", "max-age=31536000"},
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "SAMEORIGIN"},
	{"Referrer-Policy", "strict-origin-when-cross-origin"},
}

// ConfigError is one problem in a configuration file, with its line.
type ConfigError struct {
	File string // empty when the reader had no name
	Line int
	Msg  string
}

// Error implements error as "file:line: msg" (or "line N: msg").
func (e *ConfigError) Error() string {
	if e.File != "" {
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return "line " + strconv.Itoa(e.Line) + ": " + e.Msg
}

// LoadFile reads, expands and validates the file at path. Its errors name the file.
func LoadFile(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, err := Load(f, lookupEnv)
	if err != nil {
		var errs []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		} else {
			errs = []error{err}
		}
		for _, e := range errs {
			var ce *ConfigError
			if errors.As(e, &ce) {
				ce.File = path
			}
		}
		if len(errs) == 1 {
			return nil, errs[0]
		}
		return nil, err
	}
	return cfg, nil
}

// Load parses a routes.yaml from r. ${VAR} in any value is replaced by
// lookupEnv(VAR); an unset variable is an error. Every problem is reported,
// each as a *ConfigError with its line, joined with errors.Join.
func Load(r io.Reader, lookupEnv func(string) (string, bool)) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(err)
	}
	l := &loader{env: lookupEnv}
	cfg := l.config(&doc)
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return cfg, nil
}

// yamlError turns "yaml: line 3: msg" into a *ConfigError.
func yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil {
				return &ConfigError{Line: line, Msg: "bad YAML: " + after}
			}
		}
	}
	return &ConfigError{Line: 1, Msg: "bad YAML: " + msg}
}

// loader walks the YAML nodes, collecting every error instead of stopping.
type loader struct {
	env  func(string) (string, bool)
	errs []error
}

func (l *loader) errorf(n *yaml.Node, format string, args ...any) {
	l.errs = append(l.errs, &ConfigError{Line: n.Line, Msg: fmt.Sprintf(format, args...)})
}

// fields iterates a mapping's key/value pairs, reporting a non-mapping,
// unknown keys and repeated keys. known lists the accepted keys.
func (l *loader) fields(n *yaml.Node, where string, known []string, fn func(key string, v *yaml.Node)) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		if n.Tag == "!!null" {
			return
		}
		l.errorf(n, "%s: want a mapping, got %s", where, describe(n))
		return
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if first, dup := seen[k.Value]; dup {
			l.errorf(k, "%s: key %q repeated (first at line %d)", where, k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		if known != nil && !slices.Contains(known, k.Value) {
			l.errorf(k, "%s: unknown key %q (want one of %s)", where, k.Value, strings.Join(known, ", "))
			continue
		}
		fn(k.Value, resolve(v))
	}
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return resolve(n.Content[0])
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

var (
	topKeys    = []string{"listen", "admin", "trusted_proxies", "client_ip_headers", "access_log", "limits", "upstream", "basic_auth", "shutdown_grace", "underscores_in_headers", "headers", "users", "routes", "auth_servers", "allow", "deny", "encode", "error_pages", "tls", "h2c"}
	limitKeys  = []string{"max_header_bytes", "read_header_timeout", "idle_timeout", "body_read_timeout"}
	authKeys   = []string{"failures_per_minute", "cache_ttl", "cache_entries"}
	userKeys   = []string{"user", "hash"}
	routeKeys  = []string{"path", "to", "auth", "strip_prefix", "max_body", "host", "headers", "pass_auth", "lb", "health", "passive", "retry", "resolve", "cookie", "allow", "deny", "forward_auth", "rate_limit", "encode", "redirect"}
	defaultCIP = []string{"Cf-Connecting-Ip", "X-Forwarded-For"}
)

func defaultConfig() *Config {
	return &Config{
		Listen:          ":8080",
		Admin:           "127.0.0.1:9180",
		TrustedProxies:  []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
		ClientIPHeaders: slices.Clone(defaultCIP),
		AccessLog:       "stdout",
		Limits:          Limits{MaxHeaderBytes: 64 << 10, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, BodyReadTimeout: 60 * time.Second},
		Upstream:        Upstream{DialTimeout: 5 * time.Second, ResponseHeaderTimeout: 60 * time.Second, MaxIdleConnsPerHost: 512},
		BasicAuth:       BasicAuth{FailuresPerMinute: 10, CacheTTL: 5 * time.Minute, CacheEntries: 1024},
		ShutdownGrace:   30 * time.Second,
		Headers:         slices.Clone(DefaultHeaders),
		Users:           map[string][]User{},
	}
}

func (l *loader) config(doc *yaml.Node) *Config {
	cfg := defaultConfig()
	root := resolve(doc)
	if root.Kind == 0 || root.Tag == "!!null" {
		l.errs = append(l.errs, &ConfigError{Line: 1, Msg: "empty config: want at least routes"})
		return cfg
	}
	var usersNode, authServersNode, tlsNode *yaml.Node
	var routeNodes []*yaml.Node
	l.fields(root, "config", topKeys, func(k string, v *yaml.Node) {
		switch k {
		case "listen":
			cfg.Listen = l.addr(v, k, false)
		case "admin":
			cfg.Admin = l.addr(v, k, true)
		case "trusted_proxies":
			cfg.TrustedProxies = nil
			l.list(v, k, func(i int, item *yaml.Node) {
				where := fmt.Sprintf("%s[%d]", k, i)
				s, ok := l.str(item, where)
				if !ok {
					return
				}
				p, err := parsePrefix(s)
				if err != nil {
					l.errorf(item, "%s: bad CIDR %q (want e.g. 127.0.0.1/32 or ::1)", where, s)
					return
				}
				cfg.TrustedProxies = append(cfg.TrustedProxies, p)
			})
		case "client_ip_headers":
			cfg.ClientIPHeaders = nil
			l.list(v, k, func(i int, item *yaml.Node) {
				where := fmt.Sprintf("%s[%d]", k, i)
				if s, ok := l.str(item, where); ok {
					if name := l.headerName(item, where, s); name != "" {
						cfg.ClientIPHeaders = append(cfg.ClientIPHeaders, name)
					}
				}
			})
		case "access_log":
			if s, ok := l.str(v, k); ok {
				if s == "" {
					l.errorf(v, "access_log: want stdout, stderr, off or a file path")
				}
				cfg.AccessLog = s
			}
		case "limits":
			l.fields(v, k, limitKeys, func(k2 string, v2 *yaml.Node) {
				where := k + "." + k2
				switch k2 {
				case "max_header_bytes":
					cfg.Limits.MaxHeaderBytes = l.size(v2, where)
					if cfg.Limits.MaxHeaderBytes > 1<<30 {
						l.errorf(v2, "%s: at most 1GiB", where)
					}
				case "read_header_timeout":
					cfg.Limits.ReadHeaderTimeout = l.duration(v2, where)
				case "idle_timeout":
					cfg.Limits.IdleTimeout = l.duration(v2, where)
				case "body_read_timeout":
					cfg.Limits.BodyReadTimeout = l.duration(v2, where)
				}
			})
		case "upstream":
			l.upstream(&cfg.Upstream, v, k)
		case "basic_auth":
			l.fields(v, k, authKeys, func(k2 string, v2 *yaml.Node) {
				where := k + "." + k2
				switch k2 {
				case "failures_per_minute":
					cfg.BasicAuth.FailuresPerMinute = l.count(v2, where)
				case "cache_ttl":
					cfg.BasicAuth.CacheTTL = l.duration(v2, where)
				case "cache_entries":
					cfg.BasicAuth.CacheEntries = l.count(v2, where)
				}
			})
		case "shutdown_grace":
			cfg.ShutdownGrace = l.duration(v, k)
		case "underscores_in_headers":
			cfg.UnderscoresInHeaders = l.boolean(v, k)
		case "headers":
			cfg.Headers = l.headers(v, k)
		case "users":
			usersNode = v
		case "auth_servers":
			authServersNode = v
		case "allow":
			cfg.Allow = l.prefixes(v, k)
		case "deny":
			cfg.Deny = l.prefixes(v, k)
		case "encode":
			cfg.Encode = l.encodings(v, k)
		case "error_pages":
			cfg.ErrorPages = l.errorPages(v, k)
		case "tls":
			tlsNode = v
			cfg.TLS = l.tlsBlock(v)
		case "h2c":
			cfg.H2C = l.boolean(v, k)
		case "routes":
			if v.Kind != yaml.SequenceNode {
				l.errorf(v, "routes: want a list, got %s", describe(v))
				return
			}
			for _, item := range v.Content {
				routeNodes = append(routeNodes, resolve(item))
			}
		}
	})
	if usersNode != nil {
		l.users(cfg, usersNode)
	}
	if authServersNode != nil {
		l.authServers(cfg, authServersNode)
	}
	if routeNodes == nil && root.Kind == yaml.MappingNode {
		l.errorf(root, "routes: no routes")
	}
	seen := make(map[string]int)
	nodes := make(map[int]*yaml.Node)
	for i, n := range routeNodes {
		r, ok := l.route(cfg, n, i)
		if !ok {
			continue
		}
		key := r.Host + strings.ToLower(r.Path)
		if first, dup := seen[key]; dup {
			l.errorf(n, "routes[%d]: duplicate route path %q (first at line %d)", i, hostPath(r.Host, r.Path), first)
			continue
		}
		seen[key] = n.Line
		nodes[len(cfg.Routes)] = n
		cfg.Routes = append(cfg.Routes, r)
	}
	l.checkRedirectLoops(cfg, nodes)
	if cfg.TLS != nil {
		l.tlsDomains(cfg, tlsNode)
	}
	return cfg
}

func hostPath(host, path string) string {
	if host == "" {
		return path
	}
	return host + path
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
