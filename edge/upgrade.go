package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/cloudflare/tableflip"
	"github.com/prometheus/client_golang/prometheus"
)

// Upgrading the binary without closing a socket.
//
// The running edge starts the binary at its own path (os.Args[0]) and
// passes it its listening sockets (tableflip). The new process loads and
// validates routes.yaml, serves on the inherited sockets (it binds nothing
// new) and says it is ready. Only then does the old one hand over: it stops
// accepting (the sockets stay open in the new process, so no connection is
// refused: the kernel queues them for whichever process accepts), answers
// every request for handoverCloseFor with Connection: close so that busy
// keep-alive clients move to the new process between two requests, then
// shuts down as on SIGTERM: idle connections closed, requests in flight,
// websockets and SSE streams given shutdown_grace. If the new process fails
// before it is ready (a bad binary, a bad routes.yaml, a crash), the old one
// never stopped serving: it logs why and carries on.

// handoverCloseFor is how long the old process answers with Connection:
// close before it closes its idle keep-alive connections. Closing an idle
// connection races a client sending on it (it sees a reset); a client that
// sends at least once in this window is told to reconnect instead, which
// is what nginx's old workers do. It is longer than parkAfter, so a parked
// connection whose client sends is answered too.
const handoverCloseFor = 1500 * time.Millisecond

// Handover makes Serve give its sockets up to the process that replaces
// this one: stop accepting, answer with Connection: close for a moment,
// then shut down gracefully, as when Serve's context is done. It returns at
// once; calling it again does nothing.
func (s *Server) Handover() {
	s.handOnce.Do(func() { close(s.handover) })
}

// drainForHandover runs in Serve once the new process serves.
// A SIGTERM meanwhile (ctx done) cuts the moment short.
func (s *Server) drainForHandover(ctx context.Context, pl *parkingListener, adm net.Listener) {
	s.draining.Store(true)
	s.log.Info("the new process serves: no longer accepting, asking keep-alive clients to reconnect",
		"for", handoverCloseFor.String(), "in_flight", s.inflight.Load())
	// Closing our copies of the sockets: the new process holds them open.
	_ = pl.stopAccepting()
	for _, l := range []net.Listener{adm, s.tlsLn, s.httpLn} {
		if l != nil {
			_ = l.Close()
		}
	}
	t := time.NewTimer(handoverCloseFor)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// closeAfter asks the client to close its connection after this response.
// A websocket handshake is left alone: its answer says Connection: Upgrade,
// and the socket becomes a tunnel that Serve drains like any stream.
func closeAfter(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "" {
		return
	}
	w.Header().Set("Connection", "close")
}

// closeWhenDraining asks admin clients (Prometheus, edge upgrade) to
// reconnect once a new process serves, so they reach it.
func (s *Server) closeWhenDraining(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// serveUpgrade is POST /-/upgrade on the admin port: it answers once the
// new process serves (200) or with why it could not start (500).
func (s *Server) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	// Whatever happens, the next request should reach whichever process
	// serves then.
	w.Header().Set("Connection", "close")
	if s.draining.Load() {
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, "this process is handing over to a newer one: ask again\n")
		return
	}
	if err := s.upgrade(r.Context()); err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "upgrade failed, this process keeps serving:\n"+err.Error()+"\n")
		return
	}
	_, _ = io.WriteString(w, "upgraded: the new process serves, this one ("+strconv.Itoa(os.Getpid())+") drains and exits\n")
}

// processID is this process's PID, for the access log: during a handover
// two processes write it.
var processID = strconv.Itoa(os.Getpid())

// RegisterBuildInfo registers edge_build_info{version} = 1 on reg, so that
// a dashboard shows which build serves after an upgrade.
func RegisterBuildInfo(reg prometheus.Registerer, version string) error {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "edge_build_info",
		Help:        "Always 1; its version label is the edge build that serves.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	g.Set(1)
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("register edge_build_info: %w", err)
	}
	return nil
}

// UpgraderOptions configure an Upgrader.
type UpgraderOptions struct {
	// Logger receives why an upgrade failed. If nil, slog.Default() is used.
	Logger *slog.Logger
	// PIDFile, if not empty, receives the PID of the process that serves,
	// written when it is ready (after an upgrade: the new process's).
	PIDFile string
	// Timeout is how long a new process has to become ready before it is
	// killed and the upgrade fails. If zero, one minute is used.
	Timeout time.Duration
	// Getenv reads systemd's LISTEN_* variables. If nil, os.Getenv is used
	// (and the variables are unset once read, as sd_listen_fds(1) does).
	Getenv func(string) string
}

// Upgrader hands out the edge's listening sockets and replaces the running
// binary without closing them. There is one per process.
type Upgrader struct {
	upg     *tableflip.Upgrader
	log     *slog.Logger
	mu      sync.Mutex
	systemd map[string]*os.File // sockets from systemd not taken yet
}

// NewUpgrader returns the process's Upgrader: with the sockets of the
// process it replaces, if it was started by an upgrade, else with those
// systemd passed (socket activation), if any.
func NewUpgrader(opts UpgraderOptions) (*Upgrader, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	u := &Upgrader{log: opts.Logger}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	files, err := systemdFiles(getenv, os.Getpid())
	if err != nil {
		return nil, err
	}
	if opts.Getenv == nil {
		for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
			_ = os.Unsetenv(k) // so that no new process takes them for its own
		}
	}
	u.systemd = files
	u.upg, err = tableflip.New(tableflip.Options{PIDFile: opts.PIDFile, UpgradeTimeout: opts.Timeout})
	if err != nil {
		for _, f := range files {
			_ = f.Close()
		}
		return nil, fmt.Errorf("upgrader: %w", err)
	}
	return u, nil
}

// Listen returns the listening socket called name for network and addr:
// the one the replaced process passed, else the one systemd passed under
// that name (FileDescriptorName=), else a new one. Every socket it returns
// is passed on at the next upgrade.
func (u *Upgrader) Listen(name, network, addr string) (net.Listener, error) {
	ln, err := u.upg.Listener(network, addr)
	if err != nil {
		return nil, fmt.Errorf("inherit %s socket: %w", name, err)
	}
	if ln != nil {
		u.log.Info("serving on the inherited socket", "name", name, "addr", ln.Addr().String())
		return ln, nil
	}
	u.mu.Lock()
	f := u.systemd[name]
	delete(u.systemd, name)
	u.mu.Unlock()
	if f == nil {
		ln, err := u.upg.Listen(network, addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s %s: %w", name, addr, err)
		}
		return ln, nil
	}
	ln, err = net.FileListener(f)
	_ = f.Close() // FileListener made its own copy
	if err != nil {
		return nil, fmt.Errorf("systemd socket %q: %w", name, err)
	}
	tl, ok := ln.(tableflip.Listener)
	if !ok {
		ln.Close()
		return nil, fmt.Errorf("systemd socket %q: a %T cannot be passed on", name, ln)
	}
	if err := u.upg.AddListener(network, addr, tl); err != nil {
		ln.Close()
		return nil, fmt.Errorf("systemd socket %q: %w", name, err)
	}
	u.log.Info("serving on the socket systemd passed", "name", name, "addr", ln.Addr().String())
	return ln, nil
}

// Ready says this process serves: a process that replaces another tells
// it to hand over; the PID file is written. Sockets systemd passed that no
// Listen took are closed (and logged: a unit and a routes.yaml that
// disagree).
func (u *Upgrader) Ready() error {
	u.mu.Lock()
	for name, f := range u.systemd {
		u.log.Warn("systemd passed a socket the edge does not use, closing it", "name", name)
		_ = f.Close()
	}
	clear(u.systemd)
	u.mu.Unlock()
	return u.upg.Ready()
}

// Upgrade starts the binary at this process's path with its sockets and
// waits until it is ready (then Exit is closed) or has failed. A process
// started by an upgrade first waits, up to ctx, for the one it replaced to
// exit. Failures are logged: this process keeps serving.
func (u *Upgrader) Upgrade(ctx context.Context) error {
	if os.Getpid() == 1 {
		// In a container the process is PID 1: when it exits after the
		// handover, the container ends and takes the new process with it.
		return errors.New("upgrade: the edge is PID 1 (a container): replace the container instead")
	}
	if err := u.upg.WaitForParent(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		u.log.Warn("the replaced process did not exit cleanly", "err", err)
	} else if err != nil {
		return fmt.Errorf("upgrade: the replaced process is still draining: %w", err)
	}
	u.log.Info("upgrading: starting the new binary", "path", os.Args[0])
	err := u.upg.Upgrade()
	// tableflip's WaitForParent returns as soon as the parent's result is
	// in, a moment before its own loop sees the parent exit (parent.go sends
	// the result, then closes exited): that refusal is only a race, so it is
	// tried again for up to a second.
	for i := 0; err != nil && err.Error() == "parent hasn't exited" && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
		err = u.upg.Upgrade()
	}
	if err != nil {
		u.log.Error("upgrade failed, this process keeps serving", "err", err)
		return fmt.Errorf("upgrade: %w", err)
	}
	u.log.Info("upgraded: the new process serves, handing over")
	return nil
}

// Exit is closed when a new process serves (or Stop was called).
func (u *Upgrader) Exit() <-chan struct{} { return u.upg.Exit() }

// Stop refuses further upgrades; call it when the process stops.
func (u *Upgrader) Stop() { u.upg.Stop() }
