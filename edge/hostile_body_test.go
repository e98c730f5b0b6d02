package edge

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// naiveUpstream answers each request it parses with its path and Cookie,
// and a POST with 401 at once, without reading its body (as servers that
// refuse before reading do) while keeping the connection: the body's bytes
// are then the start of what it reads as the next request.
func naiveUpstream(t *testing.T) string {
	addr, _ := serveRequests(t, func(c net.Conn, req *http.Request) bool {
		if req.Method == http.MethodPost {
			_, err := io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
			return err == nil
		}
		b := req.URL.Path + " " + req.Header.Get("Cookie")
		_, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
		return err == nil
	})
	return "http://" + addr
}

// A request body the upstream refused without reading must not become the
// head of the next client's request on a reused connection: an attacker's
// body ending in an unfinished header would capture the next request (its
// cookies) into a request of the attacker's choosing.
func TestHostileUpstreamUnreadBody(t *testing.T) {
	// Only with the fast path on: EDGE_FAST_HTTP1=off leaves everything to
	// http.Transport, which reuses such a connection.
	for _, mode := range []string{"fast"} {
		t.Run(mode, func(t *testing.T) {
			t.Setenv(fastHTTP1Env, mode)
			e := startEdge(t, `{ access_log: "off", routes: [ { path: /, to: "${UP}" } ] }`, map[string]string{"UP": naiveUpstream(t)})
			glue := "GET /steal HTTP/1.1\r\nX-Pad: "
			attacks := map[string]string{
				// On the fast path.
				"bare":   glue,
				"40 KiB": strings.Repeat("x", 40<<10) + "\r\n\r\n" + glue,
				// Past fastBodyMax, chunked, and with Expect: on http.Transport.
				"200 KiB": glue + strings.Repeat("x", 200<<10),
			}
			send := func(name, req string) {
				code := finalStatus(t, e.addr, req)
				if code != http.StatusUnauthorized {
					t.Fatalf("%s: attacker's POST: %d, want the upstream's 401", name, code)
				}
				// The victims: a plain GET (the fast path's pool), a
				// websocket handshake and a GET with a chunked body
				// (http.Transport's).
				for _, victim := range []string{"", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "Transfer-Encoding: chunked\r\n"} {
					req := "GET /pub HTTP/1.1\r\nHost: a\r\n" + victim + "Cookie: session=victim\r\n\r\n"
					if victim != "" && strings.HasPrefix(victim, "Transfer") {
						req += "0\r\n\r\n"
					}
					code, b := rawRequest(t, e.addr, req)
					if code != http.StatusOK || !strings.HasPrefix(b, "/pub ") {
						t.Fatalf("%s: victim's GET /pub %q got %d %q, want its own answer", name, victim, code, b)
					}
				}
			}
			for name, body := range attacks {
				send(name, fmt.Sprintf("POST /pub HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
			}
			send("chunked", fmt.Sprintf("POST /pub HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(glue), glue))
			send("expect", fmt.Sprintf("POST /pub HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n%s", len(glue), glue))
		})
	}
}

// finalStatus sends request bytes on a new connection and returns the
// status of the first response that is not informational.
func finalStatus(t *testing.T, addr, request string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode >= 200 {
			return res.StatusCode
		}
	}
}
