package upstream

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the pools' series, registered once per edge on its registry.
type Metrics struct {
	healthy  *prometheus.GaugeVec
	requests *prometheus.CounterVec
	retries  *prometheus.CounterVec
}

// NewMetrics registers the pools' series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edge_upstream_healthy",
			Help: "Whether requests go to an upstream of a pool (1) or it is out, by active or passive health (0).",
		}, []string{"route", "upstream"}),
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
