package edge

// This file parses one entry of routes: its path, its upstream(s) and the
// keys every route may carry; sections with their own files
// (config_upstreams.go, config_access.go, config_responses.go) add theirs.

import (
	"fmt"
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"
)

func (l *loader) route(cfg *Config, n *yaml.Node, i int) (Route, bool) {
	r := Route{Line: n.Line}
	where := fmt.Sprintf("routes[%d]", i)
	before := len(l.errs)
	var pathNode, toNode *yaml.Node
	var pool poolNodes
	l.fields(n, where, routeKeys, func(k string, v *yaml.Node) {
		w := where + "." + k
		switch k {
		case "path":
			pathNode = v
			r.Path, _ = l.str(v, w)
		case "to":
			toNode = v
			if v.Kind == yaml.SequenceNode {
				l.toList(v, w, &r, &pool)
				return
			}
			r.To = l.upstreamURL(v, w)
		case "lb", "health", "passive", "retry", "resolve", "cookie":
			l.poolKey(k, v, w, &pool)
		case "auth":
			var ok bool
			if r.Auth, ok = l.str(v, w); !ok {
				return
			}
			if r.Auth == "" && v.Tag != "!!null" {
				// "${DASH_AUTH}" set to nothing must not make a public route.
				l.errorf(v, "%s: %q is empty (want a user set; leave auth out for a route without Basic Auth)", w, v.Value)
				return
			}
			if _, ok := cfg.Users[r.Auth]; !ok && r.Auth != "" {
				l.errorf(v, "%s: unknown user set %q", w, r.Auth)
			}
		case "strip_prefix":
			r.StripPrefix = l.boolean(v, w)
		case "max_body":
			r.MaxBody = l.size(v, w)
		case "host":
			h, ok := l.str(v, w)
			if !ok {
				return
			}
			// A fully qualified name's trailing dot is dropped, as hostKey
			// drops it from requests. A host no valid Host header spells
			// (validHost) would be a route nothing reaches.
			if t := strings.TrimSuffix(h, "."); t == "" || strings.ContainsAny(t, "/:@ ") || !validHost(t) {
				l.errorf(v, "%s: bad host %q (want a name without port)", w, h)
				return
			}
			r.Host = strings.ToLower(strings.TrimSuffix(h, "."))
		case "headers":
			r.Headers = l.headers(v, w)
		case "pass_auth":
			r.PassAuth = l.boolean(v, w)
		case "allow", "deny", "forward_auth", "rate_limit":
			l.routeAccess(cfg, &r, k, v, w)
		case "encode":
			r.Encode, r.EncodeSet = l.encodings(v, w), true
		case "redirect":
			r.Redirect = l.redirect(v, w)
		}
	})
	switch {
	case pathNode == nil:
		l.errorf(n, "%s: path is missing", where)
	case r.Path == "" || r.Path[0] != '/':
		l.errorf(pathNode, "%s.path: %q must start with /", where, r.Path)
	default:
		// The path is kept in the form requests are matched in: Go hands
		// the handler escaped paths, so /ädmin must be stored as
		// /%C3%A4dmin, or it would never match and its requests would fall
		// through to a shorter route without auth. Either spelling may be
		// written; a change of structure (dots, slashes) is refused.
		clean, err := normalizePath(r.Path)
		switch {
		case err != nil:
			l.errorf(pathNode, "%s.path: %q: %v", where, r.Path, err)
		case strings.Count(clean, "/") != strings.Count(r.Path, "/") || len(clean) > 1 && clean[len(clean)-1] == '/' || clean == "/" && r.Path != "/":
			want := strings.TrimRight(clean, "/")
			if want == "" {
				want = "/"
			}
			l.errorf(pathNode, "%s.path: %q is not in normal form (want %q)", where, r.Path, want)
		default:
			if c := ambiguousIn(clean); c != "" {
				l.errorf(pathNode, "%s.path: %q holds %q, which requests may spell either raw or %%-encoded (want letters, digits, - . _ ~ and other characters raw or %%-encoded, but not ! $ & ' ( ) * + , = : @)", where, r.Path, c)
			}
			r.Path = clean
		}
	}
	switch {
	case toNode == nil && r.Redirect == nil:
		l.errorf(n, "%s: to is missing", where)
	case toNode != nil && r.Redirect != nil:
		l.errorf(toNode, "%s: to and redirect exclude each other (a route forwards or redirects)", where)
	case toNode != nil:
		l.finishPool(n, where, &r, &pool)
	}
	return r, len(l.errs) == before
}

// upstreamURL parses one upstream URL of to:.
func (l *loader) upstreamURL(v *yaml.Node, w string) *url.URL {
	s, ok := l.str(v, w)
	if !ok {
		return nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		l.errorf(v, "%s: bad URL %q (want http://host:port[/base])", w, s)
	case u.Scheme != "http" && u.Scheme != "https":
		l.errorf(v, "%s: bad URL %q: scheme must be http or https", w, s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		l.errorf(v, "%s: bad URL %q: no user, query or fragment", w, s)
	default:
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath = ""
		return u
	}
	return nil
}

// ambiguousIn returns the first sub-delimiter of the normalized path p, raw
// or encoded, or "". normalizePath keeps these as they were spelled (an
// upstream may read %2B and + differently), so a route path holding one
// would match one spelling and let the other through to a shorter route.
func ambiguousIn(p string) string {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) {
			hi, _ := unhex(p[i+1])
			lo, _ := unhex(p[i+2])
			c = hi<<4 | lo
			if strings.IndexByte("!$&'()*+,=:@", c) >= 0 {
				return p[i : i+3]
			}
			i += 2
			continue
		}
		if strings.IndexByte("!$&'()*+,=:@", c) >= 0 {
			return p[i : i+1]
		}
	}
	return ""
}
