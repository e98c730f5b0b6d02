package http_test

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

// TestLingerIsBounded: a refused upload whose client stops sending gets
// its answer at once, and the connection is closed once LingerTime has
// passed: the lingering read cannot hold a connection for ever.
func TestLingerIsBounded(t *testing.T) {
	e := newEnv(t)
	e.api.LingerTime = 300 * time.Millisecond
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	// No API key: refused on the headers, with 1 KiB of a 10 MB body sent.
	fmt.Fprintf(conn, "POST /documents/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000\r\n\r\n%s", strings.Repeat("x", 1024))
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer while the client stalls: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", res.StatusCode)
	}
	// The server gives up on the rest of the body and closes.
	start := time.Now()
	if _, err := io.Copy(io.Discard, br); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("waiting for the close: %v", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("connection held %v after the answer, want about LingerTime (300ms)", waited)
	}
}
