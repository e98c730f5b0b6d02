package upstream

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pools' series, registered once per edge on its registry.
type Metrics struct {
	healthy  *healthCollector
	requests *prometheus.CounterVec
	retries  *prometheus.CounterVec
}

// NewMetrics registers the pools' series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		healthy: &healthCollector{
			desc: prometheus.NewDesc("edge_upstream_healthy",
				"Whether requests go to an upstream of a pool (1) or it is out, by active or passive health (0).",
				[]string{"route", "upstream"}, nil),
			pools: make(map[*Pool]struct{}),
		},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_upstream_requests_total",
			Help: "Tries sent to the upstreams of pools, by route, upstream and status code (\"error\" when no answer came).",
		}, []string{"route", "upstream", "code"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_retries_total",
			Help: "Requests sent to another upstream, by route and reason (dial: not sent; error: an idempotent request that failed).",
		}, []string{"route", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.healthy, m.requests, m.retries} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// healthCollector reads edge_upstream_healthy from the live pools at each
// scrape: a passive exclusion ends by time, with no event that could set
// a gauge, and an idle pool must not look down.
type healthCollector struct {
	desc  *prometheus.Desc
	mu    sync.Mutex
	pools map[*Pool]struct{}
}

var _ prometheus.Collector = (*healthCollector)(nil)

func (c *healthCollector) add(p *Pool) {
	c.mu.Lock()
	c.pools[p] = struct{}{}
	c.mu.Unlock()
}

func (c *healthCollector) remove(p *Pool) {
	c.mu.Lock()
	delete(c.pools, p)
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector. Right after a reload the old
// and the new pool of a route are both live: each series is sent once.
func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now().UnixNano()
	c.mu.Lock()
	pools := make([]*Pool, 0, len(c.pools))
	for p := range c.pools {
		pools = append(pools, p)
	}
	c.mu.Unlock()
	seen := make(map[[2]string]bool)
	for _, p := range pools {
		for _, u := range p.set.Load().ups {
			k := [2]string{p.cfg.Route, u.url.Host}
			if seen[k] {
				continue
			}
			seen[k] = true
			v := 0.0
			if u.available(now) {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, k[0], k[1])
		}
	}
}
