//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package edge

import (
	"net"
	"syscall"
)

// idleClean reports whether nothing at all is waiting on an idle upstream
// connection: no byte and no end of stream. It peeks at the socket without
// blocking (recv with MSG_PEEK|MSG_DONTWAIT, one syscall), so it sees what
// bufio cannot: bytes the upstream wrote after the end of the last
// response (a body after HEAD, 204 or 304, more than Content-Length, a late
// answer to an earlier request) still in the kernel's buffer. Such a
// connection is desynchronized: the next request on it would read those
// bytes as its own response (another client's, possibly another route's).
// Anything other than "would block" counts as not clean.
func idleClean(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var (
		buf  [1]byte
		perr error
	)
	err = rc.Read(func(fd uintptr) bool {
		_, _, perr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readiness: a peek that would block is the answer
	})
	// Only "would block" is clean: a byte (no error) is a stray response,
	// zero bytes without error is the upstream's close, any other error a
	// broken connection.
	return err == nil && (perr == syscall.EAGAIN || perr == syscall.EWOULDBLOCK)
}
