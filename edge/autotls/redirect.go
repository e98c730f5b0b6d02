package autotls

import (
	"net"
	"net/http"
	"strings"
)

// HTTPHandler returns the handler of the plain http_listen port: it answers
// ACME HTTP-01 challenges and redirects every other request for a managed
// domain to https with 308 (the method and body are kept, unlike 301),
// path and query as the client sent them. tlsPort is the TLS listener's
// port, added to the Location unless it is 443. A host that is not managed
// gets 404: the edge does not redirect to names it has no certificate for.
func (m *Manager) HTTPHandler(tlsPort string) http.Handler {
	return m.issuer.HTTPChallengeHandler(redirectHandler(tlsPort, m.manages))
}

// redirectHandler redirects to https the hosts (lower case, no port) that
// serves reports true and answers 404 for the others.
func redirectHandler(tlsPort string, serves func(host string) bool) http.Handler {
	port := ""
	if tlsPort != "443" && tlsPort != "" {
		port = ":" + tlsPort
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		if !serves(host) {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("404 Not Found: not a domain this edge serves over https\n"))
			return
		}
		target := r.RequestURI
		if !strings.HasPrefix(target, "/") {
			// absolute-form or "*": keep only the path and query.
			target = r.URL.RequestURI()
			if !strings.HasPrefix(target, "/") {
				target = "/"
			}
		}
		w.Header().Set("Location", "https://"+host+port+target)
		w.Header().Set("Connection", "close") // the client goes elsewhere now
		w.WriteHeader(http.StatusPermanentRedirect)
		_, _ = w.Write([]byte("308 Permanent Redirect: use https\n"))
	})
}
