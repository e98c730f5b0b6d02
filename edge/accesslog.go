package edge

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// accessLogMaxPending bounds the bytes of lines waiting for a slow writer;
// past it new lines are dropped (and counted) rather than slowing requests.
const accessLogMaxPending = 4 << 20

// accessLogBatch is how long the writer lets lines gather before it writes
// them: one write per batch instead of a wake-up and a syscall per request
// (that cost a sixth of the edge's CPU per request).
const accessLogBatch = 50 * time.Millisecond

// accessLog writes one JSON object per request. A request formats its line
// outside any lock and appends it to a pending buffer under a mutex held
// for a copy; a background goroutine swaps the buffer out and writes it. A
// slow stdout therefore never holds a request: at worst lines are dropped.
type accessLog struct {
	mu      sync.Mutex
	pending []byte
	wake    chan struct{} // signalled when pending becomes non-empty
	swap    chan io.Writer
	stop    chan struct{}
	done    chan struct{}
	dropped func() // counts a line dropped because the writer fell behind
	bufs    sync.Pool
	once    sync.Once
}

// newAccessLog starts writing to w.
func newAccessLog(w io.Writer, dropped func()) *accessLog {
	l := &accessLog{
		pending: make([]byte, 0, 64<<10),
		wake:    make(chan struct{}, 1),
		swap:    make(chan io.Writer),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		dropped: dropped,
		bufs:    sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }},
	}
	go l.run(w)
	return l
}

func (l *accessLog) run(w io.Writer) {
	defer close(l.done)
	spare := make([]byte, 0, 64<<10)
	// flush writes what is pending; the buffers alternate, so a steady
	// state allocates nothing.
	flush := func() {
		l.mu.Lock()
		batch := l.pending
		l.pending = spare[:0]
		l.mu.Unlock()
		if len(batch) > 0 {
			_, _ = w.Write(batch) // a broken log must not stop the edge
		}
		spare = batch
	}
	timer := time.NewTimer(accessLogBatch)
	timer.Stop()
	for {
		select {
		case <-l.wake:
			timer.Reset(accessLogBatch)
			select {
			case <-timer.C:
			case <-l.stop:
				flush()
				return
			}
			flush()
		case nw := <-l.swap:
			flush()
			l.swap <- w
			w = nw
		case <-l.stop:
			flush()
			return
		}
	}
}

// use makes the log write to w from now on, after writing what is pending
// to the old writer, which it returns for the caller to close.
func (l *accessLog) use(w io.Writer) io.Writer {
	select {
	case l.swap <- w:
		return <-l.swap
	case <-l.done: // closed: nothing writes any more
		return nil
	}
}

// Close writes what is pending and stops. Lines logged later are lost.
func (l *accessLog) Close() {
	l.once.Do(func() { close(l.stop) })
	<-l.done
}

// logEntry is one access log line.
type logEntry struct {
	start     time.Time
	duration  time.Duration
	requestID string
	clientIP  string
	method    string
	host      string
	path      string
	status    int
	bytesIn   int64
	bytesOut  int64
	route     string
	upstream  string
	user      string
	userAgent string
	cfRay     string
	// denyReason says why the edge refused the request (access.go), or "".
	denyReason string
	encoding   string // the response's compression, if the edge applied one
}

// log adds e's line to the pending batch, or drops and counts it when the
// writer has fallen accessLogMaxPending bytes behind.
func (l *accessLog) log(e *logEntry) {
	b := l.bufs.Get().(*[]byte)
	*b = appendEntry((*b)[:0], e)
	l.mu.Lock()
	full := len(l.pending)+len(*b) > accessLogMaxPending
	first := len(l.pending) == 0
	if !full {
		l.pending = append(l.pending, *b...)
	}
	l.mu.Unlock()
	l.bufs.Put(b)
	switch {
	case full:
		if l.dropped != nil {
			l.dropped()
		}
	case first:
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// appendEntry formats e as a JSON object and a newline, by hand: this runs
// once per request, and encoding/json would cost reflection and allocations.
func appendEntry(b []byte, e *logEntry) []byte {
	b = append(b, `{"time":"`...)
	b = e.start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","request_id":`...)
	b = appendJSONString(b, e.requestID)
	b = append(b, `,"client_ip":`...)
	b = appendJSONString(b, e.clientIP)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, e.method)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, e.host)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, e.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, e.bytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, e.bytesOut, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(e.duration)/float64(time.Millisecond), 'f', 3, 64)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, e.route)
	b = append(b, `,"upstream":`...)
	b = appendJSONString(b, e.upstream)
	b = append(b, `,"user":`...)
	b = appendJSONString(b, e.user)
	b = append(b, `,"user_agent":`...)
	b = appendJSONString(b, e.userAgent)
	b = append(b, `,"cf_ray":`...)
	b = appendJSONString(b, e.cfRay)
	if e.denyReason != "" {
		b = append(b, `,"deny_reason":`...)
		b = appendJSONString(b, e.denyReason)
	}
	b = append(b, `,"encoding":`...)
	b = appendJSONString(b, e.encoding)
	b = append(b, `,"pid":`...)
	b = append(b, processID...)
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// so a client cannot break the line with what it sends.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// recorder is the ResponseWriter handed to the proxy: it notes the status
// and the bytes written for the log and the metrics. Unwrap lets
// http.ResponseController reach the connection for flushes and hijacks.
type recorder struct {
	w           http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	clientGone  bool         // set by the proxy's error handler: log 499
	body        *limitedBody // the request body, for the error handler
	http10      bool         // the client speaks HTTP/1.0: no 1xx (RFC 9110 §15.2)
	tunnel      *tunnelConn  // the hijacked connection of a websocket (tunnel.go)
	pages       *ErrorPages  // the operator's error pages, for respond
}

var _ http.ResponseWriter = (*recorder)(nil)

func (r *recorder) Header() http.Header { return r.w.Header() }

func (r *recorder) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Informational: the real status is still to come. An HTTP/1.0
		// client would take it for the final response.
		if !r.http10 {
			r.w.WriteHeader(code)
		}
		return
	}
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
		closeIfBodyUnsent(r.w.Header(), r.body)
	}
	r.w.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	n, err := r.w.Write(p)
	r.bytes += int64(n)
	return n, err
}

// FlushError flushes without the lookup http.ResponseController would do on
// every write of a stream.
func (r *recorder) FlushError() error {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	return http.NewResponseController(r.w).Flush()
}

// Unwrap returns the underlying ResponseWriter.
func (r *recorder) Unwrap() http.ResponseWriter { return r.w }
