package edge

import (
	"time"

	"gopkg.in/yaml.v3"

	"selfhost.dev/edgeapp/edge/autotls"
)

// tlsStatic checks tls.certificate and tls.key and reads the pair, so that
// a missing file, a key of another certificate or an expired certificate
// stops the start, and a reload with one keeps the running configuration.
// An expired (or not yet valid) certificate is an error, not a warning:
// every client would refuse it, and the old pair is better kept. One close
// to expiry is only warned about when served (server_tls_static.go).
func (l *loader) tlsStatic(t *TLS, n *yaml.Node) {
	if t.Certificate == "" && t.Key == "" {
		return
	}
	if t.Certificate == "" || t.Key == "" {
		l.errorf(n, "tls: certificate and key go together (PEM files of the certificate chain and its private key)")
		return
	}
	c, err := autotls.LoadStatic(t.Certificate, t.Key, time.Now())
	if err != nil {
		l.errorf(n, "tls: %v", err)
		return
	}
	if err := autotls.CheckCovers(c.Leaf, t.Domains); err != nil {
		l.errorf(n, "tls: %v", err)
		return
	}
	t.Static = c
}
