package http

import (
	"net/http"
	"strconv"

	"selfhost.dev/edgeapp/app"
)

// contactRequest is the body of POST /contact.
type contactRequest struct {
	Name    string `json:"name"`
	Email   string `json:"email"`
	Message string `json:"message"`
}

// contactResponse is the answer to POST /contact.
type contactResponse struct {
	ID      int64  `json:"id"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func (s *Server) handleContact(w http.ResponseWriter, r *http.Request) {
	var req contactRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	c := &app.Contact{Name: req.Name, Email: req.Email, Message: req.Message}
	if err := s.Service.SubmitContact(r.Context(), c); err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.Metrics != nil {
		s.Metrics.contacts.Inc()
	}
	writeJSON(w, http.StatusCreated, contactResponse{ID: c.ID, Status: "success", Message: "Contact submitted successfully"})
}

// contactsResponse is the answer to GET /contacts.
type contactsResponse struct {
	Contacts []*app.Contact `json:"contacts"`
	Query    string         `json:"query"`
	Total    int            `json:"total"`
	Limit    int            `json:"limit"`
	Offset   int            `json:"offset"`
}

func (s *Server) handleContacts(w http.ResponseWriter, r *http.Request) {
	q, err := searchQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cs, total, err := s.Service.Contacts(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if cs == nil {
		cs = []*app.Contact{}
	}
	writeJSON(w, http.StatusOK, contactsResponse{Contacts: cs, Query: q.Q, Total: total, Limit: q.Limit, Offset: q.Offset})
}

// Bounds on paging parameters.
const (
	defaultLimit = 10
	maxLimit     = 100
	maxOffset    = 100_000
)

// searchQuery reads q, limit and offset from the query string.
func searchQuery(r *http.Request) (app.SearchQuery, error) {
	v := r.URL.Query()
	q := app.SearchQuery{Q: v.Get("q"), Limit: defaultLimit}
	if len(q.Q) > 1000 {
		return q, app.Errorf(app.EINVALID, "q must be at most 1000 bytes")
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return q, app.Errorf(app.EINVALID, "limit must be an integer from 1 to %d, not %q", maxLimit, s)
		}
		q.Limit = n
	}
	if s := v.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxOffset {
			return q, app.Errorf(app.EINVALID, "offset must be an integer from 0 to %d, not %q", maxOffset, s)
		}
		q.Offset = n
	}
	return q, nil
}
