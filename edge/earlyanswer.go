package edge

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// earlyAnswerHold bounds how long a failed write to an upstream that has
// already answered is held back (see answeredConn).
const earlyAnswerHold = 30 * time.Second

// dialAnswered wraps dial so that its connections are answeredConns.
func dialAnswered(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &answeredConn{Conn: c, closed: make(chan struct{})}, nil
	}
}

// answeredConn is an upstream connection that lets an upstream's early
// answer win over the failure to send it the rest of the request body.
//
// Why: an upstream that answers before it has read the whole body (413,
// 415, 401 on an upload) and then closes makes the Transport's write of the
// body fail while its read of the answer succeeds. http.Transport returns
// whichever it sees first, so the client would get a 502 for an answer
// that arrived. Once the upstream has sent anything in answer to a request,
// a failed Write is held back until the Transport closes the connection,
// which its read loop does as soon as it has the answer's end or a read
// error (or earlyAnswerHold passes): the answer is returned, and the
// connection is not reused. A Write on a connection that never answered
// fails at once, as before.
type answeredConn struct {
	net.Conn
	wrote    atomic.Bool // a request has been written
	answered atomic.Bool // the upstream sent bytes after that
	once     sync.Once
	closed   chan struct{}
}

func (c *answeredConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.wrote.Load() {
		c.answered.Store(true)
	}
	return n, err
}

func (c *answeredConn) Write(p []byte) (int, error) {
	c.wrote.Store(true)
	n, err := c.Conn.Write(p)
	if err != nil && c.answered.Load() {
		t := time.NewTimer(earlyAnswerHold)
		defer t.Stop()
		select {
		case <-c.closed:
		case <-t.C:
		}
	}
	return n, err
}

// Close closes the connection and releases a held-back Write.
func (c *answeredConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
