package edge

import (
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	rmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// What an idle keep-alive connection costs.
//
// net/http serves each connection on its own goroutine and keeps it, with
// a 4 KiB bufio.Reader and a 4 KiB bufio.Writer, for as long as the client
// keeps the connection open. Having served one request, that goroutine's
// stack has grown to 8 KiB and stays there (it does not shrink: waiting for
// the next request uses more than a quarter of 4 KiB). That is about 17 KiB
// per idle connection, 170 MiB for 10 000 of them, where nginx needs about 1.
//
// So a keep-alive connection that has been idle for parkAfter is parked:
// net/http is told the connection ended (its goroutine exits, its buffers
// go back to their pools), and the edge waits for the client's next byte on
// one epoll set shared by all parked connections (park_poller_linux.go; a
// goroutine per connection on other systems). When the byte comes, the
// connection is handed back to net/http as a new one, with that byte in
// front; the client sees nothing (no Connection: close, no extra round
// trip). A parked connection costs its socket, its net.Conn and a timer for
// the idle timeout: about 2.5 KiB of RSS each over 10 000 of them. Busy
// connections are never parked, so this costs nothing under load; the next
// request of a parked connection pays for a goroutine and two pooled
// buffers, a few microseconds after at least parkAfter of silence.

// parkAfter is how long a keep-alive connection waits for its next request
// in net/http before it is parked.
const parkAfter = time.Second

// idleReadSize is the length of net/http's read while it waits for the
// next request with nothing of it buffered: its bufio.Reader's whole
// buffer. A shorter read means net/http holds the start of the next request
// (pipelined) and the connection must stay with it. If net/http ever reads
// with another size, connections are simply never parked.
const idleReadSize = 4096

// The states of a parkConn.
const (
	connActive  int32 = iota // reading or serving a request: reads pass through
	connIdle                 // net/http waits for the next request: reads may park
	connParking              // the idle read ended to park: Close parks instead of closing
)

// parkingListener hands net/http the connections it accepts and those that
// come back from the park.
type parkingListener struct {
	net.Listener
	conns chan acceptResult // unbuffered: an Accept error waits for net/http's backoff
	done  chan struct{}

	mu     sync.Mutex
	closed bool
	parked map[*parkConn]struct{}
	once   sync.Once

	after  time.Duration // parkAfter; shorter in tests
	parks  atomic.Uint64 // connections parked so far
	quiet  atomic.Bool   // stopAccepting was called
	poller *parkPoller   // nil: each parked connection waits on a goroutine
}

// parkedConnBytes is roughly what parking a connection leaves for the
// collector to free: an 8 KiB stack and 8 KiB of buffers.
const parkedConnBytes = 16 << 10

type acceptResult struct {
	c   net.Conn
	err error
}

func newParkingListener(l net.Listener) *parkingListener {
	pl := &parkingListener{
		Listener: l,
		conns:    make(chan acceptResult),
		done:     make(chan struct{}),
		parked:   make(map[*parkConn]struct{}),
		after:    parkAfter,
	}
	if p, err := newParkPoller(pl.unpark); err == nil {
		pl.poller = p
	}
	go pl.acceptLoop()
	return pl
}

func (l *parkingListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil && l.quiet.Load() {
			// Handing over to a new process: parked connections still come
			// back through Accept until Close.
			return
		}
		r := acceptResult{err: err}
		if err == nil {
			r.c = &parkConn{Conn: c, l: l}
		}
		select {
		case l.conns <- r:
		case <-l.done:
			if c != nil {
				c.Close()
			}
			return
		}
		if err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// Accept returns the next new or unparked connection.
func (l *parkingListener) Accept() (net.Conn, error) {
	select {
	case r := <-l.conns:
		return r.c, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes the parked connections, as net/http's
// Shutdown closes its idle ones.
func (l *parkingListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() {
		close(l.done)
		l.mu.Lock()
		l.closed = true
		for c := range l.parked {
			c.Conn.Close()
		}
		clear(l.parked)
		l.mu.Unlock()
		if l.poller != nil {
			l.poller.Close()
		}
	})
	return err
}

// stopAccepting closes the listening socket but, unlike Close, keeps
// handing parked connections back to net/http when their next request
// comes, so that a handover can answer it (with Connection: close) instead
// of dropping it.
func (l *parkingListener) stopAccepting() error {
	l.quiet.Store(true)
	return l.Listener.Close()
}

// park keeps c's connection open without net/http and waits for its next
// request on a goroutine of its own.
func (l *parkingListener) park(c *parkConn) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return c.Conn.Close()
	}
	l.parked[c] = struct{}{}
	l.mu.Unlock()
	l.parks.Add(1)
	if l.poller != nil {
		if !c.deadline.IsZero() { // set before the poller can see c
			c.timer = time.AfterFunc(time.Until(c.deadline), func() { l.expire(c) })
		}
		if l.poller.add(c) {
			l.mu.Lock()
			_, still := l.parked[c]
			l.mu.Unlock()
			if !still { // expired while being added: expire found nothing to remove
				l.poller.remove(c)
			}
			return nil
		}
		if c.timer != nil {
			c.timer.Stop() // wait applies the deadline itself
		}
	}
	go l.wait(c)
	return nil
}

// unpark is called by the poller when c's next byte (or its end) has come.
func (l *parkingListener) unpark(c *parkConn) {
	if c.timer != nil {
		c.timer.Stop()
	}
	go l.wait(c) // reads at once
}

// expire closes c, parked on the poller, at net/http's idle deadline.
func (l *parkingListener) expire(c *parkConn) {
	l.mu.Lock()
	_, ok := l.parked[c]
	delete(l.parked, c)
	l.mu.Unlock()
	if ok {
		l.poller.remove(c)
		_ = c.Conn.Close()
	}
}

// wait reads the first byte of c's next request, until net/http's idle
// deadline, and hands c back to net/http as a new connection.
func (l *parkingListener) wait(c *parkConn) {
	_ = c.Conn.SetReadDeadline(c.deadline)
	var b [1]byte
	n, err := c.Conn.Read(b[:])
	l.mu.Lock()
	_, ok := l.parked[c] // not there if Close closed it
	delete(l.parked, c)
	l.mu.Unlock()
	if n == 0 || !ok {
		_ = c.Conn.Close() // idle timeout, client gone or shutting down
		return
	}
	_ = err // a byte with an error: net/http reads the error next
	// A new parkConn: net/http may still run hooks on the old one.
	nc := &parkConn{Conn: c.Conn, l: l, first: b[0], hasFirst: true}
	_ = nc.Conn.SetReadDeadline(time.Time{})
	select {
	case l.conns <- acceptResult{c: nc}:
	case <-l.done:
		_ = nc.Conn.Close()
	}
}

// parkConn is a connection as net/http sees it: reads and deadlines pass
// through, except while net/http waits for the next request.
type parkConn struct {
	net.Conn
	l        *parkingListener
	state    atomic.Int32
	first    byte // read while parked, returned first
	hasFirst bool
	deadline time.Time   // the read deadline net/http set while idle
	fd       int32       // the socket's fd while on the poller
	timer    *time.Timer // closes it at deadline while on the poller
}

// parkConnState is the http.Server.ConnState hook that tells a parkConn
// net/http waits for its next request.
func parkConnState(c net.Conn, s http.ConnState) {
	if s == http.StateIdle {
		if pc, ok := c.(*parkConn); ok {
			pc.state.Store(connIdle)
		}
	}
}

func (c *parkConn) Read(p []byte) (int, error) {
	if c.hasFirst && len(p) > 0 {
		c.hasFirst = false
		p[0] = c.first
		return 1, nil
	}
	if c.state.Load() != connIdle {
		return c.Conn.Read(p)
	}
	n, err := c.Conn.Read(p)
	if n > 0 || err == nil || !isTimeout(err) || !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		// The next request, the client gone, or net/http's own idle
		// deadline.
		c.state.Store(connActive)
		return n, err
	}
	// The park deadline passed.
	if len(p) == idleReadSize {
		c.state.Store(connParking)
		return 0, io.EOF // net/http closes the connection: Close parks it
	}
	// net/http holds part of the next request: wait for the rest with it.
	c.state.Store(connActive)
	if err := c.Conn.SetReadDeadline(c.deadline); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// SetReadDeadline brings the deadline of the wait for the next request
// forward to the park time.
func (c *parkConn) SetReadDeadline(t time.Time) error {
	if c.state.Load() == connIdle {
		c.deadline = t
		if p := time.Now().Add(c.l.after); t.IsZero() || p.Before(t) {
			t = p
		}
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *parkConn) Close() error {
	if c.state.CompareAndSwap(connParking, connActive) {
		return c.l.park(c)
	}
	return c.Conn.Close()
}

// CloseWrite keeps net/http's lingering close (after a 413, say) working.
func (c *parkConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps sendfile and splice for bodies copied to the client.
func (c *parkConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// Returning memory after a burst.
//
// The Go runtime returns freed memory to the OS lazily and collects
// garbage only as the heap grows, so after a burst (or once thousands of
// connections have been parked) an idle edge would hold its peak for
// minutes. releaseMemory watches the allocation rate: when the process
// has gone quiet (less than quietAllocRate allocated in a releaseEvery
// tick) and there is something worth returning (releaseMin allocated since
// the last release, or freed and not yet returned, or left by connections
// parked since), it collects twice (the
// second time frees what sync.Pools held) and returns the free memory to
// the OS. Under load it never runs; a quiet edge pays two collections at
// most once per releaseMin of allocations. GOMEMLIMIT and GOGC still apply
// as usual.
const (
	releaseEvery   = time.Second
	quietAllocRate = 1 << 20
	releaseMin     = 16 << 20
)

var releaseSamples = []string{"/gc/heap/allocs:bytes", "/memory/classes/heap/free:bytes"}

// releaseMemory runs until done is closed. parked returns the bytes that
// parked connections left to collect so far.
func releaseMemory(done <-chan struct{}, parked func() uint64) {
	tick := time.NewTicker(releaseEvery)
	defer tick.Stop()
	s := make([]rmetrics.Sample, len(releaseSamples))
	for i, name := range releaseSamples {
		s[i].Name = name
	}
	read := func() (allocs, free uint64) {
		rmetrics.Read(s)
		for i := range s {
			if s[i].Value.Kind() != rmetrics.KindUint64 {
				return 0, 0
			}
		}
		return s[0].Value.Uint64(), s[1].Value.Uint64()
	}
	last, _ := read()
	released, parkedAt := last, parked()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		allocs, free := read()
		quiet := allocs-last < quietAllocRate
		last = allocs
		p := parked()
		if quiet && (allocs-released+p-parkedAt >= releaseMin || free >= releaseMin) {
			runtime.GC()
			debug.FreeOSMemory()
			released, _ = read()
			last, parkedAt = released, p
		}
	}
}
