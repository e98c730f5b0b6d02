package http

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"selfhost.dev/edgeapp/app"
)

// retryAfterSeconds is the Retry-After sent with 503: long enough for a
// restarting backend, short enough that a client does not give up.
const retryAfterSeconds = 5

// statusClientClosed is nginx's 499: the client closed the connection
// before the answer was ready.
const statusClientClosed = 499

// errorStatus maps an error to its HTTP status. It is the only place that
// does: handlers return domain errors and never pick a status themselves.
func errorStatus(err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
	switch app.ErrorCode(err) {
	case app.EINVALID:
		return http.StatusBadRequest
	case app.EVALIDATION:
		return http.StatusUnprocessableEntity
	case app.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case app.ENOTFOUND:
		return http.StatusNotFound
	case app.ECONFLICT:
		return http.StatusConflict
	case app.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case app.EUNSUPPORTED:
		return http.StatusUnsupportedMediaType
	case app.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// errorBody is every error response: {"error": "..."}, plus the per-field
// problems of a validation failure.
type errorBody struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}

// writeError answers with err's status and user-facing message. Causes are
// logged, never shown: a 500 says only "internal error".
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away: nobody reads the answer, and it is not
		// our failure. 499 is what the request log line will say.
		w.WriteHeader(statusClientClosed)
		return
	}
	status := errorStatus(err)
	msg := app.ErrorMessage(err)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		msg = "request body is larger than the limit of " + strconv.FormatInt(mbe.Limit, 10) + " bytes"
	}
	switch {
	case status >= 500:
		s.logger().LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("request_id", RequestID(r.Context())), slog.Int("status", status), slog.Any("error", err))
	case app.ErrorCode(err) == app.EINVALID && errors.Unwrap(err) != nil:
		s.logger().LogAttrs(r.Context(), slog.LevelInfo, "bad request",
			slog.String("request_id", RequestID(r.Context())), slog.Any("error", err))
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	writeJSON(w, status, errorBody{Error: msg, Fields: app.ErrorFields(err)})
}
