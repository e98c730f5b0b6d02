package edge

// This file holds the listeners' side of the Server: the public
// http.Server and its limits, binding (or inheriting) the sockets, Serve
// and the graceful shutdown.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// httpServer returns the public http.Server with the limits of cfg.
func (s *Server) httpServer(h http.Handler) *http.Server {
	l := s.started.Limits
	// net/http allows 4096 bytes beyond MaxHeaderBytes; take them off so the
	// configured figure is the real bound.
	maxHeader := int(l.MaxHeaderBytes) - 4096
	if maxHeader < 1024 {
		maxHeader = 1024
	}
	srv := &http.Server{
		Handler:           h,
		MaxHeaderBytes:    maxHeader,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		ErrorLog:          s.proxyLog,
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		ConnState:         parkConnState,
	}
	if s.started.H2C {
		// Prior-knowledge HTTP/2 (cloudflared's http2Origin). Go's own
		// server, not x/net/http2/h2c: no "Upgrade: h2c" (that upgrade is
		// a tunnel past the handler). Such connections reach net/http's
		// HTTP/2 server wrapped in a fake *tls.Conn, so parkConnState
		// never sees them and they are never parked.
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	return srv
}

// ListenAndServe listens on the configured addresses and serves until ctx
// is done, then shuts down gracefully.
func (s *Server) ListenAndServe(ctx context.Context) error {
	pub, err := s.listenOn("public", s.started.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var adm net.Listener
	if s.started.Admin != "off" {
		adm, err = s.listenOn("admin", s.started.Admin)
		if err != nil {
			pub.Close()
			return fmt.Errorf("listen admin: %w", err)
		}
	}
	return s.Serve(ctx, pub, adm)
}

// listenOn returns the TCP listener called name ("public", "admin", "tls",
// "http") on addr, through Options.Listen when set.
func (s *Server) listenOn(name, addr string) (net.Listener, error) {
	if s.listen == nil {
		return net.Listen("tcp", addr)
	}
	return s.listen(name, "tcp", addr)
}

// Serve serves the public port on pub and the admin port on adm (which may
// be nil) until ctx is done. Then it stops accepting, waits up to
// shutdown_grace for requests in flight (websockets and streams included),
// cancels what is left and closes the access log.
//
// Keep-alive connections idle for a second are parked (memory.go), and
// memory is returned to the OS when the edge goes quiet after a burst.
func (s *Server) Serve(ctx context.Context, pub, adm net.Listener) error {
	srv := s.httpServer(s)
	var admin *http.Server
	errc := make(chan error, 4)
	pl := newParkingListener(pub)
	go func() { errc <- srv.Serve(pl) }()
	tlsServers, err := s.serveTLS(errc)
	if err != nil {
		_ = srv.Close()
		if adm != nil {
			_ = adm.Close()
		}
		return err
	}
	stopRelease := make(chan struct{})
	defer close(stopRelease)
	go releaseMemory(stopRelease, func() uint64 { return pl.parks.Load() * parkedConnBytes })
	if adm != nil {
		admin = &http.Server{Handler: s.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: s.proxyLog}
		go func() { errc <- admin.Serve(adm) }()
	}
	s.log.Info("edge serving", "listen", pub.Addr().String(), "admin", addrOf(adm), "pid", os.Getpid())
	if s.ready != nil {
		if err := s.ready(); err != nil {
			s.log.Error("tell the old process we are ready", "err", err)
		}
	}
	select {
	case <-ctx.Done():
	case <-s.handover:
		s.drainForHandover(ctx, pl, adm)
	case err = <-errc:
		s.log.Error("server stopped", "err", err)
	}
	s.shutdown(srv, admin, tlsServers...)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func addrOf(l net.Listener) string {
	if l == nil {
		return "off"
	}
	return l.Addr().String()
}

func (s *Server) shutdown(srv, admin *http.Server, more ...*http.Server) {
	grace := s.cur.Load().cfg.ShutdownGrace
	s.log.Info("shutting down", "grace", grace.String(), "in_flight", s.inflight.Load())
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, m := range more {
		wg.Go(func() { _ = m.Shutdown(ctx) }) // TLS: sends HTTP/2 GOAWAY too
	}
	_ = srv.Shutdown(ctx) // stops accepting; waits for requests, not for hijacked connections
	wg.Wait()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s.inflight.Load() > 0 && ctx.Err() == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	if n := s.inflight.Load(); n > 0 {
		s.log.Warn("grace period over, cancelling requests", "in_flight", n)
	}
	s.cancelBase() // ends what is left, websockets included
	_ = srv.Close()
	for _, m := range more {
		_ = m.Close()
	}
	if mgr := s.tlsMgr.Load(); mgr != nil {
		mgr.Stop()
	}
	if admin != nil {
		_ = admin.Close()
	}
	for i := 0; i < 50 && s.inflight.Load() > 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	s.buildMu.Lock()
	if s.alog != nil {
		s.alog.Close()
	}
	if s.alogFile != nil {
		_ = s.alogFile.Close()
	}
	for _, tr := range s.transports {
		closeIdle(tr) // both pools: http.Transport and the fast path
	}
	s.closePools()
	closeIdle(s.fwdTransport)
	s.buildMu.Unlock()
}
