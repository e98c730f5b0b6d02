// Package upstream holds pools of upstreams for one route: the selection
// policies, active and passive health, retries, DNS expansion and the
// /-/upstreams view. A Pool is an http.RoundTripper that a ReverseProxy
// uses as its Transport. The package knows nothing of routes.yaml's
// syntax: the edge parses the file and hands it a Config.
package upstream

import (
	"net/url"
	"time"
)

// Policy names a selection policy.
type Policy string

// The selection policies.
const (
	// RoundRobin takes the upstreams in turn, each as often as its weight.
	RoundRobin Policy = "round_robin"
	// LeastConn takes the upstream with the fewest requests in flight
	// relative to its weight.
	LeastConn Policy = "least_conn"
	// IPHash keeps each client IP on one upstream (rendezvous hashing: when
	// an upstream goes, only its clients move).
	IPHash Policy = "ip_hash"
	// First takes the first available upstream in the order written: the
	// others are spares.
	First Policy = "first"
	// Cookie keeps a browser on one upstream with an HMAC-signed cookie; a
	// request without a valid cookie is placed as RoundRobin would.
	Cookie Policy = "cookie"
)

// Policies lists the policies, the default first.
var Policies = []Policy{RoundRobin, LeastConn, IPHash, First, Cookie}

// Target is one configured upstream.
type Target struct {
	// URL is scheme://host:port; its path is the route's business, not the
	// pool's.
	URL *url.URL
	// Weight is the share of RoundRobin and LeastConn (1 if 0).
	Weight int
}

// Config is one route's pool.
type Config struct {
	// Route names the route in metrics, logs and the 503 body.
	Route string
	// Targets are the upstreams, in the order written.
	Targets []Target
	// Policy selects an upstream (RoundRobin if empty).
	Policy Policy
	// Health is the active check (off when Health.Path is empty).
	Health Health
	// Passive takes out an upstream that fails requests (off when
	// Passive.MaxFails is 0).
	Passive Passive
	// Retry bounds the tries of one request.
	Retry Retry
	// Resolve, when set, expands each target whose host is a name into one
	// upstream per address it resolves to, resolved again at this interval.
	Resolve time.Duration
	// Cookie names and signs the sticky cookie of the Cookie policy.
	Cookie CookieConfig
}

// Health is an active health check: GET Path on each upstream every
// Interval. Upstreams are healthy until checks say otherwise.
type Health struct {
	// Path is requested on the upstream as is (the route's base path is not
	// prepended). Empty: no active checks.
	Path string
	// Interval between checks (10s if 0); the first runs at once.
	Interval time.Duration
	// Timeout of one check (2s if 0).
	Timeout time.Duration
	// Healthy is how many passed checks in a row bring an upstream back (2 if 0).
	Healthy int
	// Unhealthy is how many failed checks in a row take it out (2 if 0).
	Unhealthy int
	// Expect is the status a passing check answers; 0 takes any 2xx.
	Expect int
}

// Passive is nginx's max_fails/fail_timeout: MaxFails failures within
// FailTimeout take an upstream out for FailTimeout.
type Passive struct {
	// MaxFails is the failures that take an upstream out (0: never).
	MaxFails int
	// FailTimeout is both the window failures are counted in and how long
	// the upstream stays out (10s if 0).
	FailTimeout time.Duration
	// Status5xx counts 5xx answers as failures too (they are not retried:
	// the request was sent).
	Status5xx bool
}

// Retry bounds the work spent on one request.
type Retry struct {
	// Tries is the most upstreams one request goes to (3 if 0).
	Tries int
	// Duration is the time after which no new try starts (10s if 0).
	Duration time.Duration
}

// CookieConfig is the sticky cookie.
type CookieConfig struct {
	// Name of the cookie ("edge_upstream" if empty).
	Name string
	// Secret signs the cookie. Required for the Cookie policy.
	Secret string
}

// WithDefaults returns c with the defaults documented on the fields filled in.
func (c Config) WithDefaults() Config {
	if c.Policy == "" {
		c.Policy = RoundRobin
	}
	if c.Health.Interval <= 0 {
		c.Health.Interval = 10 * time.Second
	}
	if c.Health.Timeout <= 0 {
		c.Health.Timeout = 2 * time.Second
	}
	if c.Health.Healthy <= 0 {
		c.Health.Healthy = 2
	}
	if c.Health.Unhealthy <= 0 {
		c.Health.Unhealthy = 2
	}
	if c.Passive.FailTimeout <= 0 {
		c.Passive.FailTimeout = 10 * time.Second
	}
	if c.Retry.Tries <= 0 {
		c.Retry.Tries = 3
	}
	if c.Retry.Duration <= 0 {
		c.Retry.Duration = 10 * time.Second
	}
	if c.Cookie.Name == "" {
		c.Cookie.Name = "edge_upstream"
	}
	c.Targets = append([]Target(nil), c.Targets...)
	for i := range c.Targets {
		if c.Targets[i].Weight <= 0 {
			c.Targets[i].Weight = 1
		}
	}
	return c
}
