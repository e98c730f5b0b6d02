package http

import (
	_ "embed"
	"net/http"
)

//go:embed landing.html
var landingPage []byte

// handleLanding serves a small page saying what this is, with the
// endpoints and a contact form that posts through the API.
func (s *Server) handleLanding(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
	w.Write(landingPage)
}
