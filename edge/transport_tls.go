package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// https:// upstreams on the fast path. The exchange is the same as for
// plain HTTP, through a tls.Conn; what differs is the proof that an idle
// connection is clean. Bytes an upstream sent past the end of a response
// can sit in three places the socket peek does not see: decrypted in the
// tls.Conn, in whole records it read but did not open, and in part of a
// record it read (the rest still to come). A connection is handed out
// again only when none holds anything (tlsIdleClean) and the kernel holds
// nothing either.

// tlsHandshakeTimeout bounds the TLS handshake with an upstream, as
// http.Transport's TLSHandshakeTimeout.
const tlsHandshakeTimeout = 10 * time.Second

// upstreamTLS returns the client TLS configuration for up's https://
// upstreams, shared by the fast path and the http.Transport behind it
// (neither modifies it): HTTP/1.1 only, as the edge speaks to every
// upstream, and a session cache, so the connections of large bodies and
// websockets, used once, resume rather than redo a full handshake.
func upstreamTLS(up Upstream) *tls.Config {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"http/1.1"},
		ServerName:         up.TLSServerName,
		InsecureSkipVerify: up.TLSInsecureSkipVerify,
		ClientSessionCache: tls.NewLRUClientSessionCache(0),
	}
	if up.TLSCAPEM != "" {
		// Load has parsed it already.
		c.RootCAs = x509.NewCertPool()
		c.RootCAs.AppendCertsFromPEM([]byte(up.TLSCAPEM))
	}
	return c
}

// dialTLS runs the TLS handshake over raw, a connection to host, checking
// the certificate against host unless cfg names another server.
func dialTLS(ctx context.Context, cfg *tls.Config, raw net.Conn, host string) (*tls.Conn, *recordReader, error) {
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	rr := &recordReader{Conn: raw}
	tc := tls.Client(rr, cfg)
	ctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, nil, fmt.Errorf("tls handshake with upstream: %w", err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
		return nil, nil, fmt.Errorf("tls handshake with upstream: it chose protocol %q, not http/1.1", p)
	}
	return tc, rr, nil
}

// tlsIdleClean reports whether tc, an idle connection, holds nothing: no
// decrypted byte, no whole record, no part of one. A read with its deadline
// in the past returns what tls.Conn has decrypted or can open from whole
// records it holds (handling post-handshake messages such as session
// tickets on the way), and reads nothing from the socket: its timeout
// leaves the connection usable. What may still be held after it is part of
// a record, which only rr's framing can tell.
func tlsIdleClean(tc *tls.Conn, rr *recordReader, probe []byte) bool {
	if err := tc.SetReadDeadline(aLongTimeAgo); err != nil {
		return false
	}
	n, err := tc.Read(probe)
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false // a stray byte, a close_notify, an alert
	}
	if err := tc.SetReadDeadline(time.Time{}); err != nil {
		return false
	}
	return rr.atBoundary()
}

// recordReader is the socket under an upstream's tls.Conn. It follows the
// TLS record framing (a 5-byte header whose last two bytes are the length
// of the record's body) of everything read, so that it can tell whether
// the tls.Conn holds part of a record: the head of bytes the upstream sent
// past a response, whose rest, arriving later, would be read as the next
// request's response.
type recordReader struct {
	net.Conn
	hdr  int     // bytes of the current record's header read so far
	size [2]byte // the length field of that header
	left int     // bytes of the current record's body still to come
}

func (r *recordReader) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.follow(p[:n])
	return n, err
}

// follow advances the framing over b.
func (r *recordReader) follow(b []byte) {
	for len(b) > 0 {
		if r.left > 0 {
			k := min(r.left, len(b))
			r.left -= k
			b = b[k:]
			continue
		}
		if r.hdr >= 3 {
			r.size[r.hdr-3] = b[0]
		}
		r.hdr++
		b = b[1:]
		if r.hdr == 5 {
			r.hdr, r.left = 0, int(binary.BigEndian.Uint16(r.size[:]))
		}
	}
}

// atBoundary reports whether what was read ends a record.
func (r *recordReader) atBoundary() bool { return r.hdr == 0 && r.left == 0 }

// Unwrap returns the socket.
func (r *recordReader) Unwrap() net.Conn { return r.Conn }
