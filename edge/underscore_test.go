package edge

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A copy_headers name the operator wrote with '_' is the edge's own header:
// the underscore filter, which is about what clients send, must not drop it
// after forward auth set it, and must drop the client's spelling before the
// auth server or the upstream sees it.
func TestUnderscoreHeadersForwardAuthCopy(t *testing.T) {
	up := newUpstream(t)
	var authSaw http.Header
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authSaw = r.Header.Clone()
		w.Header().Set("X_Remote_User", "alice")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(auth.Close)
	e := startEdge(t, `
access_log: "off"
auth_servers:
  cgi: { url: "${AUTH}/verify", copy_headers: [X_Remote_User] }
routes:
  - { path: /, to: "${UP}", forward_auth: cgi }
`, map[string]string{"UP": up.URL, "AUTH": auth.URL})
	code, s := rawSeen(t, e.addr, "GET /x HTTP/1.1\r\nHost: a.test\r\nX_Remote_User: mallory\r\nFoo_Bar: 1\r\n\r\n")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if got := s.Header["X_remote_user"]; len(got) != 1 || got[0] != "alice" {
		t.Errorf("upstream X_Remote_User %q, want [alice] (the auth server's copy): %v", got, s.Header)
	}
	for k := range s.Header {
		if strings.EqualFold(k, "Foo_Bar") {
			t.Errorf("client header %q reached the upstream", k)
		}
	}
	for k := range authSaw {
		if strings.Contains(k, "_") {
			t.Errorf("client header %q reached the auth server", k)
		}
	}
}
