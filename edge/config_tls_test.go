package edge

import (
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLoadTLS(t *testing.T) {
	cfg, err := Load(strings.NewReader(`
h2c: true
tls:
  domains: [Example.com., www.example.com]
  email: ops@example.com
  ca: letsencrypt-staging
  storage: /srv/certs
  listen: "127.0.0.1:8443"
  http_listen: "off"
routes:
  - { path: /, to: "${UP}" }
`), envLookup(testEnv))
	if err != nil {
		t.Fatal(err)
	}
	tl := cfg.TLS
	if !cfg.H2C || tl == nil || !slices.Equal(tl.Domains, []string{"example.com", "www.example.com"}) ||
		tl.CA != namedCAs["letsencrypt-staging"] || tl.Storage != "/srv/certs" || tl.Listen != "127.0.0.1:8443" ||
		tl.HTTPListen != "off" || tl.Email != "ops@example.com" || tl.Line != 4 {
		t.Errorf("got %+v, h2c %v", tl, cfg.H2C)
	}

	// Defaults, and the domains taken from the routes' hosts.
	cfg, err = Load(strings.NewReader(`
tls: {}
routes:
  - { path: /, to: "${UP}", host: b.example.com }
  - { path: /x, to: "${UP}", host: a.example.com }
  - { path: /y, to: "${UP}", host: a.example.com }
  - { path: /, to: "${UP}" }
`), envLookup(testEnv))
	if err != nil {
		t.Fatal(err)
	}
	tl = cfg.TLS
	if !slices.Equal(tl.Domains, []string{"a.example.com", "b.example.com"}) || tl.CA != namedCAs["letsencrypt"] ||
		tl.Listen != ":443" || tl.HTTPListen != ":80" || tl.Storage != "/var/lib/edge/certs" || cfg.H2C {
		t.Errorf("defaults: %+v", tl)
	}

	// No tls: no TLS.
	cfg, err = Load(strings.NewReader("routes: [ { path: /, to: \"${UP}\" } ]\n"), envLookup(testEnv))
	if err != nil || cfg.TLS != nil || cfg.H2C {
		t.Errorf("without tls: %+v %v", cfg, err)
	}
}

// caFileEnv returns ${GOOD} (a CA file: any certificate will do, the test
// HTTPS server's is at hand), ${BAD} (no certificate in it), ${MISSING}
// (no such file) and ${UP} set to up.
func caFileEnv(t *testing.T, up string) map[string]string {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"UP": up, "GOOD": testCertFile(t), "BAD": bad, "MISSING": filepath.Join(dir, "none.pem")}
}

func TestLoadTLSCARoot(t *testing.T) {
	env := caFileEnv(t, "http://127.0.0.1:9")
	bad := env["BAD"]
	cfg, err := Load(strings.NewReader("tls: { domains: [a.example.com], ca: \"https://127.0.0.1:14000/dir\", ca_root: \"${GOOD}\" }\nroutes: [ { path: /, to: \"${UP}\" } ]\n"), envLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.CARootPool == nil || cfg.TLS.CA != "https://127.0.0.1:14000/dir" {
		t.Errorf("ca_root not loaded: %+v", cfg.TLS)
	}
	for _, c := range []struct{ v, want string }{
		{"${BAD}", "line 1: tls.ca_root: no PEM certificate in " + bad},
		{"${MISSING}", "line 1: tls.ca_root: open " + env["MISSING"] + ": no such file or directory"},
	} {
		_, err := Load(strings.NewReader("tls: { domains: [a.example.com], ca_root: \""+c.v+"\" }\nroutes: [ { path: /, to: \"${UP}\" } ]\n"), envLookup(env))
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: got %v, want %q", c.v, err, c.want)
		}
	}
}

// Every bad tls: setting is reported with its line, all at once.
func TestLoadTLSErrors(t *testing.T) {
	_, err := Load(strings.NewReader(`
listen: ":443"
h2c: maybe
tls:
  domains: ["*.example.com", localhost, 10.0.0.1, a..b.com, ex_ample.com, ok.example.com, OK.example.com]
  email: "not an address"
  ca: http://acme.example.com/dir
  storage: ""
  listen: ":99999"
  http_listen: ":443"
  on_demand: true
routes:
  - { path: /, to: "${UP}" }
`), envLookup(testEnv))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`line 3: h2c: want true or false, got "maybe"`,
		`line 5: tls.domains[0]: bad domain "*.example.com": wildcards need the DNS-01 challenge`,
		`line 5: tls.domains[1]: bad domain "localhost": a single label`,
		`line 5: tls.domains[2]: bad domain "10.0.0.1": an IP address`,
		`line 5: tls.domains[3]: bad domain "a..b.com": bad label ""`,
		`line 5: tls.domains[4]: bad domain "ex_ample.com": want letters, digits and -`,
		`line 5: tls.domains[6]: domain "OK.example.com" repeated`,
		`line 6: tls.email: bad address "not an address"`,
		`line 7: tls.ca: want letsencrypt, letsencrypt-staging, zerossl or an https:// directory URL, got "http://acme.example.com/dir"`,
		`line 8: tls.storage: want a directory`,
		`line 9: tls.listen: bad port in ":99999"`,
		`line 11: tls: unknown key "on_demand"`,
		`line 5: tls: listen ":99999" and http_listen ":443" must differ from the plain listen ":443"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}

	// Listeners that would share a port, written differently.
	for _, c := range []struct{ yaml, want string }{
		{"listen: 0.0.0.0:8443\ntls: { domains: [a.example.com], listen: \":8443\" }", `must differ from the plain listen "0.0.0.0:8443"`},
		{"admin: 127.0.0.1:9180\ntls: { domains: [a.example.com], http_listen: \":9180\" }", `must differ from the admin port "127.0.0.1:9180"`},
		{"tls: { domains: [a.example.com], listen: \"[::]:8443\", http_listen: \"127.0.0.1:8443\" }", `are the same port`},
	} {
		_, err := Load(strings.NewReader(c.yaml+"\nroutes: [ { path: /, to: \"${UP}\" } ]\n"), envLookup(testEnv))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.yaml, err, c.want)
		}
	}

	// ZeroSSL needs External Account Binding; its two halves go together.
	_, err = Load(strings.NewReader("tls: { domains: [a.example.com], ca: zerossl }\nroutes: [ { path: /, to: \"${UP}\" } ]\n"), envLookup(testEnv))
	if err == nil || !strings.Contains(err.Error(), "line 1: tls.ca: ZeroSSL needs eab_key_id and eab_mac_key") {
		t.Errorf("zerossl without EAB: %v", err)
	}
	_, err = Load(strings.NewReader("tls: { domains: [a.example.com], eab_key_id: kid }\nroutes: [ { path: /, to: \"${UP}\" } ]\n"), envLookup(testEnv))
	if err == nil || !strings.Contains(err.Error(), "line 1: tls: eab_key_id and eab_mac_key go together") {
		t.Errorf("half an EAB: %v", err)
	}
	env := map[string]string{"UP": "http://127.0.0.1:9", "EAB": "c2VjcmV0"}
	cfg, err := Load(strings.NewReader("tls: { domains: [a.example.com], ca: zerossl, eab_key_id: kid, eab_mac_key: \"${EAB}\" }\nroutes: [ { path: /, to: \"${UP}\" } ]\n"), envLookup(env))
	if err != nil || cfg.TLS.EABKeyID != "kid" || cfg.TLS.EABMACKey != "c2VjcmV0" || cfg.TLS.CA != namedCAs["zerossl"] {
		t.Errorf("zerossl with EAB: %v", err)
	}

	// No domain anywhere.
	_, err = Load(strings.NewReader("tls: { email: ops@example.com }\nroutes: [ { path: /, to: \"${UP}\" } ]\n"), envLookup(testEnv))
	if err == nil || !strings.Contains(err.Error(), "line 1: tls.domains: no domains: list them, or give routes a host") {
		t.Errorf("no domains: %v", err)
	}
}

// testCertPEM is a certificate in PEM: httptest's.
func testCertPEM(t testing.TB) []byte {
	srv := httptest.NewTLSServer(nil)
	defer srv.Close()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// upstream.tls_* are read and checked at load: the CA file must hold a
// certificate, and trusting a CA contradicts trusting anything.
func TestLoadUpstreamTLS(t *testing.T) {
	env := caFileEnv(t, "https://127.0.0.1:9")
	good, bad := env["GOOD"], env["BAD"]
	cfg, err := Load(strings.NewReader("upstream: { tls_ca: \"${GOOD}\", tls_server_name: app.internal }\nroutes: [ { path: /, to: \"${UP}\" } ]\n"), envLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(good)
	if u := cfg.Upstream; u.TLSCA != good || u.TLSCAPEM != string(pem) || u.TLSServerName != "app.internal" || u.TLSInsecureSkipVerify {
		t.Errorf("upstream TLS not loaded: %+v", u)
	}
	if c := upstreamTLS(cfg.Upstream); c.RootCAs == nil || c.ServerName != "app.internal" || c.InsecureSkipVerify {
		t.Errorf("client config: %+v", c)
	}
	for _, c := range []struct{ upstream, want string }{
		{`tls_ca: "${BAD}"`, "line 1: upstream.tls_ca: no PEM certificate in " + bad},
		{`tls_ca: "${MISSING}"`, "line 1: upstream.tls_ca: open " + env["MISSING"] + ": no such file or directory"},
		{`tls_ca: [a]`, "line 1: upstream.tls_ca: want a string, got a list"},
		{`tls_insecure_skip_verify: yes`, `line 1: upstream.tls_insecure_skip_verify: want true or false, got "yes"`},
		{`tls_ca: "${GOOD}", tls_insecure_skip_verify: true`, "line 1: upstream: tls_ca and tls_insecure_skip_verify contradict each other: keep one"},
		{`tls_cert: x`, "line 1: upstream: unknown key \"tls_cert\""},
	} {
		_, err := Load(strings.NewReader("upstream: { "+c.upstream+" }\nroutes: [ { path: /, to: \"${UP}\" } ]\n"), envLookup(env))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.upstream, err, c.want)
		}
	}
}
