package upstream

import "time"

// Status is one upstream's state, as GET /-/upstreams shows it.
type Status struct {
	Route    string `json:"route"`
	Upstream string `json:"upstream"`
	// Target is the configured URL it came from (a name, when expanded).
	Target string `json:"target"`
	Weight int    `json:"weight"`
	// Healthy is the active checks' verdict.
	Healthy bool `json:"healthy"`
	// Available is whether requests go to it: healthy and not taken out
	// by passive health.
	Available bool `json:"available"`
	// DownUntil is when a passive exclusion ends, if one is on.
	DownUntil *time.Time `json:"down_until,omitempty"`
	// Fails are the passive failures within the window.
	Fails    int   `json:"fails"`
	InFlight int64 `json:"in_flight"`
	// LastCheck and LastResult are the last active check's time and result
	// (a status code or an error).
	LastCheck  *time.Time `json:"last_check,omitempty"`
	LastResult string     `json:"last_result,omitempty"`
}

// Status returns the state of each upstream, in set order.
func (p *Pool) Status() []Status {
	now := time.Now()
	var out []Status
	for _, u := range p.set.Load().ups {
		st := Status{
			Route:     p.cfg.Route,
			Upstream:  u.url.String(),
			Target:    u.target,
			Weight:    int(u.weight.Load()),
			Healthy:   u.healthy.Load(),
			Available: u.available(now.UnixNano()),
			InFlight:  u.inflight.Load(),
		}
		if d := u.downUntil.Load(); d > now.UnixNano() {
			t := time.Unix(0, d).UTC()
			st.DownUntil = &t
		}
		u.mu.Lock()
		cut := now.Add(-p.cfg.Passive.FailTimeout)
		for _, f := range u.fails {
			if f.After(cut) {
				st.Fails++
			}
		}
		if !u.lastCheck.IsZero() {
			t := u.lastCheck.UTC()
			st.LastCheck = &t
			st.LastResult = u.lastResult
		}
		u.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// Route returns the route name the pool was made for.
func (p *Pool) Route() string { return p.cfg.Route }

// UsesClientIP reports whether the policy keys on the client's IP (see
// WithClientIP).
func (p *Pool) UsesClientIP() bool { return p.cfg.Policy == IPHash }
