package http

import (
	"io"
	"net/http"
	"strings"
	"time"
)

// Defaults of the lingering read of a refused body (see Server.LingerBytes
// and Server.LingerTime), as nginx's lingering_close does.
const (
	DefaultLingerBytes = 64 << 20
	DefaultLingerTime  = 10 * time.Second
)

// linger reads and discards what is left of a request body once the handler
// has answered, up to LingerBytes and LingerTime, before the connection is
// reused or closed.
//
// Why: a handler that refuses an upload early (401, 413, 415, 400) answers
// while the client is still sending. If the server then closes the socket
// with unread data in its receive buffer, the kernel sends a reset, and the
// reset destroys the answer before the client reads it: the client sees
// "connection reset by peer" instead of the status. Reading the rest first
// lets the answer arrive whole.
//
// A request with Expect: 100-continue whose body the handler never touched
// is left alone: the client has not sent the body and waits for a 100
// that reading would trigger. net/http closes such a connection after the
// answer, and the client never sends the body at all.
func (s *Server) linger(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body := &trackedBody{ReadCloser: r.Body}
		r.Body = body
		if hasToken(r.Header.Get("Expect"), "100-continue") {
			w = &expectWriter{ResponseWriter: w, body: body}
		}
		next.ServeHTTP(w, r)
		// Give net/http its own body back before the answer's headers go
		// out: it looks at the body's type to decide whether to discard
		// what is left (which would send a 100 Continue the client never
		// got) or to close the connection after the answer.
		r.Body = body.ReadCloser
		if body.eof || (!body.touched && hasToken(r.Header.Get("Expect"), "100-continue")) {
			return
		}
		rc := http.NewResponseController(w)
		// The client reads the answer while we drain.
		_ = rc.Flush()
		_ = rc.SetReadDeadline(time.Now().Add(s.lingerTime()))
		// Read the original body, not a http.MaxBytesReader the handler
		// wrapped it in: that one refuses to read past its limit.
		_, _ = io.CopyN(io.Discard, body.ReadCloser, s.lingerBytes())
	})
}

func (s *Server) lingerBytes() int64 {
	if s.LingerBytes > 0 {
		return s.LingerBytes
	}
	return max(DefaultLingerBytes, s.Service.UploadLimit()+multipartSlack)
}

func (s *Server) lingerTime() time.Duration {
	if s.LingerTime > 0 {
		return s.LingerTime
	}
	return DefaultLingerTime
}

// trackedBody notes whether a request body was read at all and whether it
// was read to its end.
type trackedBody struct {
	io.ReadCloser
	touched, eof bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.touched = true
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// expectWriter says "Connection: close" on an answer given before the body
// of an Expect: 100-continue request was read at all. net/http closes such
// a connection anyway but does not say so, and a proxy in front (the edge)
// that does not know it would send the body the answer refused, to keep
// its connection. It implements Unwrap for http.ResponseController.
type expectWriter struct {
	http.ResponseWriter
	body        *trackedBody
	wroteHeader bool
}

func (w *expectWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.wroteHeader = true
		if !w.body.touched {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *expectWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *expectWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hasToken reports whether the comma-separated header value v holds token,
// ignoring case, as net/http reads Expect.
func hasToken(v, token string) bool {
	for _, t := range strings.Split(v, ",") {
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}
