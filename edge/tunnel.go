package edge

import (
	"bufio"
	"net"
	"net/http"
	"sync/atomic"
)

// A websocket is served by ReverseProxy on the client's hijacked
// connection: it writes the 101 and copies both ways past the recorder's
// WriteHeader and Write. The recorder therefore hijacks on the proxy's
// behalf, notes the 101 and counts the tunnel's bytes each way, so the
// access log and edge_requests_total say what happened.

var _ http.Hijacker = (*recorder)(nil)

// Hijack implements http.Hijacker. ReverseProxy calls it (through
// http.ResponseController) only to serve a 101 it accepted.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(r.w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusSwitchingProtocols, true
	}
	tc := &tunnelConn{Conn: c}
	r.tunnel = tc
	// brw writes the 101's head straight to c, uncounted: bytes_out counts
	// what follows the head, as it counts bodies for other responses.
	return tc, brw, nil
}

// tunnelConn counts the bytes a hijacked connection carries each way.
type tunnelConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *tunnelConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *tunnelConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

// CloseWrite half-closes the connection when it can, as ReverseProxy does
// once the upstream's side of the tunnel ended.
func (c *tunnelConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Unwrap returns the hijacked connection.
func (c *tunnelConn) Unwrap() net.Conn { return c.Conn }
