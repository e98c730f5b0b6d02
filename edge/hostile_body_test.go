package edge

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// naiveUpstream answers each request it parses with its path and Cookie,
// and a POST with 401 at once, without reading its body (as servers that
// refuse before reading do) while keeping the connection: the body's bytes
// are then the start of what it reads as the next request.
func naiveUpstream(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.Method == http.MethodPost {
						io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
						continue
					}
					b := req.URL.Path + " " + req.Header.Get("Cookie")
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
				}
			}()
		}
	}()
	return "http://" + l.Addr().String()
}

// A request body the upstream refused without reading must not become the
// head of the next client's request on a reused connection: an attacker's
// body ending in an unfinished header would capture the next request (its
// cookies) into a request of the attacker's choosing.
func TestHostileUpstreamUnreadBody(t *testing.T) {
	// Only the fast path: http.Transport (EDGE_FAST_HTTP1=off, and bodies
	// the fast path does not take) reuses such a connection, and asking it
	// for Connection: close on every body turned some of its forwarded
	// early answers (refusal_test.go) into 502s.
	for _, mode := range []string{"fast"} {
		t.Run(mode, func(t *testing.T) {
			t.Setenv(fastHTTP1Env, mode)
			e := startEdge(t, `{ access_log: "off", routes: [ { path: /, to: "${UP}" } ] }`, map[string]string{"UP": naiveUpstream(t)})
			for _, body := range []string{"GET /steal HTTP/1.1\r\nX-Pad: ", strings.Repeat("x", 40<<10) + "\r\n\r\nGET /steal HTTP/1.1\r\nX-Pad: "} {
				code, _ := rawRequest(t, e.addr, fmt.Sprintf("POST /pub HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
				if code != http.StatusUnauthorized {
					t.Fatalf("attacker's POST: %d, want the upstream's 401", code)
				}
				code, b := rawRequest(t, e.addr, "GET /pub HTTP/1.1\r\nHost: a\r\nCookie: session=victim\r\n\r\n")
				if code != http.StatusOK || !strings.HasPrefix(b, "/pub ") {
					t.Fatalf("victim's GET /pub got %d %q, want its own answer", code, b)
				}
			}
		})
	}
}
