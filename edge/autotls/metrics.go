package autotls

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Manager's collectors.
type metrics struct {
	ops    *prometheus.CounterVec
	expiry *prometheus.Desc
	m      *Manager
}

var _ prometheus.Collector = (*metrics)(nil)

func newMetrics(reg prometheus.Registerer, m *Manager) (*metrics, error) {
	mt := &metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_tls_certificate_operations_total",
			Help: "Certificate obtains and renewals by outcome.",
		}, []string{"operation", "result"}),
		expiry: prometheus.NewDesc("edge_tls_certificate_expiry_timestamp_seconds",
			"When the certificate served for a managed domain expires (Unix time).", []string{"domain"}, nil),
		m: m,
	}
	// Zero series exist from the start, so that rate() and alerts see the
	// first failure.
	for _, op := range []string{"obtain", "renew"} {
		for _, res := range []string{"success", "failure"} {
			mt.ops.WithLabelValues(op, res)
		}
	}
	if err := reg.Register(mt); err != nil {
		return nil, err
	}
	return mt, nil
}

// Describe implements prometheus.Collector.
func (mt *metrics) Describe(ch chan<- *prometheus.Desc) {
	mt.ops.Describe(ch)
	ch <- mt.expiry
}

// Collect implements prometheus.Collector. The expiry is read from the
// certificate cache at scrape time, so it follows renewals and reloads
// without bookkeeping; a domain without a certificate yet has no series.
func (mt *metrics) Collect(ch chan<- prometheus.Metric) {
	mt.ops.Collect(ch)
	for d, t := range mt.m.expiry() {
		ch <- prometheus.MustNewConstMetric(mt.expiry, prometheus.GaugeValue, float64(t.Unix()), d)
	}
}
