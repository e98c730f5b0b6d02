package edge

import (
	"gopkg.in/yaml.v3"
)

var upKeys = []string{"dial_timeout", "response_header_timeout", "max_idle_conns_per_host", "tls_ca", "tls_server_name", "tls_insecure_skip_verify"}

// upstream parses the upstream section: timeouts, the idle pool, and how
// https:// upstreams are trusted. The CA file is read and checked here, so
// that a missing or empty bundle stops the start (or the reload) instead of
// failing every request with a 502.
func (l *loader) upstream(up *Upstream, n *yaml.Node, k string) {
	l.fields(n, k, upKeys, func(k2 string, v *yaml.Node) {
		where := k + "." + k2
		switch k2 {
		case "dial_timeout":
			up.DialTimeout = l.duration(v, where)
		case "response_header_timeout":
			up.ResponseHeaderTimeout = l.duration(v, where)
		case "max_idle_conns_per_host":
			up.MaxIdleConnsPerHost = l.count(v, where)
			if up.MaxIdleConnsPerHost == 0 {
				// net/http would read 0 as its default of 2, which churns connections.
				l.errorf(v, "%s: want at least 1", where)
			}
		case "tls_ca":
			if path, pem, pool := l.caFile(v, where); pool != nil {
				up.TLSCA, up.TLSCAPEM = path, string(pem)
			}
		case "tls_server_name":
			up.TLSServerName, _ = l.str(v, where)
		case "tls_insecure_skip_verify":
			up.TLSInsecureSkipVerify = l.boolean(v, where)
		}
	})
	if up.TLSInsecureSkipVerify && up.TLSCA != "" {
		l.errorf(n, "%s: tls_ca and tls_insecure_skip_verify contradict each other: keep one", k)
	}
}
