package edge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"
)

// A refusal that closes an HTTP/1.1 connection (413 over max_body, known
// or found while streaming) ends only its own stream over HTTP/2: the
// connection, and whatever else the client multiplexes on it, carries on.
// net/http turns a Connection: close answer into a GOAWAY for the whole
// connection.
func TestH2RefusalKeepsConnection(t *testing.T) {
	up := &upstream{}
	up.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			// An HTTP/1.1 upstream closing its own connection says nothing
			// about the client's.
			w.Header().Set("Connection", "close")
			w.Header().Set("Keep-Alive", "timeout=1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(up.Close)
	e := startEdge(t, `
h2c: true
access_log: "off"
routes:
  - { path: /small, to: "${UP}", max_body: 10B }
  - { path: /, to: "${UP}" }
`, map[string]string{"UP": up.URL})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	do := func(req *http.Request) (status int, reused bool) {
		t.Helper()
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req = req.WithContext(httptrace.WithClientTrace(context.Background(), trace))
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.ProtoMajor != 2 {
			t.Fatalf("proto %s", res.Proto)
		}
		return res.StatusCode, reused
	}
	get, _ := http.NewRequest(http.MethodGet, e.url+"/x", nil)
	if st, _ := do(get); st != http.StatusOK {
		t.Fatalf("first request: %d", st)
	}
	for _, path := range []string{"/close", "/small/x"} {
		req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
		if path == "/small/x" {
			req.Method = http.MethodPost
			req.Body = io.NopCloser(strings.NewReader("12345"))
			req.ContentLength = 5
		}
		do(req)
		get, _ := http.NewRequest(http.MethodGet, e.url+"/x", nil)
		if st, reused := do(get); st != http.StatusOK || !reused {
			t.Errorf("after %s: status %d, same connection %v: want 200 on the same connection", path, st, reused)
		}
	}
	for name, body := range map[string]io.Reader{
		"declared length": strings.NewReader(strings.Repeat("x", 100)),
		"streamed":        io.MultiReader(strings.NewReader(strings.Repeat("x", 100))), // no length: found while forwarding
	} {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/small", body)
		if st, _ := do(req); st != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: %d, want 413", name, st)
		}
		get, _ := http.NewRequest(http.MethodGet, e.url+"/x", nil)
		if st, reused := do(get); st != http.StatusOK || !reused {
			t.Errorf("after a 413 (%s): status %d, same connection %v: want 200 on the same connection", name, st, reused)
		}
	}
}
