package autotls

import (
	"github.com/prometheus/client_golang/prometheus"
)

// staticMetrics exports a Static's expiry under the Manager's metric name,
// so that the TLSCertificateExpiringSoon alert and the dashboard panel
// cover a fixed certificate too: nothing renews it.
type staticMetrics struct {
	expiry *prometheus.Desc
	s      *Static
}

var _ prometheus.Collector = (*staticMetrics)(nil)

// Register registers the certificate's expiry on reg:
// edge_tls_certificate_expiry_timestamp_seconds, one series per DNS name
// (or IP address) of the certificate served.
func (s *Static) Register(reg prometheus.Registerer) error {
	return reg.Register(&staticMetrics{
		expiry: prometheus.NewDesc("edge_tls_certificate_expiry_timestamp_seconds",
			"When the certificate served for a managed domain expires (Unix time).", []string{"domain"}, nil),
		s: s,
	})
}

// Describe implements prometheus.Collector.
func (mt *staticMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- mt.expiry }

// Collect implements prometheus.Collector; it reads the certificate served
// now, so a reload's new pair shows at the next scrape.
func (mt *staticMetrics) Collect(ch chan<- prometheus.Metric) {
	leaf := mt.s.Leaf()
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	for _, d := range names {
		ch <- prometheus.MustNewConstMetric(mt.expiry, prometheus.GaugeValue, float64(leaf.NotAfter.Unix()), d)
	}
}
