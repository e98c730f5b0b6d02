package edge

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// TLS is the `tls:` block of routes.yaml: automatic HTTPS with certificates
// obtained over ACME (edge/autotls). Without it the edge speaks plain HTTP
// only and redirects nothing, which is what it must do behind cloudflared.
type TLS struct {
	// Domains are the names certificates are obtained for. If the file
	// lists none, the routes' distinct host values are used.
	Domains []string
	// Email is the ACME account's contact ("" for none).
	Email string
	// CA is the ACME directory URL. "letsencrypt" (the default),
	// "letsencrypt-staging" and "zerossl" are resolved to theirs.
	CA string
	// CARoot is a PEM file of roots to trust for the CA's own HTTPS (a
	// private CA such as Pebble or step-ca); "" trusts the system's roots.
	CARoot string
	// CARootPool holds CARoot's certificates (nil when CARoot is "").
	CARootPool *x509.CertPool
	// Storage is the directory certificates, keys and the ACME account are
	// kept in ("/var/lib/edge/certs"). It must survive restarts, or every
	// start orders new certificates and meets the CA's rate limits.
	Storage string
	// Listen is the TLS address (":443"): TLS 1.2+, HTTP/2 via ALPN.
	Listen string
	// EABKeyID and EABMACKey are the External Account Binding some CAs
	// require (ZeroSSL): both or neither; the MAC key belongs in an
	// environment variable.
	EABKeyID, EABMACKey string
	// HTTPListen is the address answering ACME HTTP-01 challenges and
	// redirecting everything else to https (":80"); "off" disables it, and
	// then only the TLS-ALPN-01 challenge is used.
	HTTPListen string
	// Certificate and Key are the PEM files of a fixed certificate and its
	// key (both or neither, see config_tls_static.go). With them no ACME
	// account or order is made and the ACME keys are unused. "" for ACME.
	Certificate, Key string
	// Static is the pair read from Certificate and Key at load (nil for ACME).
	Static *tls.Certificate
	// Line is where the block starts in the file.
	Line int
}

// The directory URLs of the CAs named in `tls.ca`. They are certmagic's
// (LetsEncryptProductionCA, ...), repeated so that config loading does not
// import certmagic.
var namedCAs = map[string]string{
	"letsencrypt":         "https://acme-v02.api.letsencrypt.org/directory",
	"letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
	"zerossl":             "https://acme.zerossl.com/v2/DV90",
}

var tlsKeys = []string{"domains", "email", "ca", "ca_root", "storage", "listen", "http_listen", "eab_key_id", "eab_mac_key", "certificate", "key"}

// tlsBlock parses the `tls:` block. Domains left empty are filled in from
// the routes by tlsDomains, once the routes are known.
func (l *loader) tlsBlock(n *yaml.Node) *TLS {
	t := &TLS{
		CA:         namedCAs["letsencrypt"],
		Storage:    "/var/lib/edge/certs",
		Listen:     ":443",
		HTTPListen: ":80",
		Line:       n.Line,
	}
	l.fields(n, "tls", tlsKeys, func(k string, v *yaml.Node) {
		where := "tls." + k
		switch k {
		case "domains":
			seen := map[string]bool{}
			l.list(v, where, func(i int, item *yaml.Node) {
				w := fmt.Sprintf("%s[%d]", where, i)
				s, ok := l.str(item, w)
				if !ok {
					return
				}
				d := strings.ToLower(strings.TrimSuffix(s, "."))
				if msg := badDomain(d); msg != "" {
					l.errorf(item, "%s: bad domain %q: %s", w, s, msg)
					return
				}
				if seen[d] {
					l.errorf(item, "%s: domain %q repeated", w, s)
					return
				}
				seen[d] = true
				t.Domains = append(t.Domains, d)
			})
		case "email":
			if s, ok := l.str(v, where); ok {
				if s != "" && (strings.Count(s, "@") != 1 || strings.HasPrefix(s, "@") || strings.HasSuffix(s, "@") || strings.ContainsAny(s, " <>,")) {
					l.errorf(v, "%s: bad address %q (want e.g. ops@example.com)", where, s)
				}
				t.Email = s
			}
		case "ca":
			s, ok := l.str(v, where)
			if !ok {
				return
			}
			if u, named := namedCAs[s]; named {
				t.CA = u
				return
			}
			u, err := url.Parse(s)
			if err != nil || u.Scheme != "https" || u.Host == "" {
				l.errorf(v, "%s: want letsencrypt, letsencrypt-staging, zerossl or an https:// directory URL, got %q", where, s)
				return
			}
			t.CA = s
		case "ca_root":
			if path, _, pool := l.caFile(v, where); pool != nil {
				t.CARoot, t.CARootPool = path, pool
			}
		case "storage":
			if s, ok := l.str(v, where); ok {
				if s == "" {
					l.errorf(v, "%s: want a directory", where)
				}
				t.Storage = s
			}
		case "eab_key_id":
			t.EABKeyID, _ = l.str(v, where)
		case "eab_mac_key":
			t.EABMACKey, _ = l.str(v, where)
		case "certificate":
			t.Certificate, _ = l.str(v, where)
		case "key":
			t.Key, _ = l.str(v, where)
		case "listen":
			t.Listen = l.addr(v, where, false)
		case "http_listen":
			t.HTTPListen = l.addr(v, where, true)
		}
	})
	return t
}

// tlsDomains completes cfg.TLS once the routes are parsed: without a
// domain list, the routes' hosts are the domains.
func (l *loader) tlsDomains(cfg *Config, n *yaml.Node) {
	t := cfg.TLS
	if len(t.Domains) == 0 {
		for _, r := range cfg.Routes {
			if r.Host != "" && !slices.Contains(t.Domains, r.Host) && badDomain(r.Host) == "" {
				t.Domains = append(t.Domains, r.Host)
			}
		}
		slices.Sort(t.Domains)
	}
	if len(t.Domains) == 0 && t.Certificate == "" && t.Key == "" {
		l.errorf(n, "tls.domains: no domains: list them, or give routes a host")
	}
	l.tlsStatic(t, n)
	if (t.EABKeyID == "") != (t.EABMACKey == "") {
		l.errorf(n, "tls: eab_key_id and eab_mac_key go together")
	}
	if t.CA == namedCAs["zerossl"] && t.EABKeyID == "" {
		l.errorf(n, "tls.ca: ZeroSSL needs eab_key_id and eab_mac_key (from its developer dashboard)")
	}
	if addrsClash(t.Listen, t.HTTPListen) {
		l.errorf(n, "tls: listen %q and http_listen %q are the same port", t.Listen, t.HTTPListen)
	}
	if addrsClash(t.Listen, cfg.Listen) || addrsClash(t.HTTPListen, cfg.Listen) {
		l.errorf(n, "tls: listen %q and http_listen %q must differ from the plain listen %q", t.Listen, t.HTTPListen, cfg.Listen)
	}
	if addrsClash(t.Listen, cfg.Admin) || addrsClash(t.HTTPListen, cfg.Admin) {
		l.errorf(n, "tls: listen %q and http_listen %q must differ from the admin port %q", t.Listen, t.HTTPListen, cfg.Admin)
	}
}

// addrsClash reports whether listening on a and on b would take the same
// port: the same port and the same host, or all interfaces on either
// side (":443" takes 127.0.0.1:443 too). "off" and port 0 clash with
// nothing. Checked at load, so that `edge validate` says it rather than a
// bind failing after the other listeners started.
func addrsClash(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { ip := net.ParseIP(h); return h == "" || ip != nil && ip.IsUnspecified() }
	return ha == hb || wild(ha) || wild(hb)
}

// badDomain says what is wrong with a name certificates are asked for, or
// returns "". Wildcards need the DNS-01 challenge, which the edge does not
// do; IP addresses and single labels are not issued by public CAs.
func badDomain(d string) string {
	switch {
	case d == "":
		return "empty"
	case strings.Contains(d, "*"):
		return "wildcards need the DNS-01 challenge, which the edge does not solve"
	case len(d) > 253:
		return "longer than 253 characters"
	case !strings.Contains(d, "."):
		return "a single label (want a public name such as example.com)"
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "bad label " + `"` + label + `"`
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return "want letters, digits and - (write internationalized names in their xn-- form)"
			}
		}
	}
	if strings.Trim(d, "0123456789.") == "" {
		return "an IP address (want a name)"
	}
	return ""
}
