//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package edge

import (
	"net"
	"syscall"
)

// socketPeeker tells whether anything at all is waiting on an idle upstream
// connection: no byte and no end of stream. It peeks at the socket without
// blocking (recv with MSG_PEEK|MSG_DONTWAIT, one syscall), so it sees what
// bufio cannot: bytes the upstream wrote after the end of the last
// response (a body after HEAD, 204 or 304, more than Content-Length, a late
// answer to an earlier request) still in the kernel's buffer. Such a
// connection is desynchronized: the next request on it would read those
// bytes as its own response (another client's, possibly another route's).
// One is made per connection, so that a peek allocates nothing.
type socketPeeker struct {
	rc    syscall.RawConn
	fn    func(fd uintptr) bool // p.peekFD, bound once
	buf   [1]byte
	clean bool
}

// newSocketPeeker returns the peeker of c, or nil if c has no socket (no
// connection without one is ever proven clean).
func newSocketPeeker(c net.Conn) *socketPeeker {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &socketPeeker{rc: rc}
	p.fn = p.peekFD
	return p
}

func (p *socketPeeker) peekFD(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	// Only "would block" is clean: a byte (no error) is a stray response,
	// zero bytes without error is the upstream's close, any other error a
	// broken connection.
	p.clean = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
	return true // never wait for readiness: a peek that would block is the answer
}

// idleClean reports whether nothing is waiting on the connection.
func (p *socketPeeker) idleClean() bool {
	if p == nil {
		return false
	}
	p.clean = false
	if err := p.rc.Read(p.fn); err != nil {
		return false
	}
	return p.clean
}
