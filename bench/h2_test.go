package bench

import (
	"crypto/tls"
	"os"
	"strings"
	"testing"
	"time"

	"selfhost.dev/edgeapp/edge"
)

const h2loadOut = `starting benchmark...
spawning thread #0: 32 total client(s). 100 total requests
TLS Protocol: TLSv1.3
Cipher: TLS_AES_128_GCM_SHA256
Server Temp Key: X25519 253 bits
Application protocol: h2
progress: 10% done

finished in 2.00s, 12345.50 req/s, 13.18MB/s
requests: 24700 total, 24700 started, 24691 done, 24680 succeeded, 11 failed, 2 errored, 1 timeout
status codes: 24680 2xx, 0 3xx, 3 4xx, 5 5xx
traffic: 26.36MB (27640132) total, 256.03KB (262178) headers (space savings 95.42%), 24.11MB (25283584) data
                     min         max         mean         sd        +/- sd
time for request:      209us     44.50ms      5.12ms      3.01ms    70.00%
time for connect:     3.41ms      9.10ms      5.51ms      1.20ms    60.00%
time to 1st byte:     4.49ms     12.00ms      7.00ms      2.00ms    55.00%
req/s           :     380.10      390.22      385.70        2.10    65.62%
`

func TestParseH2load(t *testing.T) {
	r, err := ParseH2load(h2loadOut)
	if err != nil {
		t.Fatal(err)
	}
	want := H2loadResult{Duration: 2 * time.Second, RPS: 12345.50, Done: 24691, Succeeded: 24680, Errored: 3, Non2xx: 8, Protocol: "h2"}
	if r != want {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
	short, err := ParseH2load(strings.Replace(h2loadOut, "2.00s", "512.25ms", 1))
	if err != nil || short.Duration != 512250*time.Microsecond {
		t.Errorf("ms duration: %v %v", short.Duration, err)
	}
	for _, bad := range []string{"", "connect: Connection refused\n", strings.Replace(h2loadOut, "12345.50", "x", 1)} {
		if _, err := ParseH2load(bad); err == nil {
			t.Errorf("accepted %q", firstLines(bad, 1))
		}
	}
}

func TestWriteSelfSigned(t *testing.T) {
	p, err := WriteSelfSigned(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	if err := c.Leaf.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}
}

// The TLS variants of the templates: every proxy serves the pair on Port,
// and the edge's template passes the edge's own strict parser.
func TestRenderPeersTLS(t *testing.T) {
	dir := t.TempDir()
	pair, err := WriteSelfSigned(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := testParams(dir, true)
	p.Hash = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	p.TLSCert, p.TLSKey, p.PlainPort = pair.Cert, pair.Key, 18082
	for name, want := range map[string][]string{
		"caddy/Caddyfile.tmpl":      {"https://:18080 {", "tls " + pair.Cert + " " + pair.Key},
		"nginx/nginx.conf.tmpl":     {"listen 127.0.0.1:18080 ssl http2;", "ssl_certificate " + pair.Cert + ";", "ssl_certificate_key " + pair.Key + ";"},
		"edge/routes-tls.yaml.tmpl": {`listen: "127.0.0.1:18082"`, `listen: "127.0.0.1:18080"`},
	} {
		path, err := RenderPeer(name, p, dir)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s: no %q in:\n%s", name, w, b)
			}
		}
		if name == "edge/routes-tls.yaml.tmpl" {
			cfg, err := edge.LoadFile(path, func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			if cfg.TLS == nil || cfg.TLS.Static == nil || cfg.TLS.Listen != "127.0.0.1:18080" || cfg.TLS.HTTPListen != "off" {
				t.Errorf("edge tls: %+v", cfg.TLS)
			}
		}
	}
}
