package edge

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync/atomic"
)

// maxRequestIDLen bounds a reused request ID; longer ones are replaced.
const maxRequestIDLen = 128

// requestIDs makes request IDs: a random per-process prefix and a counter.
// They only need to be unique, not secret, and this costs no syscall.
type requestIDs struct {
	prefix [12]byte
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var g requestIDs
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	hex.Encode(g.prefix[:], b[:])
	return &g
}

func (g *requestIDs) next() string {
	var buf [32]byte
	b := append(buf[:0], g.prefix[:]...)
	b = append(b, '-')
	b = strconv.AppendUint(b, g.n.Add(1), 36)
	return string(b)
}

// requestID returns the well-formed X-Request-ID or X-Correlation-ID of r,
// or a new one, and records it in r's X-Request-ID for the upstream.
func (g *requestIDs) requestID(r *http.Request) string {
	if v := r.Header["X-Request-Id"]; len(v) == 1 && validRequestID(v[0]) {
		return v[0]
	}
	id := ""
	if v := r.Header["X-Correlation-Id"]; len(v) == 1 && validRequestID(v[0]) {
		id = v[0]
	} else {
		id = g.next()
	}
	r.Header["X-Request-Id"] = []string{id}
	return id
}

// validRequestID accepts what request IDs are made of in practice (UUIDs,
// hex, base64, Cloudflare rays) and nothing that could break a log line.
func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '/' || c == '=' {
			continue
		}
		return false
	}
	return true
}
