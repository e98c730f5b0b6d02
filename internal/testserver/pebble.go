package testserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// PebbleVersion is the Pebble the tests are written against (make tools).
const PebbleVersion = "v2.10.3"

// Pebble is a running Pebble: Let's Encrypt's ACME test server, with real
// challenge validation against the ports it was given.
type Pebble struct {
	// DirectoryURL is the ACME directory.
	DirectoryURL string
	// CARootFile is the PEM of the CA that signed Pebble's own HTTPS
	// certificate: what the ACME client must trust (the edge's ca_root).
	CARootFile string
	// MgmtURL is the management API (roots, intermediates).
	MgmtURL string

	logPath string
	tlsConf *tls.Config
}

// PebbleConfig says where Pebble's validation authority connects.
type PebbleConfig struct {
	// HTTPPort and TLSPort are where HTTP-01 and TLS-ALPN-01 challenges
	// are checked, on the address the domain resolves to (127.0.0.1).
	HTTPPort, TLSPort int
	// Blocklist are names Pebble refuses to issue for (rejectedIdentifier).
	Blocklist []string
	// Validity is how long certificates are valid, in seconds (90 days if 0).
	Validity int
}

// StartPebble starts Pebble on loopback with a DNS responder that resolves
// every name to 127.0.0.1, and stops both when t ends. It skips (fails
// under REQUIRE_INTEGRATION=1) when the pebble binary is missing.
func StartPebble(t testing.TB, cfg PebbleConfig) *Pebble {
	t.Helper()
	bin := findServerBinary("pebble", filepath.Join(goBin(), "pebble"))
	if bin == "" {
		Skip(t, "pebble not installed: go install github.com/letsencrypt/pebble/v2/cmd/pebble@%s (or make tools)", PebbleVersion)
	}
	dir := t.TempDir()
	caPEM, certPEM, keyPEM := pebbleHTTPSCert(t)
	writeServerFiles(t, dir, map[string]string{"ca.pem": string(caPEM), "cert.pem": string(certPEM), "key.pem": string(keyPEM)})
	addr, mgmt := reserveLoopbackAddr(t), reserveLoopbackAddr(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":                  addr,
		"managementListenAddress":        mgmt,
		"certificate":                    "cert.pem",
		"privateKey":                     "key.pem",
		"httpPort":                       cfg.HTTPPort,
		"tlsPort":                        cfg.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"domainBlocklist":                append([]string{}, cfg.Blocklist...),
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"profiles":                       map[string]any{"default": map[string]any{"description": "default", "validityPeriod": 7776000}},
	}}
	if cfg.Validity == 0 {
		cfg.Validity = 90 * 86400
	}
	conf["pebble"].(map[string]any)["profiles"] = map[string]any{"default": map[string]any{"description": "default", "validityPeriod": cfg.Validity}}
	b, _ := json.Marshal(conf)
	writeServerFiles(t, dir, map[string]string{"pebble.json": string(b)})

	p := &Pebble{
		DirectoryURL: "https://" + addr + "/dir",
		CARootFile:   filepath.Join(dir, "ca.pem"),
		MgmtURL:      "https://" + mgmt,
		logPath:      filepath.Join(dir, "server.log"),
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	p.tlsConf = &tls.Config{RootCAs: pool}

	dnsAddr := startLoopbackDNS(t)
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", "pebble.json", "-dnsserver", dnsAddr)
	cmd.Dir = dir
	// NOSLEEP: no random 0-15 s wait before validating. NONCEREJECT=0: no
	// deliberately refused nonces (acmez retries them; they only cost time).
	// Validation itself is real: no PEBBLE_VA_ALWAYS_VALID.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	exited := startUntilCleanup(t, "pebble", cmd, logFile)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if _, err := p.get(ctx, p.DirectoryURL); err == nil {
			return p
		}
		select {
		case <-exited:
			t.Fatalf("testserver: pebble exited before ready (%v); log:\n%s", cmd.ProcessState, serverLogTail(p.logPath))
		case <-ctx.Done():
			t.Fatalf("testserver: pebble not ready; log:\n%s", serverLogTail(p.logPath))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// IssuingRoots returns the roots Pebble signs certificates under. Pebble
// makes a new root at every start, so it is fetched, never stored
// (pebble #152).
func (p *Pebble) IssuingRoots(t testing.TB) *x509.CertPool {
	t.Helper()
	b, err := p.get(context.Background(), p.MgmtURL+"/roots/0")
	if err != nil {
		t.Fatalf("pebble root: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble root: no PEM in %q", b)
	}
	return pool
}

// Orders counts the new-order requests Pebble has served so far.
func (p *Pebble) Orders(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "POST /order-plz")
}

// Log is the tail of Pebble's log, for failure messages.
func (p *Pebble) Log() string { return serverLogTail(p.logPath) }

func (p *Pebble) get(ctx context.Context, url string) ([]byte, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: p.tlsConf}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}

// startLoopbackDNS answers every A query with 127.0.0.1 and every other
// query with no records, so that Pebble's validation of any test name
// reaches the edge on loopback.
func startLoopbackDNS(t testing.TB) string {
	t.Helper()
	// Pebble's resolver asks over TCP as well: the same port on both. A
	// free UDP port may be taken for TCP (by another test's listener):
	// then another pair is tried.
	var pc net.PacketConn
	var tl net.Listener
	for try := 0; ; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatalf("testserver: dns: %v", err)
		}
		if tl, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if try == 20 {
			t.Fatalf("testserver: dns tcp: %v", err)
		}
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: tl, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// pebbleHTTPSCert makes a CA and a certificate for 127.0.0.1 signed by it:
// Pebble's own HTTPS identity (the files shipped in its repository are not
// installed by go install).
func pebbleHTTPSCert(t testing.TB) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "testserver pebble CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// goBin is where go install puts binaries.
func goBin() string {
	if p := os.Getenv("GOBIN"); p != "" {
		return p
	}
	if p := os.Getenv("GOPATH"); p != "" {
		return filepath.Join(filepath.SplitList(p)[0], "bin")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, "go", "bin")
}
