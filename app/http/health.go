package http

import (
	"context"
	"net/http"
	"time"
)

// readyTimeout bounds a readiness check, so that a hung backend answers
// 503 in time for the prober instead of hanging it.
const readyTimeout = 5 * time.Second

// handleHealth is liveness: the process answers.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "healthy"})
}

// handleReady is readiness: every backend answers a ping.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.Service.Ready(ctx); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
