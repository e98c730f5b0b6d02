package edge

import (
	"net"
	"net/http"
	"time"

	"selfhost.dev/edgeapp/edge/autotls"
)

// expiryWarning is how close to its end a static certificate gets logged
// at warning level, at start and at every reload: nothing renews it.
const expiryWarning = 14 * 24 * time.Hour

// serveStaticTLS serves the TLS listener with the fixed certificate of
// tls.certificate and tls.key, and http_listen with the redirect to https.
func (s *Server) serveStaticTLS(t *TLS, tlsLn, httpLn net.Listener, tlsPort string, errc chan<- error) []*http.Server {
	st := autotls.NewStatic(t.Static)
	if err := st.Register(s.reg); err != nil {
		s.log.Error("register tls metrics", "err", err)
	}
	s.tlsStatic.Store(st)
	s.reloadMu.Lock() // a reload that came meanwhile has the newer pair
	if cur := s.cur.Load().cfg.TLS; cur != nil && cur.Static != nil {
		st.Set(cur.Static)
	}
	s.reloadMu.Unlock()
	var redirect http.Handler
	if httpLn != nil {
		redirect = st.HTTPHandler(tlsPort)
	}
	servers := s.startTLSServers(tlsLn, httpLn, st.TLSConfig(), redirect, errc)
	leaf := st.Leaf()
	s.log.Info("edge serving tls", "listen", tlsLn.Addr().String(), "http_listen", addrOf(httpLn),
		"certificate", t.Certificate, "names", leaf.DNSNames, "not_after", leaf.NotAfter.UTC())
	s.warnExpiry(t.Certificate, leaf.NotAfter)
	return servers
}

// setStatic swaps in the pair a reload read.
func (s *Server) setStatic(st *autotls.Static, t *TLS) {
	st.Set(t.Static)
	s.log.Info("tls certificate reloaded", "certificate", t.Certificate, "not_after", t.Static.Leaf.NotAfter.UTC())
	s.warnExpiry(t.Certificate, t.Static.Leaf.NotAfter)
}

func (s *Server) warnExpiry(file string, notAfter time.Time) {
	if left := time.Until(notAfter); left < expiryWarning {
		s.log.Warn("tls certificate expires soon and is not renewed by the edge: replace the file and reload",
			"certificate", file, "not_after", notAfter.UTC(), "days_left", int(left.Hours()/24))
	}
}
