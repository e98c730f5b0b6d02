package upstream

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"time"
)

// resolveTimeout bounds one lookup.
const resolveTimeout = 5 * time.Second

// resolveAll returns the hosts (host:port) of each target: the target's
// own host, or with Config.Resolve one per address its name resolves to.
// A lookup that fails or finds nothing keeps last (the previous result
// for that target) or, at first, the name itself, so a DNS hiccup never
// empties a pool.
func (p *Pool) resolveAll(ctx context.Context, last [][]string) [][]string {
	out := make([][]string, len(p.cfg.Targets))
	for i, t := range p.cfg.Targets {
		host, port := t.URL.Hostname(), t.URL.Port()
		_, err := netip.ParseAddr(host)
		if p.cfg.Resolve <= 0 || err == nil {
			out[i] = []string{t.URL.Host}
			continue
		}
		if port == "" {
			port = "80"
			if t.URL.Scheme == "https" {
				port = "443"
			}
		}
		cctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		addrs, err := p.opts.Resolver.LookupHost(cctx, host)
		cancel()
		if err != nil || len(addrs) == 0 {
			if ctx.Err() == nil {
				p.log.Warn("resolve upstream, keeping the last addresses", "route", p.cfg.Route, "host", host, "err", err)
			}
			if last != nil {
				out[i] = last[i]
			} else {
				out[i] = []string{t.URL.Host}
			}
			continue
		}
		slices.Sort(addrs)
		for _, a := range addrs {
			out[i] = append(out[i], net.JoinHostPort(a, port))
		}
	}
	return out
}

// resolveLoop resolves the targets again every Config.Resolve and swaps the
// set when the addresses changed.
func (p *Pool) resolveLoop(ctx context.Context, last [][]string) {
	defer p.done.Done()
	t := time.NewTicker(p.cfg.Resolve)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		addrs := p.resolveAll(ctx, last)
		if ctx.Err() != nil {
			return
		}
		if !slices.EqualFunc(addrs, last, slices.Equal) {
			p.log.Info("upstream addresses changed", "route", p.cfg.Route, "addresses", addrs)
			p.swap(addrs)
			last = addrs
		}
	}
}
