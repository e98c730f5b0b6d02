package edge

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// accessLogQueue is how many lines may wait for a slow writer before new
// ones are dropped (and counted) rather than slowing requests down.
const accessLogQueue = 8192

// accessLog writes one JSON object per request. Requests only format their
// line and hand it to a background goroutine through a bounded queue, so a
// slow stdout never holds a request behind a lock.
type accessLog struct {
	queue   chan *[]byte
	swap    chan io.Writer // a new writer in, the old one back out
	stop    chan struct{}
	done    chan struct{}
	dropped func() // counts a line dropped because the queue was full
	bufs    sync.Pool
	once    sync.Once
}

// newAccessLog starts writing to w.
func newAccessLog(w io.Writer, dropped func()) *accessLog {
	l := &accessLog{
		queue:   make(chan *[]byte, accessLogQueue),
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
	bw := bufio.NewWriterSize(w, 64<<10)
	write := func(b *[]byte) {
		_, _ = bw.Write(*b) // a broken log must not stop the edge
		*b = (*b)[:0]
		l.bufs.Put(b)
	}
	for {
		select {
		case b := <-l.queue:
			write(b)
			// Batch whatever else is waiting into one write.
			for n := len(l.queue); n > 0; n-- {
				write(<-l.queue)
			}
			_ = bw.Flush()
		case nw := <-l.swap:
			_ = bw.Flush()
			l.swap <- w
			w = nw
			bw.Reset(w)
		case <-l.stop:
			for {
				select {
				case b := <-l.queue:
					write(b)
				default:
					_ = bw.Flush()
					return
				}
			}
		}
	}
}

// use makes the log write to w from now on and returns the writer it
// used, flushed, for the caller to close.
func (l *accessLog) use(w io.Writer) io.Writer {
	select {
	case l.swap <- w:
		return <-l.swap
	case <-l.done: // closed: nothing writes any more
		return nil
	}
}

// Close writes what is queued and stops. Lines logged later are lost.
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
}

// log queues e's line, or drops and counts it when the queue is full.
func (l *accessLog) log(e *logEntry) {
	b := l.bufs.Get().(*[]byte)
	*b = appendEntry((*b)[:0], e)
	select {
	case l.queue <- b:
	default:
		l.bufs.Put(b)
		if l.dropped != nil {
			l.dropped()
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
}

var _ http.ResponseWriter = (*recorder)(nil)

func (r *recorder) Header() http.Header { return r.w.Header() }

func (r *recorder) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		r.w.WriteHeader(code) // informational: the real status is still to come
		return
	}
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
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
