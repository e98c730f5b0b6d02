package edge

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	ups "selfhost.dev/edgeapp/edge/upstream"
)

// The pool keys of a route: to: as a list, lb, health, passive, retry,
// resolve and cookie. A route with none of them (to: one URL) keeps the
// single-upstream path.

var (
	targetKeys  = []string{"url", "weight"}
	healthKeys  = []string{"path", "interval", "timeout", "healthy", "unhealthy", "expect"}
	passiveKeys = []string{"max_fails", "fail_timeout", "status_5xx"}
	retryKeys   = []string{"tries", "duration"}
	cookieKeys  = []string{"name", "secret"}
)

// maxWeight bounds a target's weight: round robin writes out one turn per
// unit of weight.
const maxWeight = 100

// minCookieSecret is the shortest cookie secret accepted, in bytes.
const minCookieSecret = 16

// poolNodes collects a route's pool while its keys are read.
type poolNodes struct {
	cfg       ups.Config
	list      bool       // to: was a list
	set       bool       // a pool key other than to: was given
	lbNode    *yaml.Node // where lb: is, for messages
	targetsAt []*yaml.Node
}

// toList reads to: as a list of URLs or {url, weight} mappings.
func (l *loader) toList(v *yaml.Node, w string, r *Route, p *poolNodes) {
	p.list = true
	if len(v.Content) == 0 {
		l.errorf(v, "%s: empty list (want one URL or more)", w)
		return
	}
	l.list(v, w, func(i int, item *yaml.Node) {
		where := fmt.Sprintf("%s[%d]", w, i)
		t := ups.Target{Weight: 1}
		if item.Kind == yaml.MappingNode {
			var urlNode *yaml.Node
			l.fields(item, where, targetKeys, func(k string, v2 *yaml.Node) {
				switch k {
				case "url":
					urlNode = v2
					t.URL = l.upstreamURL(v2, where+".url")
				case "weight":
					t.Weight = l.count(v2, where+".weight")
					if t.Weight < 1 || t.Weight > maxWeight {
						l.errorf(v2, "%s.weight: want 1 to %d, got %q", where, maxWeight, v2.Value)
					}
				}
			})
			if urlNode == nil {
				l.errorf(item, "%s: url is missing", where)
				return
			}
		} else {
			t.URL = l.upstreamURL(item, where)
		}
		if t.URL == nil {
			return
		}
		if i == 0 {
			r.To = t.URL
		}
		p.cfg.Targets = append(p.cfg.Targets, t)
		p.targetsAt = append(p.targetsAt, item)
	})
}

// poolKey reads one of lb, health, passive, retry, resolve, cookie.
func (l *loader) poolKey(k string, v *yaml.Node, w string, p *poolNodes) {
	p.set = true
	c := &p.cfg
	switch k {
	case "lb":
		p.lbNode = v
		s, ok := l.str(v, w)
		if !ok {
			return
		}
		if !slices.Contains(ups.Policies, ups.Policy(s)) {
			names := make([]string, len(ups.Policies))
			for i, p := range ups.Policies {
				names[i] = string(p)
			}
			l.errorf(v, "%s: unknown policy %q (want one of %s)", w, s, strings.Join(names, ", "))
			return
		}
		c.Policy = ups.Policy(s)
	case "health":
		var pathNode *yaml.Node
		l.fields(v, w, healthKeys, func(k2 string, v2 *yaml.Node) {
			w2 := w + "." + k2
			switch k2 {
			case "path":
				pathNode = v2
				c.Health.Path, _ = l.str(v2, w2)
				if !strings.HasPrefix(c.Health.Path, "/") || strings.ContainsAny(c.Health.Path, " #\t\r\n") {
					l.errorf(v2, "%s: %q must start with / and hold no spaces or #", w2, c.Health.Path)
				}
			case "interval":
				c.Health.Interval = l.duration(v2, w2)
			case "timeout":
				c.Health.Timeout = l.duration(v2, w2)
			case "healthy":
				c.Health.Healthy = l.count(v2, w2)
			case "unhealthy":
				c.Health.Unhealthy = l.count(v2, w2)
			case "expect":
				c.Health.Expect = l.count(v2, w2)
				if c.Health.Expect < 100 || c.Health.Expect > 599 {
					l.errorf(v2, "%s: want a status code 100 to 599, got %q", w2, v2.Value)
				}
			}
		})
		if pathNode == nil && v.Kind == yaml.MappingNode {
			l.errorf(v, "%s: path is missing (e.g. /health)", w)
		}
		if c.Health.Interval > 0 && c.Health.Timeout >= c.Health.Interval {
			l.errorf(v, "%s: timeout %s must be shorter than interval %s", w, c.Health.Timeout, c.Health.Interval)
		}
	case "passive":
		l.fields(v, w, passiveKeys, func(k2 string, v2 *yaml.Node) {
			w2 := w + "." + k2
			switch k2 {
			case "max_fails":
				c.Passive.MaxFails = l.count(v2, w2)
			case "fail_timeout":
				c.Passive.FailTimeout = l.duration(v2, w2)
			case "status_5xx":
				c.Passive.Status5xx = l.boolean(v2, w2)
			}
		})
	case "retry":
		l.fields(v, w, retryKeys, func(k2 string, v2 *yaml.Node) {
			w2 := w + "." + k2
			switch k2 {
			case "tries":
				c.Retry.Tries = l.count(v2, w2)
				if c.Retry.Tries < 1 {
					l.errorf(v2, "%s: want at least 1", w2)
				}
			case "duration":
				c.Retry.Duration = l.duration(v2, w2)
			}
		})
	case "resolve":
		c.Resolve = l.duration(v, w)
		if c.Resolve > 0 && c.Resolve < 1e9 {
			l.errorf(v, "%s: at least 1s (it is a DNS refresh interval)", w)
		}
	case "cookie":
		l.fields(v, w, cookieKeys, func(k2 string, v2 *yaml.Node) {
			w2 := w + "." + k2
			switch k2 {
			case "name":
				c.Cookie.Name, _ = l.str(v2, w2)
				if !validHeaderName(c.Cookie.Name) {
					l.errorf(v2, "%s: bad cookie name %q", w2, c.Cookie.Name)
				}
			case "secret":
				s, ok := l.str(v2, w2)
				if ok && len(s) < minCookieSecret {
					// Never the value itself: it is a secret.
					l.errorf(v2, "%s: at least %d bytes (e.g. secret: ${EDGE_LB_SECRET} set from `openssl rand -hex 32`)", w2, minCookieSecret)
				}
				c.Cookie.Secret = s
			}
		})
	}
}

// finishPool checks a route's pool as a whole and sets Route.Upstreams when
// the route has one.
func (l *loader) finishPool(n *yaml.Node, where string, r *Route, p *poolNodes) {
	if !p.list && !p.set {
		return // one URL: the single-upstream path
	}
	if !p.list && r.To != nil {
		p.cfg.Targets = []ups.Target{{URL: r.To, Weight: 1}}
		p.targetsAt = []*yaml.Node{n}
	}
	if len(p.cfg.Targets) == 0 {
		return // already reported
	}
	if p.list && !p.set && len(p.cfg.Targets) == 1 {
		return // a list of one, nothing else: the single-upstream path
	}
	// The route's base path is the first target's; a pool's upstreams are
	// copies of one service, so they must agree.
	seen := make(map[string]int)
	for i, t := range p.cfg.Targets {
		at := p.targetsAt[i]
		if t.URL.Path != r.To.Path {
			l.errorf(at, "%s.to[%d]: path %q differs from the first upstream's %q (the upstreams of a route are copies of one service)", where, i, t.URL.Path, r.To.Path)
		}
		key := t.URL.Scheme + "://" + strings.ToLower(t.URL.Host)
		if first, dup := seen[key]; dup {
			l.errorf(at, "%s.to[%d]: %s repeated (first at to[%d]; use weight instead)", where, i, key, first)
		}
		seen[key] = i
	}
	if p.cfg.Policy == ups.Cookie && p.cfg.Cookie.Secret == "" {
		at := n
		if p.lbNode != nil {
			at = p.lbNode
		}
		l.errorf(at, "%s: lb cookie needs cookie.secret (e.g. secret: ${EDGE_LB_SECRET})", where)
	}
	cfg := p.cfg
	r.Upstreams = &cfg
}

// poolLabel is how a pool's route shows its upstreams in logs.
func poolLabel(c *ups.Config) string {
	parts := make([]string, len(c.Targets))
	for i, t := range c.Targets {
		parts[i] = t.URL.String()
		if t.Weight > 1 {
			parts[i] += "*" + strconv.Itoa(t.Weight)
		}
	}
	return strings.Join(parts, ",")
}
