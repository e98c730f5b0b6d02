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

// JSONSize is the size of the JSON document GET /json answers with
// (scenario 7: compression).
const JSONSize = 100 << 10

// jsonBody is a JSON array of records, as an API's list answer: text that
// compresses the way real JSON does, not a run of one byte.
var jsonBody = func() []byte {
	b := []byte{'['}
	for i := 0; len(b) < JSONSize-200; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"filename":"report-`...)
		b = strconv.AppendInt(b, int64(i*7919%100000), 10)
		b = append(b, `.pdf","document_type":"`...)
		b = append(b, []string{"invoice", "report", "contract", "memo"}[i%4]...)
		b = append(b, `","size":`...)
		b = strconv.AppendInt(b, int64(i*104729%9000000), 10)
		b = append(b, `,"created_at":"2026-11-`...)
		b = strconv.AppendInt(b, int64(10+i%19), 10)
		b = append(b, `T0`...)
		b = strconv.AppendInt(b, int64(i%10), 10)
		b = append(b, `:00:00Z"}`...)
	}
	b = append(b, ']')
	for len(b) < JSONSize {
		b = append(b, ' ')
	}
	return b
}()

var jsonLen = strconv.Itoa(len(jsonBody))

// copyBufs keeps 64 KiB buffers for draining uploads; io.Discard's own
// ReadFrom uses 8 KiB, which costs four times the syscalls on a 1 GiB upload.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// Handler answers GET and HEAD with a fixed 1 KiB body (GET /json: 100 KiB
// of JSON; GET /download?bytes=N: N zero bytes) and drains POST and PUT
// bodies, answering with the number of bytes it read.
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
		if r.URL.Path == "/download" {
			h.download(w, r)
			return
		}
		if r.URL.Path == "/json" {
			hdr["Content-Type"] = []string{"application/json"}
			hdr["Content-Length"] = []string{jsonLen}
			w.Write(jsonBody)
			return
		}
		hdr["Content-Type"] = []string{"text/plain"}
		hdr["Content-Length"] = []string{bodyLen}
		w.Write(body)
	}
}

// MaxDownload bounds GET /download?bytes=N (scenario 9).
const MaxDownload = 16 << 30

// zeros is what /download sends, 64 KiB per write.
var zeros = make([]byte, 64<<10)

// download answers GET /download?bytes=N with N zero bytes and a
// Content-Length, written 64 KiB at a time: a streamed response that the
// upstream produces at almost no cost, so the proxy's copy is what shows.
func (h *Handler) download(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
	if err != nil || n < 0 || n > MaxDownload {
		http.Error(w, "bytes: want 0.."+strconv.Itoa(MaxDownload), http.StatusBadRequest)
		return
	}
	hdr := w.Header()
	hdr["Content-Type"] = []string{"application/octet-stream"}
	hdr["Content-Length"] = []string{strconv.FormatInt(n, 10)}
	if r.Method == http.MethodHead {
		return
	}
	for n > 0 {
		chunk := zeros[:min(n, int64(len(zeros)))]
		if _, err := w.Write(chunk); err != nil {
			return
		}
		n -= int64(len(chunk))
	}
}

// onlyWriter hides io.Discard's ReaderFrom so that CopyBuffer uses our buffer.
type onlyWriter struct{ io.Writer }
