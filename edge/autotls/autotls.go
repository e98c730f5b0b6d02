// Package autotls is the edge's automatic HTTPS: certificates obtained over
// ACME with certmagic (HTTP-01 on the plain port, TLS-ALPN-01 on the TLS
// port), kept in a directory that survives restarts, renewed in the
// background, and the set of domains changed on reload.
//
// What it deliberately does not do: on-demand TLS (issuing for whatever
// SNI arrives lets anyone who points a name at the edge spend its rate
// limits, Caddy #5008), OCSP stapling and Must-Staple (Let's Encrypt ended
// OCSP in 2025), wildcards (they need DNS-01).
package autotls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Config is what a Manager needs. The zero value of every field but
// Storage and CA is usable.
type Config struct {
	// CA is the ACME directory URL.
	CA string
	// Email is the ACME account's contact ("" for none).
	Email string
	// Roots are trusted for the CA's own HTTPS. If nil, the system's roots
	// are used.
	Roots *x509.CertPool
	// EABKeyID and EABMACKey are the External Account Binding, for CAs
	// that require one (ZeroSSL); "" for none.
	EABKeyID, EABMACKey string
	// Storage is the directory of certificates, keys and the account. It is
	// created (0700) if missing.
	Storage string
	// HTTPPort and TLSPort are the ports the edge answers challenges on:
	// those of its plain (http_listen) and TLS listeners. certmagic tries to
	// bind them itself to solve a challenge; finding them taken, it leaves
	// the answering to the edge's handlers. HTTPPort 0 disables HTTP-01.
	HTTPPort, TLSPort int
	// ListenHost is the host of those listeners ("" for all interfaces).
	ListenHost string
}

// Manager obtains, stores, renews and serves the certificates of a set of
// domains.
type Manager struct {
	log    *slog.Logger
	cache  *certmagic.Cache
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer
	m      *metrics

	mu      sync.Mutex // serializes Manage
	cancels map[string]context.CancelFunc
	domains atomic.Pointer[[]string] // sorted
	stopped bool
}

// New returns a Manager managing no domain yet. Its metrics are registered
// on reg; log receives certmagic's warnings and the outcome of every
// obtain and renewal.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Manager, error) {
	if cfg.CA == "" {
		return nil, errors.New("autotls: no CA directory URL")
	}
	if cfg.Storage == "" {
		return nil, errors.New("autotls: no storage directory")
	}
	if err := checkStorage(cfg.Storage); err != nil {
		return nil, err
	}
	m := &Manager{log: log, cancels: make(map[string]context.CancelFunc)}
	m.domains.Store(new([]string))
	var err error
	if m.m, err = newMetrics(reg, m); err != nil {
		return nil, fmt.Errorf("register tls metrics: %w", err)
	}
	zl := zap.New(slogCore{h: log.Handler(), min: slog.LevelWarn})
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		Logger:           zl,
	})
	m.magic = certmagic.New(m.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: cfg.Storage},
		Logger:  zl,
		OnEvent: m.onEvent,
		// Let's Encrypt no longer runs OCSP responders; asking would only
		// add network calls (and Pebble has none).
		OCSP: certmagic.OCSPConfig{DisableStapling: true},
	})
	var eab *acme.EAB
	if cfg.EABKeyID != "" {
		eab = &acme.EAB{KeyID: cfg.EABKeyID, MACKey: cfg.EABMACKey}
	}
	m.issuer = certmagic.NewACMEIssuer(m.magic, certmagic.ACMEIssuer{
		ExternalAccount:      eab,
		CA:                   cfg.CA,
		Email:                cfg.Email,
		Agreed:               true,
		TrustedRoots:         cfg.Roots,
		DisableHTTPChallenge: cfg.HTTPPort == 0,
		AltHTTPPort:          cfg.HTTPPort,
		AltTLSALPNPort:       cfg.TLSPort,
		ListenHost:           cfg.ListenHost,
		Logger:               zl,
	})
	m.magic.Issuers = []certmagic.Issuer{m.issuer}
	return m, nil
}

// checkStorage makes dir and checks it can be written, so that a bad
// storage setting stops the edge at start instead of failing every order.
func checkStorage(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tls storage: %w", err)
	}
	f, err := os.CreateTemp(dir, ".write-test-")
	if err != nil {
		return fmt.Errorf("tls storage %s is not writable: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(filepath.Clean(name))
}

// Manage makes domains the managed set. A domain new to the set is loaded
// from storage if its certificate is there (a restart orders nothing), or
// obtained in the background; one that cannot be obtained is retried with
// backoff and does not hold up the others. A domain dropped from the set
// stops being served and renewed.
func (m *Manager) Manage(domains []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	want := make(map[string]bool, len(domains))
	for _, d := range domains {
		want[strings.ToLower(d)] = true
	}
	var added, removed []string
	for d, cancel := range m.cancels {
		if !want[d] {
			cancel() // ends retries of an obtain still failing
			delete(m.cancels, d)
			removed = append(removed, d)
		}
	}
	if len(removed) > 0 {
		subjects := make([]certmagic.SubjectIssuer, len(removed))
		for i, d := range removed {
			subjects[i] = certmagic.SubjectIssuer{Subject: d}
		}
		m.cache.RemoveManaged(subjects)
	}
	for d := range want {
		if _, ok := m.cancels[d]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		m.cancels[d] = cancel
		added = append(added, d)
		// One call per domain: ManageAsync loads each from storage or
		// starts its obtain job on a goroutine of its own, so one failing
		// name never delays another.
		if err := m.magic.ManageAsync(ctx, []string{d}); err != nil {
			m.log.Error("manage certificate", "domain", d, "err", err)
		}
	}
	all := make([]string, 0, len(m.cancels))
	for d := range m.cancels {
		all = append(all, d)
	}
	slices.Sort(all)
	slices.Sort(added)
	slices.Sort(removed)
	m.domains.Store(&all)
	if len(added)+len(removed) > 0 {
		m.log.Info("tls domains", "managed", all, "added", added, "removed", removed)
	}
}

// Domains returns the managed domains, sorted.
func (m *Manager) Domains() []string { return *m.domains.Load() }

// manages reports whether host (lower case, no port) is a managed domain.
func (m *Manager) manages(host string) bool {
	_, found := slices.BinarySearch(*m.domains.Load(), host)
	return found
}

// TLSConfig returns the TLS listener's configuration: TLS 1.2 and up,
// HTTP/2 and HTTP/1.1 via ALPN, the managed certificates by SNI and the
// answers to TLS-ALPN-01 challenges.
func (m *Manager) TLSConfig() *tls.Config {
	tc := m.magic.TLSConfig()
	tc.MinVersion = tls.VersionTLS12
	get := tc.GetCertificate
	tc.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if hello.ServerName == "" {
			// A client that sends no SNI (one dialing an IP address) gets
			// the first domain's certificate rather than a failed
			// handshake. A name that is not managed still fails: there is
			// no on-demand issuance.
			if d := m.Domains(); len(d) > 0 {
				h := *hello
				h.ServerName = d[0]
				return get(&h)
			}
		}
		return get(hello)
	}
	// "acme-tls/1" is TLS-ALPN-01's protocol (RFC 8737); certmagic answers
	// it with the challenge certificate.
	tc.NextProtos = []string{"h2", "http/1.1", "acme-tls/1"}
	return tc
}

// Certificate returns the leaf certificate served for domain, or nil.
func (m *Manager) Certificate(domain string) *x509.Certificate {
	var best *x509.Certificate
	for _, c := range m.cache.AllMatchingCertificates(domain) {
		if c.Leaf != nil && (best == nil || c.Leaf.NotAfter.After(best.NotAfter)) {
			best = c.Leaf
		}
	}
	return best
}

// Stop ends background renewals and pending obtains.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	m.stopped = true
	for _, cancel := range m.cancels {
		cancel()
	}
	m.cache.Stop()
}

// onEvent logs and counts certmagic's obtain and renewal outcomes. Errors
// carry the CA's answer (an ACME problem document: type and detail).
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	op := "obtain"
	if r, _ := data["renewal"].(bool); r {
		op = "renew"
	}
	domain, _ := data["identifier"].(string)
	switch event {
	case "cert_obtained":
		m.m.ops.WithLabelValues(op, "success").Inc()
		m.log.Info("certificate "+op+" succeeded", "domain", domain, "issuer", data["issuer"])
	case "cert_failed":
		m.m.ops.WithLabelValues(op, "failure").Inc()
		err, _ := data["error"].(error)
		m.log.Error("certificate "+op+" failed, retrying with backoff", "domain", domain, "err", err)
	}
	return nil
}

// expiry returns the NotAfter of each managed domain's certificate.
func (m *Manager) expiry() map[string]time.Time {
	out := make(map[string]time.Time)
	for _, d := range m.Domains() {
		if c := m.Certificate(d); c != nil {
			out[d] = c.NotAfter
		}
	}
	return out
}
