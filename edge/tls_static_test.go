package edge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTestPair writes a self-signed certificate named cn for names,
// valid until notAfter, and its key into dir; it returns their paths.
func writeTestPair(t testing.TB, dir, cn string, names []string, notAfter time.Time) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: names, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	cert, keyFile := filepath.Join(dir, cn+".pem"), filepath.Join(dir, cn+".key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, keyFile
}

func TestLoadTLSStaticErrors(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeTestPair(t, dir, "good", []string{"a.example.com"}, time.Now().Add(30*24*time.Hour))
	old, oldKey := writeTestPair(t, dir, "old", []string{"a.example.com"}, time.Now().Add(-time.Minute))
	env := map[string]string{"UP": "http://127.0.0.1:9", "CERT": cert, "KEY": key, "OLD": old, "OLD_KEY": oldKey, "MISSING": filepath.Join(dir, "missing.pem")}
	load := func(tlsBlock string) (*Config, error) {
		return Load(strings.NewReader("tls: "+tlsBlock+"\nroutes: [ { path: /, to: \"${UP}\" } ]\n"), envLookup(env))
	}
	// No domains needed: the certificate names them.
	cfg, err := load(`{ certificate: "${CERT}", key: "${KEY}" }`)
	if err != nil || cfg.TLS.Static == nil || cfg.TLS.Static.Leaf.Subject.CommonName != "good" || cfg.TLS.Certificate != cert {
		t.Fatalf("static pair: %v", err)
	}
	for block, want := range map[string]string{
		`{ certificate: "${CERT}" }`:                                          "line 1: tls: certificate and key go together",
		`{ key: "${KEY}" }`:                                                   "line 1: tls: certificate and key go together",
		`{ certificate: "${CERT}", key: "${OLD_KEY}" }`:                       "private key does not match public key",
		`{ certificate: "${OLD}", key: "${OLD_KEY}" }`:                        "line 1: tls: certificate " + old + " expired on",
		`{ certificate: "${MISSING}", key: "${KEY}" }`:                        "no such file or directory",
		`{ certificate: "${CERT}", key: "${KEY}", domains: [b.example.com] }`: "tls: certificate does not cover b.example.com (it names a.example.com)",
	} {
		if _, err := load(block); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", block, err, want)
		}
	}
}

// A static certificate is served over HTTP/2 without any ACME CA, and a
// reload re-reads the files; a reload with a broken pair keeps the old one.
func TestStaticTLSServe(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeTestPair(t, dir, "first", []string{"a.edge.test"}, time.Now().Add(90*24*time.Hour))
	up := newUpstream(t)
	yaml := `
listen: 127.0.0.1:1
tls:
  certificate: "${CERT}"
  key: "${KEY}"
  listen: "${TLS_ADDR}"
  http_listen: "${HTTP_ADDR}"
routes:
  - { path: /, to: "${UP}" }
`
	e := startTLSEdge(t, yaml, map[string]string{"CERT": cert, "KEY": key, "UP": up.URL}, "127.0.0.1:0", "127.0.0.1:0")
	roots := x509.NewCertPool()
	servedCN := func() string {
		t.Helper()
		var conn *tls.Conn
		var err error
		for i := 0; i < 100; i++ { // Serve starts the listener's server asynchronously
			if conn, err = tls.Dial("tcp", e.tlsAddr, &tls.Config{InsecureSkipVerify: true, ServerName: "a.edge.test"}); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		leaf := conn.ConnectionState().PeerCertificates[0]
		roots.AddCert(leaf)
		return leaf.Subject.CommonName
	}
	if cn := servedCN(); cn != "first" {
		t.Fatalf("served %q", cn)
	}
	client := e.h2Client(roots)
	defer client.CloseIdleConnections()
	res, err := client.Get("https://a.edge.test:" + port(e.tlsAddr) + "/x")
	if err != nil {
		t.Fatal(err)
	}
	if s := seenBy(t, res); res.ProtoMajor != 2 || s.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("proto %s, X-Forwarded-Proto %q", res.Proto, s.Header.Get("X-Forwarded-Proto"))
	}
	res, err = client.Get("http://a.edge.test:" + port(e.httpAddr) + "/y")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != "https://a.edge.test:"+port(e.tlsAddr)+"/y" {
		t.Errorf("redirect: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if e.TLSManager() != nil {
		t.Error("an ACME manager was started for a static certificate")
	}
	if got := e.metric(t, `edge_tls_certificate_expiry_timestamp_seconds{domain="a.edge.test"}`); got < float64(time.Now().Add(80*24*time.Hour).Unix()) {
		t.Errorf("expiry metric %v", got)
	}

	// Replace the files, reload: the next handshake gets the new pair.
	writeTestPair(t, dir, "second", []string{"a.edge.test"}, time.Now().Add(5*24*time.Hour))
	for _, f := range [][2]string{{"second.pem", "first.pem"}, {"second.key", "first.key"}} {
		if err := os.Rename(filepath.Join(dir, f[0]), filepath.Join(dir, f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn := servedCN(); cn != "second" {
		t.Errorf("after reload served %q", cn)
	}
	if got := e.metric(t, `edge_tls_certificate_expiry_timestamp_seconds{domain="a.edge.test"}`); got > float64(time.Now().Add(6*24*time.Hour).Unix()) {
		t.Errorf("expiry metric after reload %v, want the 5-day certificate's", got)
	}
	if !strings.Contains(e.log.String(), "tls certificate expires soon") {
		t.Errorf("no expiry warning for a 5-day certificate:\n%s", e.log.String())
	}

	// A key of another certificate: the reload fails, the old pair stays.
	_, otherKey := writeTestPair(t, dir, "other", []string{"a.edge.test"}, time.Now().Add(time.Hour))
	if err := os.Rename(otherKey, key); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(); err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Errorf("reload with a mismatched key: %v", err)
	}
	if cn := servedCN(); cn != "second" {
		t.Errorf("after a failed reload served %q", cn)
	}
}
