// Package http is the API's HTTP layer: routes, handlers, middleware and
// metrics over app.Service. It imports net/http under its own name, as
// wtf's http package does; callers import it as apphttp.
package http

import (
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"selfhost.dev/edgeapp/app"
)

// Server serves the API. Its fields are set before the first call to
// Handler and not changed afterwards.
type Server struct {
	// Service does the work. Required.
	Service *app.Service
	// PublicKey is the X-API-Key of the public endpoints. If empty, they
	// refuse every request.
	PublicKey string
	// AdminKey is the X-API-Key of the admin endpoints (DELETE
	// /documents/{id}, GET /contacts); it also opens the public ones. If
	// empty, the admin endpoints refuse every request.
	AdminKey string
	// Logger receives one line per request. If nil, nothing is logged.
	Logger *slog.Logger
	// Metrics, if not nil, counts requests. See NewMetrics.
	Metrics *Metrics
	// LingerBytes bounds how much of a request body left unread by an
	// answer (a refused upload) is read and discarded before the
	// connection is closed, so that the client receives the answer rather
	// than a reset. If zero, DefaultLingerBytes or the upload limit, the
	// larger, is used.
	LingerBytes int64
	// LingerTime bounds that read in time. If zero, DefaultLingerTime is used.
	LingerTime time.Duration

	once    sync.Once
	handler http.Handler
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return discard
}

// Handler returns the API's handler: every route behind the request-id,
// logging and metrics middleware.
func (s *Server) Handler() http.Handler {
	s.once.Do(func() {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /{$}", s.handleLanding)
		mux.HandleFunc("GET /favicon.ico", s.handleFavicon)
		mux.HandleFunc("GET /static/{name}", s.handleStatic)
		mux.HandleFunc("GET /health", s.handleHealth)
		mux.HandleFunc("GET /health/ready", s.handleReady)
		mux.HandleFunc("POST /contact", s.requireKey(s.handleContact))
		mux.HandleFunc("GET /contacts", s.requireAdmin(s.handleContacts))
		mux.HandleFunc("POST /documents/upload", s.requireKey(s.handleUpload))
		mux.HandleFunc("GET /documents/search", s.requireKey(s.handleSearch))
		mux.HandleFunc("GET /documents/{id}", s.requireKey(s.handleDocument))
		mux.HandleFunc("GET /documents/{id}/download", s.requireKey(s.handleDownload))
		mux.HandleFunc("DELETE /documents/{id}", s.requireAdmin(s.handleDelete))
		s.handler = s.linger(s.observe(routeOrJSON404(mux)))
	})
	return s.handler
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Handler().ServeHTTP(w, r)
}
