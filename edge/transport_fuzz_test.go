package edge

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzFastUpstreamResponse feeds the fast path arbitrary upstream answers
// (status line, headers, Content-Length / Transfer-Encoding, body, surplus)
// to a first request, then sends a second one to the same upstream. The
// property: the second request gets its own response (its marker) or a
// clean error, never bytes of the first. Its seed corpus (the hostile table
// and ordinary responses) runs in `make test`; `make fuzz` explores.
func FuzzFastUpstreamResponse(f *testing.F) {
	for _, hc := range hostileCases {
		f.Add(hc.method == "HEAD", []byte(hc.resp))
	}
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nown:",
	} {
		f.Add(false, []byte(s))
		f.Add(true, []byte(s))
	}

	var (
		mu   sync.Mutex
		cur  []byte
		iter atomic.Int64
	)
	addr, _ := serveRequests(f, func(c net.Conn, req *http.Request) bool {
		if req.URL.Path == "/first" {
			mu.Lock()
			data := cur
			mu.Unlock()
			_, err := c.Write(data)
			return err == nil
		}
		own := "own:" + req.URL.Query().Get("m")
		_, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(own), own)
		return err == nil
	})
	base := "http://" + addr

	f.Fuzz(func(t *testing.T, head bool, data []byte) {
		// One write of up to 16 KiB reaches the socket at once on loopback:
		// what the upstream sent past the first response is there before the
		// second request, as the property needs.
		if len(data) > 16<<10 {
			data = data[:16<<10]
		}
		mu.Lock()
		cur = data
		mu.Unlock()
		// A first response that never ends (a length not met, no length,
		// endless 1xx) is cut by these timeouts, which close its connection.
		ft := testFast(4, 50*time.Millisecond)
		defer ft.closeIdle()
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, method, base+"/first", nil)
		if res, err := ft.RoundTrip(req); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		cancel()

		m := fmt.Sprint(iter.Add(1))
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/second?m="+m, nil)
		res, err := ft.RoundTrip(req)
		if err != nil {
			return // a clean error
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return
		}
		if res.StatusCode != http.StatusOK || string(b) != "own:"+m {
			t.Fatalf("after %q, the next request got %d %q, want own:%s", data, res.StatusCode, b, m)
		}
		if strings.Contains(string(b), "SECRET") {
			t.Fatalf("the next request got the first's surplus")
		}
	})
}
