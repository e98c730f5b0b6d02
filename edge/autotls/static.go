package autotls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Static serves one certificate and key read from files (routes.yaml's
// tls.certificate and tls.key) instead of obtaining certificates over
// ACME: a Cloudflare Origin CA certificate, one from a company CA, or a
// self-signed one for a benchmark. It has no account, orders nothing and
// renews nothing; a reload that re-reads the files swaps the pair in with
// Set, and handshakes already begun keep the old one.
type Static struct {
	cert atomic.Pointer[tls.Certificate]
}

// LoadStatic reads a PEM certificate chain and its private key and checks
// that the key belongs to the leaf and that the leaf is valid at now. The
// returned certificate has Leaf set.
func LoadStatic(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	// LoadX509KeyPair rejects a key that does not match the leaf's public key.
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s and key %s: %w", certFile, keyFile, err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse certificate %s: %w", certFile, err)
		}
	}
	switch {
	case now.After(c.Leaf.NotAfter):
		return nil, fmt.Errorf("certificate %s expired on %s", certFile, c.Leaf.NotAfter.UTC().Format(time.DateOnly))
	case now.Before(c.Leaf.NotBefore):
		return nil, fmt.Errorf("certificate %s is not valid before %s", certFile, c.Leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &c, nil
}

// NewStatic returns a Static serving c, which must come from LoadStatic.
func NewStatic(c *tls.Certificate) *Static {
	s := &Static{}
	s.Set(c)
	return s
}

// Set makes c the certificate served from the next handshake on.
func (s *Static) Set(c *tls.Certificate) { s.cert.Store(c) }

// Leaf returns the certificate served.
func (s *Static) Leaf() *x509.Certificate { return s.cert.Load().Leaf }

// TLSConfig returns the TLS listener's configuration: TLS 1.2 and up, HTTP/2
// and HTTP/1.1 via ALPN, and the certificate whatever the SNI: a client
// asking for a name the certificate does not cover gets it anyway and
// fails verification itself, as it would with any server.
func (s *Static) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cert.Load(), nil
		},
	}
}

// HTTPHandler returns the handler of the plain http_listen port: a 308
// redirect to https for the names the certificate covers, 404 for others.
// tlsPort is as for Manager.HTTPHandler.
func (s *Static) HTTPHandler(tlsPort string) http.Handler {
	return redirectHandler(tlsPort, func(host string) bool {
		// VerifyHostname matches an IP address against the IP SANs.
		return host != "" && s.Leaf().VerifyHostname(host) == nil
	})
}

// ErrNoNames is returned by CheckCovers for a certificate without names.
var ErrNoNames = errors.New("certificate names no DNS name or IP address")

// CheckCovers returns an error naming the domains leaf is not valid for.
func CheckCovers(leaf *x509.Certificate, domains []string) error {
	if len(leaf.DNSNames) == 0 && len(leaf.IPAddresses) == 0 {
		return ErrNoNames
	}
	var bad []string
	for _, d := range domains {
		if leaf.VerifyHostname(d) != nil {
			bad = append(bad, d)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("certificate does not cover %s (it names %s)", strings.Join(bad, ", "), strings.Join(leaf.DNSNames, ", "))
	}
	return nil
}
