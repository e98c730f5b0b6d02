package edge

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// AuthServer is one forward-auth server of routes.yaml's auth_servers: the
// edge asks it about each request of the routes that name it.
type AuthServer struct {
	// Name is the key routes name in forward_auth.
	Name string
	// URL is asked with GET for every request (or cached, see CacheTTL).
	URL *url.URL
	// CopyHeaders are copied from a 2xx answer onto the forwarded request.
	// Any copy the client sent is removed first, on every route.
	CopyHeaders []string
	// Timeout bounds the whole exchange with the server (2s); past it the
	// client gets 503, never the upstream.
	Timeout time.Duration
	// CacheTTL is how long a 2xx is remembered per route and per Cookie and
	// Authorization (0, the default: never).
	CacheTTL time.Duration
	// CacheEntries bounds that cache (1024).
	CacheEntries int
	// Line is where the server is defined in the file.
	Line int
}

// RateLimit is a route's token bucket per client IP (IPv6: per /64).
type RateLimit struct {
	// Rate is how many requests a client may make per Per.
	Rate int
	// Per is the period of Rate: a second, a minute or an hour.
	Per time.Duration
	// Burst is the bucket's size: how many requests may come at once (Rate).
	Burst int
	// MaxClients bounds the clients remembered; the least recently seen is
	// forgotten first (100000).
	MaxClients int
}

// String returns the rate as written in the file ("10/m").
func (rl RateLimit) String() string {
	unit := "s"
	switch rl.Per {
	case time.Minute:
		unit = "m"
	case time.Hour:
		unit = "h"
	}
	return strconv.Itoa(rl.Rate) + "/" + unit
}

var (
	authServerKeys = []string{"url", "copy_headers", "timeout", "cache_ttl", "cache_entries"}
	rateLimitKeys  = []string{"rate", "burst", "max_clients"}
)

// prefixes parses a list of CIDRs or bare IPs. An empty list gives a
// non-nil empty slice, so that a route's `allow: []` can open a route that
// a global allow list would close.
func (l *loader) prefixes(n *yaml.Node, where string) []netip.Prefix {
	out := []netip.Prefix{}
	l.list(n, where, func(i int, item *yaml.Node) {
		w := fmt.Sprintf("%s[%d]", where, i)
		s, ok := l.str(item, w)
		if !ok {
			return
		}
		p, err := parsePrefix(s)
		if err != nil {
			l.errorf(item, "%s: bad CIDR %q (want e.g. 10.0.0.0/8, 2001:db8::/32 or 192.168.1.10)", w, s)
			return
		}
		out = append(out, p)
	})
	return out
}

// authServers parses the auth_servers mapping.
func (l *loader) authServers(cfg *Config, n *yaml.Node) {
	l.fields(n, "auth_servers", nil, func(name string, v *yaml.Node) {
		where := "auth_servers." + name
		as := &AuthServer{Name: name, Timeout: 2 * time.Second, CacheEntries: 1024, Line: v.Line}
		before := len(l.errs)
		l.fields(v, where, authServerKeys, func(k string, v2 *yaml.Node) {
			w := where + "." + k
			switch k {
			case "url":
				s, ok := l.str(v2, w)
				if !ok {
					return
				}
				u, err := url.Parse(s)
				switch {
				case err != nil || u.Host == "" || u.Opaque != "":
					l.errorf(v2, "%s: bad URL %q (want e.g. http://127.0.0.1:4180/oauth2/auth)", w, s)
				case u.Scheme != "http" && u.Scheme != "https":
					l.errorf(v2, "%s: bad URL %q: scheme must be http or https", w, s)
				case u.User != nil || u.Fragment != "":
					l.errorf(v2, "%s: bad URL %q: no user or fragment", w, s)
				default:
					as.URL = u
				}
			case "copy_headers":
				l.list(v2, w, func(i int, item *yaml.Node) {
					wi := fmt.Sprintf("%s[%d]", w, i)
					if s, ok := l.str(item, wi); ok {
						if h := l.headerName(item, wi, s); h != "" {
							as.CopyHeaders = append(as.CopyHeaders, h)
						}
					}
				})
			case "timeout":
				as.Timeout = l.duration(v2, w)
				if as.Timeout == 0 {
					l.errorf(v2, "%s: want more than 0", w)
				}
			case "cache_ttl":
				as.CacheTTL = l.duration(v2, w)
			case "cache_entries":
				as.CacheEntries = l.count(v2, w)
			}
		})
		if v.Kind == yaml.MappingNode && as.URL == nil && len(l.errs) == before {
			l.errorf(v, "%s: url is missing", where)
		}
		if cfg.AuthServers == nil {
			cfg.AuthServers = make(map[string]*AuthServer)
		}
		cfg.AuthServers[name] = as
	})
}

// routeAccess parses a route's allow, deny, forward_auth and rate_limit.
func (l *loader) routeAccess(cfg *Config, r *Route, k string, v *yaml.Node, w string) {
	switch k {
	case "allow":
		r.Allow = l.prefixes(v, w)
	case "deny":
		r.Deny = l.prefixes(v, w)
	case "forward_auth":
		var ok bool
		if r.ForwardAuth, ok = l.str(v, w); !ok {
			return
		}
		if r.ForwardAuth == "" && v.Tag != "!!null" {
			// "${SSO}" set to nothing must not make a public route.
			l.errorf(v, "%s: %q is empty (want an auth server; leave forward_auth out for a route without one)", w, v.Value)
			return
		}
		if _, ok := cfg.AuthServers[r.ForwardAuth]; !ok && r.ForwardAuth != "" {
			l.errorf(v, "%s: unknown auth server %q (define it under auth_servers)", w, r.ForwardAuth)
		}
	case "rate_limit":
		rl := &RateLimit{MaxClients: 100_000}
		before := len(l.errs)
		l.fields(v, w, rateLimitKeys, func(k2 string, v2 *yaml.Node) {
			w2 := w + "." + k2
			switch k2 {
			case "rate":
				s, ok := l.str(v2, w2)
				if !ok {
					return
				}
				n, per, err := parseRate(s)
				if err != nil {
					l.errorf(v2, "%s: %v", w2, err)
					return
				}
				rl.Rate, rl.Per = n, per
			case "burst":
				rl.Burst = l.count(v2, w2)
				if rl.Burst == 0 {
					l.errorf(v2, "%s: want at least 1", w2)
				}
			case "max_clients":
				rl.MaxClients = l.count(v2, w2)
				if rl.MaxClients == 0 {
					l.errorf(v2, "%s: want at least 1", w2)
				}
			}
		})
		if v.Kind != yaml.MappingNode {
			return // reported by fields
		}
		if rl.Rate == 0 {
			if len(l.errs) == before {
				l.errorf(v, "%s: rate is missing (want e.g. 10/s, 100/m, 1000/h)", w)
			}
			return
		}
		if rl.Burst == 0 {
			rl.Burst = rl.Rate
		}
		r.RateLimit = rl
	}
}

// parseRate parses "N/s", "N/m" or "N/h".
func parseRate(s string) (int, time.Duration, error) {
	num, unit, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if !ok || err != nil || n < 1 {
		return 0, 0, fmt.Errorf("bad rate %q (want N/s, N/m or N/h with N ≥ 1, e.g. 10/m)", s)
	}
	switch strings.TrimSpace(unit) {
	case "s":
		return n, time.Second, nil
	case "m":
		return n, time.Minute, nil
	case "h":
		return n, time.Hour, nil
	}
	return 0, 0, fmt.Errorf("bad rate %q (want N/s, N/m or N/h with N ≥ 1, e.g. 10/m)", s)
}
