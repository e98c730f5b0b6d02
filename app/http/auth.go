package http

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"selfhost.dev/edgeapp/app"
)

// apiKeyHeader carries the API key on every protected request.
const apiKeyHeader = "X-API-Key"

// keyMatches compares in constant time. Hashing first gives both sides the
// same length, so that the comparison does not leak the key's length
// either.
func keyMatches(got, want string) bool {
	if want == "" {
		return false // an unset key opens nothing
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// requireKey lets through requests whose X-API-Key is the public key or,
// since an admin may do anything the public may, the admin key.
func (s *Server) requireKey(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get(apiKeyHeader)
		switch {
		case got == "":
			s.writeError(w, r, app.Errorf(app.EUNAUTHORIZED, "missing API key: send it in the X-API-Key header"))
		case keyMatches(got, s.PublicKey) || keyMatches(got, s.AdminKey):
			next(w, r)
		default:
			s.writeError(w, r, app.Errorf(app.EUNAUTHORIZED, "invalid API key"))
		}
	}
}

// requireAdmin lets through requests whose X-API-Key is the admin key.
func (s *Server) requireAdmin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get(apiKeyHeader)
		switch {
		case got == "":
			s.writeError(w, r, app.Errorf(app.EUNAUTHORIZED, "missing admin API key: send it in the X-API-Key header"))
		case keyMatches(got, s.AdminKey):
			next(w, r)
		default:
			s.writeError(w, r, app.Errorf(app.EUNAUTHORIZED, "invalid admin API key"))
		}
	}
}
