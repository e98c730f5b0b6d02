package http

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type requestIDKey struct{}

// RequestID returns the correlation id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// maxRequestIDLen bounds an incoming id, which ends up in logs.
const maxRequestIDLen = 128

// requestIDFrom reuses the edge's X-Request-ID (or X-Correlation-ID) when it
// is well-formed, so that one id follows a request through every log, and
// makes up a new one otherwise.
func requestIDFrom(r *http.Request) string {
	for _, h := range []string{"X-Request-ID", "X-Correlation-ID"} {
		if id := r.Header.Get(h); validRequestID(id) {
			return id
		}
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validRequestID accepts visible ASCII only: an id is copied into log lines
// and response headers and must not be able to forge either.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] >= 0x7f {
			return false
		}
	}
	return true
}

// responseRecorder notes the status and size of a response on its way out.
// It implements Unwrap so that http.ResponseController still reaches the
// underlying writer's Flush, Hijack and deadlines.
type responseRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rr *responseRecorder) WriteHeader(code int) {
	if rr.status == 0 {
		rr.status = code
	}
	rr.ResponseWriter.WriteHeader(code)
}

func (rr *responseRecorder) Write(p []byte) (int, error) {
	if rr.status == 0 {
		rr.status = http.StatusOK
	}
	n, err := rr.ResponseWriter.Write(p)
	rr.bytes += int64(n)
	return n, err
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (rr *responseRecorder) Unwrap() http.ResponseWriter { return rr.ResponseWriter }

// observe is the outermost middleware: it settles the request id, recovers
// panics, and writes the request's log line and metrics, labelled with the
// ServeMux pattern that matched (never the raw path, which would let
// clients create unbounded label values).
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestIDFrom(r)
		w.Header().Set("X-Request-ID", id)
		if r.Header.Get("X-Correlation-ID") != "" {
			w.Header().Set("X-Correlation-ID", id)
		}
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		rec := &responseRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger().LogAttrs(r.Context(), slog.LevelError, "panic",
					slog.String("request_id", id), slog.Any("panic", v))
				if rec.status == 0 {
					writeJSON(rec, http.StatusInternalServerError, errorBody{Error: "internal error"})
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			endpoint := endpointOf(r.Pattern)
			if m := s.Metrics; m != nil {
				m.requests.WithLabelValues(r.Method, endpoint, strconv.Itoa(status)).Inc()
				m.duration.WithLabelValues(r.Method, endpoint).Observe(elapsed.Seconds())
			}
			s.logger().LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("endpoint", endpoint),
				slog.Int("status", status),
				slog.Int64("bytes_out", rec.bytes),
				slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				slog.String("remote_addr", r.RemoteAddr),
			)
		}()
		next.ServeHTTP(rec, r)
	})
}

// endpointOf turns a ServeMux pattern such as "GET /documents/{id}" into
// the endpoint label "/documents/{id}"; the method has its own label.
// Requests that matched no route share one label.
func endpointOf(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if _, p, ok := strings.Cut(pattern, " "); ok {
		return p
	}
	return pattern
}

// routeOrJSON404 answers requests that match no route with a JSON error,
// as every error is, instead of ServeMux's plain-text 404 and 405.
func routeOrJSON404(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// ServeMux knows whether the path exists for another method
		// (405 with Allow); ask it, then answer in JSON.
		probe := &headerProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch probe.status {
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", probe.header.Get("Allow"))
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method " + r.Method + " is not allowed here"})
		default:
			writeJSON(w, http.StatusNotFound, errorBody{Error: "no such endpoint: " + r.Method + " " + r.URL.Path})
		}
	})
}

// headerProbe is a ResponseWriter that keeps the status and headers and
// drops the body.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header { return p.header }
func (p *headerProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}
func (p *headerProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}
