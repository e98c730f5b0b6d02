package edge

import (
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Response compression (routes.yaml `encode`). The upstream's response is
// compressed on its way to the client with klauspost/compress's zstd and
// gzip encoders, pooled so that memory per response stays bounded: a zstd
// encoder with a 1 MiB window (browsers accept up to 8 MiB) and a gzip
// writer at level 5, reset between responses. gzhttp is not used: it does
// gzip only, and the edge wants one writer for both encodings with the
// edge's own rules on what not to touch.
//
// A response is compressed only when all of these hold: the client accepts
// the encoding (q-values honoured, identity and q=0 respected) and did not
// send Cache-Control: no-transform; the request is not an upgrade (a HEAD
// gets the headers of the encoded GET, without a body); the status is 2xx other than 204
// and 206, or an error page (4xx, 5xx); the response has no
// Content-Encoding, no Cache-Control: no-transform, a compressible
// Content-Type other than text/event-stream, and a Content-Length that is
// either unknown or at least encodeMinSize. Streams stay streams: a flush
// of the proxy flushes the encoder first.

// encodeMinSize is the smallest known length worth compressing: below it
// the encoding's framing eats most of the gain (Caddy's default).
const encodeMinSize = 512

// gzipLevel matches the level the bench compares against (nginx's
// gzip_comp_level 5): a good ratio at modest CPU.
const gzipLevel = 5

var (
	zstdPool = sync.Pool{New: func() any {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic(err) // the options are constants: this cannot fail
		}
		return e
	}}
	gzipPool = sync.Pool{New: func() any {
		w, err := gzip.NewWriterLevel(nil, gzipLevel)
		if err != nil {
			panic(err)
		}
		return w
	}}
)

// pickEncoding returns the encoding of prefs (in the edge's order of
// preference) that the Accept-Encoding values rate highest, or "" for
// none, or when the client rates identity by name above it. An encoding the client gives q=0, or one it does not name when it
// names no "*", is not acceptable.
func pickEncoding(accept []string, prefs []string) string {
	if len(accept) == 0 || len(prefs) == 0 {
		return ""
	}
	best, bestQ := "", 0.0
	for _, enc := range prefs {
		q, star := -1.0, -1.0
		for _, line := range accept {
			for part := range strings.SplitSeq(line, ",") {
				name, params, _ := strings.Cut(part, ";")
				name = strings.TrimSpace(name)
				v := qValue(params)
				if strings.EqualFold(name, "x-gzip") {
					name = EncodingGzip // RFC 9110 8.4.1.3: the same coding
				}
				switch {
				case strings.EqualFold(name, enc):
					q = v
				case name == "*":
					star = v
				}
			}
		}
		if q < 0 {
			q = star
		}
		if q > bestQ {
			best, bestQ = enc, q
		}
	}
	if best != "" && identityQ(accept) > bestQ {
		return "" // the client rates the body as it is above any encoding
	}
	return best
}

// identityQ returns the q the client gives identity by name, or -1 when it
// does not name it (then it ranks below every named encoding).
func identityQ(accept []string) float64 {
	q := -1.0
	for _, line := range accept {
		for part := range strings.SplitSeq(line, ",") {
			name, params, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(name), "identity") {
				q = qValue(params)
			}
		}
	}
	return q
}

// qValue returns the q parameter in params (";q=0.5"), 1 when absent, 0
// when malformed (a client that cannot spell q gets nothing it did not
// clearly ask for).
func qValue(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		return parseQ(strings.TrimSpace(v))
	}
	return 1
}

// parseQ parses a qvalue: "0" or "1", optionally followed by "." and
// digits (RFC 9110 12.4.2 allows three; more are tolerated). Anything else
// is malformed, 0: strconv.ParseFloat would take "NaN", "Inf", "1e-1" and
// "0x1p-1", and a NaN compares false with every q, winning ties it
// should lose.
func parseQ(v string) float64 {
	if v == "" || v[0] != '0' && v[0] != '1' {
		return 0
	}
	if len(v) > 1 {
		if v[1] != '.' {
			return 0
		}
		for i := 2; i < len(v); i++ {
			if v[i] < '0' || v[i] > '9' {
				return 0
			}
		}
	}
	q, err := strconv.ParseFloat(v, 64)
	if err != nil || q > 1 {
		return 0
	}
	return q
}

// compressibleType reports whether a Content-Type is text-like enough to be
// worth compressing. text/event-stream is not: it is a stream of small
// events that must reach the client one by one (Caddy #6293).
func compressibleType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch {
	case mt == "text/event-stream":
		return false
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/json", "application/javascript", "application/x-javascript",
		"application/ecmascript", "application/xml", "application/wasm",
		"application/manifest+json", "application/x-ndjson", "application/graphql",
		"application/x-www-form-urlencoded", "application/vnd.ms-fontobject",
		"image/svg+xml", "image/x-icon", "image/bmp",
		"font/ttf", "font/otf", "font/eot":
		return true
	}
	return false
}

// noTransform reports whether Cache-Control forbids changing the body.
func noTransform(h http.Header) bool {
	for _, v := range h["Cache-Control"] {
		for d := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-transform") {
				return true
			}
		}
	}
	return false
}

// encodeWriter compresses a response on its way to w. It decides at
// WriteHeader, when the response's headers are known.
type encodeWriter struct {
	w      http.ResponseWriter
	enc    string // what the client accepts: zstd, gzip or ""
	method string
	inm    []string // the request's If-None-Match, to recognize our weak ETags on a 304

	wroteHeader bool
	active      string // the encoding in use, once decided: "" for none
	out         countWriter
	zw          *zstd.Encoder
	gw          *gzip.Writer
	in          int64 // bytes before compression
}

var _ http.ResponseWriter = (*encodeWriter)(nil)

// countWriter counts what the encoder writes to the client.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// newEncodeWriter returns the encodeWriter of req's response to w, for a
// route that allows the encodings prefs. A request's Cache-Control:
// no-transform (RFC 9111 5.2.1.6) asks intermediaries for the body as the
// origin sent it: it gets no encoding, though the response still varies.
func newEncodeWriter(w http.ResponseWriter, req *http.Request, prefs []string) *encodeWriter {
	e := &encodeWriter{w: w, method: req.Method, inm: req.Header["If-None-Match"]}
	if !noTransform(req.Header) {
		e.enc = pickEncoding(req.Header["Accept-Encoding"], prefs)
	}
	return e
}

func (e *encodeWriter) Header() http.Header { return e.w.Header() }

func (e *encodeWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		e.w.WriteHeader(code) // informational, or a 101 that is not ours to touch
		return
	}
	if e.wroteHeader {
		return
	}
	e.wroteHeader = true
	h := e.w.Header()
	switch {
	case code == http.StatusNotModified:
		e.notModified(h)
	case e.eligible(code, h):
		addVary(h, "Accept-Encoding")
		switch {
		case e.enc == "":
		case e.method == http.MethodHead:
			// The headers the GET would have (RFC 9110 9.3.2), so that a
			// cache or a client probing with HEAD sees the same Vary,
			// ETag and encoding; there is no body to encode.
			encodedHeaders(h, e.enc)
		default:
			e.start(h)
		}
	}
	e.w.WriteHeader(code)
}

// notModified gives a 304 the validators of the body the client holds: when
// the client revalidates with the weak ETag an encoded 200 gave it and the
// upstream answers with the strong one, the 304 names the weak one (else a
// cache would update its compressed copy to a strong ETag that does not
// describe it) and varies as the 200 did.
func (e *encodeWriter) notModified(h http.Header) {
	et := h.Get("Etag")
	if et == "" || strings.HasPrefix(et, "W/") || len(e.inm) == 0 {
		return
	}
	weak := "W/" + et
	for _, v := range e.inm {
		for tag := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(tag) == weak {
				h.Set("Etag", weak)
				addVary(h, "Accept-Encoding")
				return
			}
		}
	}
}

// eligible reports whether a response with code and h may be compressed at
// all, for some client: then it varies by Accept-Encoding.
func (e *encodeWriter) eligible(code int, h http.Header) bool {
	switch {
	case code < 200, code == http.StatusNoContent, code == http.StatusPartialContent,
		code == http.StatusNotModified, code >= 300 && code < 400,
		h.Get("Content-Encoding") != "", h["Content-Range"] != nil,
		noTransform(h), !compressibleType(h.Get("Content-Type")):
		return false
	}
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n < encodeMinSize {
			return false
		}
	}
	return true
}

// start sets the headers of an encoded response and takes an encoder.
func (e *encodeWriter) start(h http.Header) {
	e.active = e.enc
	encodedHeaders(h, e.enc)
	e.out = countWriter{w: e.w}
	switch e.enc {
	case EncodingZstd:
		e.zw = zstdPool.Get().(*zstd.Encoder)
		e.zw.Reset(&e.out)
	case EncodingGzip:
		e.gw = gzipPool.Get().(*gzip.Writer)
		e.gw.Reset(&e.out)
	}
}

// encodedHeaders sets the headers of a response encoded with enc.
func encodedHeaders(h http.Header, enc string) {
	h["Content-Encoding"] = []string{enc}
	delete(h, "Content-Length")
	// Byte ranges of the encoded body are not those of the upstream's.
	delete(h, "Accept-Ranges")
	// The encoded body is not byte-identical to what the strong ETag
	// names; a weak one still lets caches revalidate (as Caddy and nginx).
	if et := h.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
		h.Set("Etag", "W/"+et)
	}
}

func (e *encodeWriter) Write(p []byte) (int, error) {
	if !e.wroteHeader {
		if e.w.Header().Get("Content-Type") == "" {
			// net/http would sniff the type on this first write; do it
			// here, so that the decision sees what the client will.
			e.w.Header().Set("Content-Type", http.DetectContentType(p))
		}
		e.WriteHeader(http.StatusOK)
	}
	switch {
	case e.zw != nil:
		e.in += int64(len(p))
		return e.zw.Write(p)
	case e.gw != nil:
		e.in += int64(len(p))
		return e.gw.Write(p)
	}
	return e.w.Write(p)
}

// FlushError flushes what the encoder holds, then the connection, so that
// a stream through an encode route still arrives piece by piece.
func (e *encodeWriter) FlushError() error {
	if !e.wroteHeader {
		e.WriteHeader(http.StatusOK)
	}
	var err error
	switch {
	case e.zw != nil:
		err = e.zw.Flush()
	case e.gw != nil:
		err = e.gw.Flush()
	}
	if err != nil {
		return err
	}
	return http.NewResponseController(e.w).Flush()
}

// Unwrap returns the underlying ResponseWriter, for hijacks and deadlines.
func (e *encodeWriter) Unwrap() http.ResponseWriter { return e.w }

// close ends the encoded body and returns the encoder to its pool. It
// reports the encoding used and the bytes before and after it.
func (e *encodeWriter) close() (enc string, in, out int64) {
	switch {
	case e.zw != nil:
		_ = e.zw.Close()
		e.zw.Reset(nil)
		zstdPool.Put(e.zw)
		e.zw = nil
	case e.gw != nil:
		_ = e.gw.Close()
		e.gw.Reset(nil)
		gzipPool.Put(e.gw)
		e.gw = nil
	}
	return e.active, e.in, e.out.n
}

// addVary adds name to h's Vary, unless it is there already or Vary is "*".
func addVary(h http.Header, name string) {
	for _, v := range h["Vary"] {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if f == "*" || strings.EqualFold(f, name) {
				return
			}
		}
	}
	h["Vary"] = append(h["Vary"], name)
}
