// Package upstream is the benchmark's backend: the smallest useful HTTP/1.1
// server, so that what the harness measures is the proxy in front of it.
package upstream

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// BodySize is the size of the body every GET answers with.
const BodySize = 1024

// body is shared by every response: the handler must not allocate per request
// or the limit row measures the allocator instead of the network.
var body = func() []byte {
	b := make([]byte, BodySize)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

var bodyLen = strconv.Itoa(BodySize)

// copyBufs keeps 64 KiB buffers for draining uploads; io.Discard's own
// ReadFrom uses 8 KiB, which costs four times the syscalls on a 1 GiB upload.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// Handler answers GET and HEAD with a fixed 1 KiB body and drains POST and
// PUT bodies, answering with the number of bytes it read.
type Handler struct {
	received atomic.Int64
}

// Received returns the number of request-body bytes drained so far.
func (h *Handler) Received() int64 { return h.received.Load() }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost, http.MethodPut:
		bp := copyBufs.Get().(*[]byte)
		n, err := io.CopyBuffer(onlyWriter{io.Discard}, r.Body, *bp)
		copyBufs.Put(bp)
		h.received.Add(n)
		if err != nil {
			http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, strconv.FormatInt(n, 10))
	default:
		hdr := w.Header()
		hdr["Content-Type"] = []string{"text/plain"}
		hdr["Content-Length"] = []string{bodyLen}
		w.Write(body)
	}
}

// onlyWriter hides io.Discard's ReaderFrom so that CopyBuffer uses our buffer.
type onlyWriter struct{ io.Writer }
