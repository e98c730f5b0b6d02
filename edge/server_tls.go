package edge

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"selfhost.dev/edgeapp/edge/autotls"
)

// The TLS listener and the plain http_listen port of the `tls:` block.
//
// The TLS listener is not a parkingListener (memory.go): parking works on
// the bytes net/http reads from the socket, and under TLS those are records
// read by crypto/tls, in sizes that say nothing about net/http waiting for
// a request; an HTTP/2 connection is not net/http's HTTP/1.1 loop at all.
// Idle TLS connections keep their buffers; IdleTimeout still closes them.

// serveTLS starts the TLS and http_listen servers of cfg.TLS, on the
// listeners of Options or new ones, and starts managing the certificates.
// It returns the servers for shutdown (none without `tls:`).
func (s *Server) serveTLS(errc chan<- error) ([]*http.Server, error) {
	t := s.started.TLS
	if t == nil {
		return nil, nil
	}
	tlsLn, httpLn := s.tlsLn, s.httpLn
	var err error
	if tlsLn == nil {
		// Through Options.Listen: inherited at an upgrade, from systemd, or
		// bound now.
		if tlsLn, err = s.listenOn("tls", t.Listen); err != nil {
			return nil, fmt.Errorf("listen tls: %w", err)
		}
	}
	if httpLn == nil && t.HTTPListen != "off" {
		if httpLn, err = s.listenOn("http", t.HTTPListen); err != nil {
			tlsLn.Close()
			return nil, fmt.Errorf("listen http: %w", err)
		}
	}
	// Kept for drainForHandover, which stops accepting on them.
	s.tlsLn, s.httpLn = tlsLn, httpLn
	host, tlsPort, _ := net.SplitHostPort(tlsLn.Addr().String())
	if t.Static != nil {
		return s.serveStaticTLS(t, tlsLn, httpLn, tlsPort, errc), nil
	}
	cfg := autotls.Config{CA: t.CA, Email: t.Email, Roots: t.CARootPool, Storage: t.Storage, EABKeyID: t.EABKeyID, EABMACKey: t.EABMACKey}
	cfg.TLSPort, _ = strconv.Atoi(tlsPort)
	if httpLn != nil {
		_, p, _ := net.SplitHostPort(httpLn.Addr().String())
		cfg.HTTPPort, _ = strconv.Atoi(p)
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		cfg.ListenHost = host
	}
	mgr, err := autotls.New(cfg, s.log.With("component", "autotls"), s.reg)
	if err != nil {
		tlsLn.Close()
		if httpLn != nil {
			httpLn.Close()
		}
		return nil, err
	}
	s.reloadMu.Lock() // a reload meanwhile must not be undone by the first Manage
	s.tlsMgr.Store(mgr)
	if cur := s.cur.Load().cfg.TLS; cur != nil { // nil if a reload removed tls: already
		mgr.Manage(cur.Domains)
	}
	s.reloadMu.Unlock()

	servers := s.startTLSServers(tlsLn, httpLn, mgr.TLSConfig(), mgr.HTTPHandler(tlsPort), errc)
	s.log.Info("edge serving tls", "listen", tlsLn.Addr().String(), "http_listen", addrOf(httpLn), "domains", mgr.Domains())
	return servers, nil
}

// startTLSServers serves tlsLn with conf and, unless nil, httpLn with
// redirect (ACME's challenges and the redirect to https).
func (s *Server) startTLSServers(tlsLn, httpLn net.Listener, conf *tls.Config, redirect http.Handler, errc chan<- error) []*http.Server {
	srv := s.httpServer(s)
	srv.ConnState = nil // no parking, see above
	srv.TLSConfig = conf
	srv.ErrorLog = log.New(handshakeLog{
		debug: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug).Writer(),
		other: s.proxyLog.Writer(),
	}, "", 0)
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	servers := []*http.Server{srv}
	go func() { errc <- srv.ServeTLS(tlsLn, "", "") }()
	if httpLn != nil {
		plain := s.httpServer(redirect)
		plain.ConnState = nil
		plain.Protocols = nil // HTTP/1.1 only: the redirect needs no h2c
		plain.BaseContext = nil
		servers = append(servers, plain)
		go func() { errc <- plain.Serve(httpLn) }()
	}
	return servers
}

// TLSManager returns the certificate manager, nil until Serve has started
// the TLS listener or without `tls:`.
func (s *Server) TLSManager() *autotls.Manager { return s.tlsMgr.Load() }

// reloadTLS applies a reloaded `tls:` block: the domain set changes at
// once; the other keys need a restart, and say so.
func (s *Server) reloadTLS(cfg *Config) {
	old := s.started.TLS
	if (old == nil) != (cfg.TLS == nil) || old != nil && (tlsRestartKey(old) != tlsRestartKey(cfg.TLS) || old.EABMACKey != cfg.TLS.EABMACKey) {
		s.log.Warn("config change needs a restart to apply", "key", "tls", "running", tlsRestartKey(old), "file", tlsRestartKey(cfg.TLS))
	}
	if s.started.H2C != cfg.H2C {
		s.log.Warn("config change needs a restart to apply", "key", "h2c", "running", s.started.H2C, "file", cfg.H2C)
	}
	if m := s.tlsMgr.Load(); m != nil && cfg.TLS != nil {
		m.Manage(cfg.TLS.Domains)
	}
	if st := s.tlsStatic.Load(); st != nil && cfg.TLS != nil && cfg.TLS.Static != nil {
		s.setStatic(st, cfg.TLS)
	}
}

// tlsRestartKey is what of a `tls:` block only a restart applies.
func tlsRestartKey(t *TLS) string {
	if t == nil {
		return "off"
	}
	// The MAC key is a secret and never logged; reloadTLS compares it apart.
	// Static or ACME: the files of a static pair are re-read at reload.
	return fmt.Sprintf("ca=%s ca_root=%s email=%s storage=%s listen=%s http_listen=%s eab_key_id=%s static=%t",
		t.CA, t.CARoot, t.Email, t.Storage, t.Listen, t.HTTPListen, t.EABKeyID, t.Static != nil)
}

// handshakeLog sends net/http's "TLS handshake error" lines to the debug
// level: on a public port scanners, clients that hang up and names the
// edge has no certificate for make them by the thousand. Other server
// errors keep the warning level.
type handshakeLog struct{ debug, other io.Writer }

func (h handshakeLog) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("TLS handshake error")) {
		return h.debug.Write(p)
	}
	return h.other.Write(p)
}
