package upstream

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// checkLoop runs the active checks: the first at once, then every
// Interval, until ctx ends.
func (p *Pool) checkLoop(ctx context.Context) {
	defer p.done.Done()
	t := time.NewTicker(p.cfg.Health.Interval)
	defer t.Stop()
	for {
		p.checkAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkAll checks every upstream at once, so that one that hangs delays
// no other's verdict.
func (p *Pool) checkAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, u := range p.set.Load().ups {
		wg.Go(func() { p.check(ctx, u) })
	}
	wg.Wait()
}

// check probes u once and records the result.
func (p *Pool) check(ctx context.Context, u *Upstream) {
	h := p.cfg.Health
	cctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, u.url.String()+h.Path, nil)
	if err != nil {
		p.record(u, false, "bad request: "+err.Error())
		return
	}
	req.Header.Set("User-Agent", "edge-health-check")
	res, err := u.tr.RoundTrip(req)
	if err != nil {
		if ctx.Err() != nil {
			return // the pool is closing: no verdict
		}
		p.record(u, false, err.Error())
		return
	}
	// Read a little so the connection can be reused; a health body is short.
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	ok := res.StatusCode == h.Expect || h.Expect == 0 && res.StatusCode >= 200 && res.StatusCode < 300
	p.record(u, ok, strconv.Itoa(res.StatusCode))
}

func (p *Pool) record(u *Upstream, ok bool, result string) {
	if u.report(p.cfg.Health, ok, result, time.Now()) {
		if ok {
			p.log.Info("upstream healthy", "route", p.cfg.Route, "upstream", u.url.Host)
		} else {
			p.log.Warn("upstream unhealthy", "route", p.cfg.Route, "upstream", u.url.Host, "result", result)
		}
	}
}
