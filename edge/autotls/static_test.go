package autotls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePair writes a self-signed certificate for names, valid from
// notBefore to notAfter, and its key into dir.
func writePair(t *testing.T, dir, name string, names []string, notBefore, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: names, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestLoadStatic(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	good, goodKey := writePair(t, dir, "good", []string{"a.example.com", "*.b.example.com"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	_, otherKey := writePair(t, dir, "other", []string{"a.example.com"}, now.Add(-time.Hour), now.Add(time.Hour))
	expired, expiredKey := writePair(t, dir, "expired", []string{"a.example.com"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	future, futureKey := writePair(t, dir, "future", []string{"a.example.com"}, now.Add(24*time.Hour), now.Add(48*time.Hour))

	c, err := LoadStatic(good, goodKey, now)
	if err != nil || c.Leaf == nil || c.Leaf.Subject.CommonName != "good" {
		t.Fatalf("good pair: %v", err)
	}
	for _, tc := range []struct{ cert, key, want string }{
		{good, otherKey, "private key does not match public key"},
		{expired, expiredKey, "expired on"},
		{future, futureKey, "is not valid before"},
		{filepath.Join(dir, "missing.pem"), goodKey, "no such file"},
		{goodKey, good, "load certificate"},
	} {
		if _, err := LoadStatic(tc.cert, tc.key, now); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadStatic(%s, %s) = %v, want %q", filepath.Base(tc.cert), filepath.Base(tc.key), err, tc.want)
		}
	}

	if err := CheckCovers(c.Leaf, []string{"a.example.com", "x.b.example.com"}); err != nil {
		t.Error(err)
	}
	if err := CheckCovers(c.Leaf, []string{"a.example.com", "c.example.com", "b.example.com"}); err == nil ||
		!strings.Contains(err.Error(), "does not cover c.example.com, b.example.com") {
		t.Errorf("uncovered names: %v", err)
	}
	noNames, noNamesKey := writePair(t, dir, "nonames", nil, now.Add(-time.Hour), now.Add(time.Hour))
	nc, err := LoadStatic(noNames, noNamesKey, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCovers(nc.Leaf, nil); !errors.Is(err, ErrNoNames) {
		t.Errorf("no names: %v", err)
	}
}

// Set swaps the certificate for the next handshake; the redirect port
// answers for the certificate's names only.
func TestStaticServe(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	c1, k1 := writePair(t, dir, "one", []string{"a.example.com"}, now.Add(-time.Hour), now.Add(time.Hour))
	c2, k2 := writePair(t, dir, "two", []string{"a.example.com"}, now.Add(-time.Hour), now.Add(time.Hour))
	one, err := LoadStatic(c1, k1, now)
	if err != nil {
		t.Fatal(err)
	}
	two, err := LoadStatic(c2, k2, now)
	if err != nil {
		t.Fatal(err)
	}
	st := NewStatic(one)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = st.TLSConfig()
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	served := func() string {
		conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "a.example.com", NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		cs := conn.ConnectionState()
		if cs.NegotiatedProtocol != "h2" {
			t.Errorf("ALPN %q, want h2", cs.NegotiatedProtocol)
		}
		return cs.PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "one" {
		t.Errorf("served %q, want one", got)
	}
	st.Set(two)
	if got := served(); got != "two" {
		t.Errorf("after Set served %q, want two", got)
	}

	h := st.HTTPHandler("8443")
	for host, want := range map[string]int{"a.example.com": http.StatusPermanentRedirect, "other.example.com": http.StatusNotFound} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://"+host+"/p?q=1", nil))
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", host, rec.Code, want)
		}
		if want == http.StatusPermanentRedirect && rec.Header().Get("Location") != "https://a.example.com:8443/p?q=1" {
			t.Errorf("Location %q", rec.Header().Get("Location"))
		}
	}
}
