package edge

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func TestPickEncoding(t *testing.T) {
	prefs := []string{"zstd", "gzip"}
	for _, c := range []struct {
		accept string
		want   string
	}{
		{"", ""},
		{"gzip", "gzip"},
		{"zstd", "zstd"},
		{"gzip, zstd", "zstd"},           // equal q: the edge's order
		{"gzip;q=1, zstd;q=0.5", "gzip"}, // q honoured
		{"zstd;q=0, gzip", "gzip"},
		{"zstd;q=0, gzip;q=0", ""},
		{"identity", ""},
		{"*", "zstd"},
		{"*;q=0.1, gzip;q=0.5", "gzip"},
		{"*, zstd;q=0", "gzip"},
		{"br", ""},
		{"GZIP", "gzip"},
		{"gzip;q=abc", ""}, // malformed q: not clearly asked for
		{"gzip;q=2", ""},
		{" gzip ; q=0.8 ", "gzip"},
		// q is a qvalue (RFC 9110 12.4.2), not any float ParseFloat takes.
		{"gzip;q=NaN", ""},
		{"gzip;q=Inf", ""},
		{"gzip;q=+Inf", ""},
		{"gzip;q=0x1p-1", ""},
		{"gzip;q=1e-1", ""},
		{"gzip;q=-0", ""},
		{"gzip;q=.5", ""},
		{"gzip;q=", ""},
		{"gzip;q=0.001", "gzip"},
		{"gzip;q=1.000", "gzip"},
		{"gzip;q=0.5, zstd;q=0.25", "gzip"},
		{"gzip;Q=0.5", "gzip"},
		{"x-gzip", "gzip"}, // RFC 9110 8.4.1.3: the same as gzip
		{"x-gzip;q=0, gzip", "gzip"},
		{",,gzip,,", "gzip"},
		// A client that rates identity above every encoding gets identity.
		{"identity;q=1, gzip;q=0.5", ""},
		{"gzip;q=0.5, identity", ""},
		{"gzip, identity;q=0.5", "gzip"},
		{"identity, gzip", "gzip"}, // equal: the smaller body
		{"*;q=0.5, identity;q=0.9", ""},
		{"zstd;q=0;foo=bar, gzip;level=1", "gzip"},
	} {
		var accept []string
		if c.accept != "" {
			accept = []string{c.accept}
		}
		if got := pickEncoding(accept, prefs); got != c.want {
			t.Errorf("Accept-Encoding %q: got %q, want %q", c.accept, got, c.want)
		}
	}
	if got := pickEncoding([]string{"gzip, zstd"}, []string{"gzip"}); got != "gzip" {
		t.Errorf("route allowing gzip only: got %q", got)
	}
}

// encodeUpstream answers /r?type=&size=&status=&h=Name:Value with a body of
// size bytes of JSON-ish text.
func encodeUpstream(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		size, _ := strconv.Atoi(q.Get("size"))
		if ct := q.Get("type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		} else {
			w.Header()["Content-Type"] = nil // no sniffing: no type at all
		}
		for _, h := range q["h"] {
			k, v, _ := strings.Cut(h, ":")
			w.Header().Add(k, v)
		}
		b := testPayload(size)
		if q.Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		}
		status := http.StatusOK
		if s := q.Get("status"); s != "" {
			status, _ = strconv.Atoi(s)
		}
		w.WriteHeader(status)
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func testPayload(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString(`{"id":` + strconv.Itoa(i) + `,"name":"document number ` + strconv.Itoa(i) + `","type":"invoice"},`)
	}
	return b.Bytes()[:n]
}

func decode(t testing.TB, enc string, b []byte) []byte {
	t.Helper()
	switch enc {
	case "":
		return b
	case "gzip":
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("gunzip: %v", err)
		}
		return out
	case "zstd":
		r, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		out, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("unzstd: %v", err)
		}
		return out
	}
	t.Fatalf("unknown encoding %q", enc)
	return nil
}

func TestEncode(t *testing.T) {
	up := encodeUpstream(t)
	e := startEdge(t, `
encode: [zstd, gzip]
routes:
  - { path: /plain, to: "${UP}", encode: [] }
  - { path: /gz, to: "${UP}", encode: [gzip], strip_prefix: true }
  - { path: /, to: "${UP}" }
`, map[string]string{"UP": up.URL})
	for _, c := range []struct {
		name, path, accept, method string
		want                       string // expected Content-Encoding
		vary                       bool
	}{
		{"json zstd", "/r?type=application/json&size=4000", "zstd, gzip", "", "zstd", true},
		{"json gzip only", "/r?type=application/json&size=4000", "gzip", "", "gzip", true},
		{"q prefers gzip", "/r?type=application/json&size=4000", "zstd;q=0.5, gzip", "", "gzip", true},
		{"no accept", "/r?type=application/json&size=4000", "", "", "", true},
		{"identity only", "/r?type=application/json&size=4000", "identity", "", "", true},
		{"html", "/r?type=text/html%3B+charset=utf-8&size=4000", "gzip", "", "gzip", true},
		{"js", "/r?type=text/javascript&size=4000", "zstd", "", "zstd", true},
		{"svg", "/r?type=image/svg%2Bxml&size=4000", "zstd", "", "zstd", true},
		{"chunked unknown length", "/r?type=text/plain&size=4000&chunked=1", "gzip", "", "gzip", true},
		{"small", "/r?type=application/json&size=100", "gzip", "", "", false},
		{"image", "/r?type=image/png&size=4000", "gzip", "", "", false},
		{"no type", "/r?size=4000&h=X-Content-Type-Options:nosniff", "gzip", "", "", false},
		{"already encoded", "/r?type=text/plain&size=4000&h=Content-Encoding:br", "gzip", "", "br", false},
		{"no-transform", "/r?type=text/plain&size=4000&h=Cache-Control:public,+no-transform", "gzip", "", "", false},
		{"event stream", "/r?type=text/event-stream&size=4000", "gzip", "", "", false},
		{"partial", "/r?type=text/plain&size=4000&status=206&h=Content-Range:bytes+0-3999/9000", "gzip", "", "", false},
		{"head: the GET's headers", "/r?type=text/plain&size=4000", "gzip", "HEAD", "gzip", true},
		{"no content", "/r?type=text/plain&size=0&status=204", "gzip", "", "", false},
		{"route off", "/plain/r?type=application/json&size=4000", "gzip", "", "", false},
		{"route gzip only", "/gz/r?type=application/json&size=4000", "zstd, gzip", "", "gzip", true},
		{"route gzip only, zstd client", "/gz/r?type=application/json&size=4000", "zstd", "", "", true},
		{"upstream error page", "/r?type=text/html&size=4000&status=503", "gzip", "", "gzip", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			method := c.method
			if method == "" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, e.url+c.path, nil)
			if c.accept != "" {
				req.Header.Set("Accept-Encoding", c.accept)
			}
			tr := &http.Transport{DisableCompression: true}
			defer tr.CloseIdleConnections()
			res, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Header.Get("Content-Encoding"); got != c.want {
				t.Fatalf("Content-Encoding %q, want %q", got, c.want)
			}
			if got := strings.Contains(strings.Join(res.Header["Vary"], ","), "Accept-Encoding"); got != c.vary {
				t.Errorf("Vary %q, want Accept-Encoding: %v", res.Header["Vary"], c.vary)
			}
			if method == http.MethodHead || res.StatusCode == http.StatusNoContent {
				return
			}
			size, _ := strconv.Atoi(req.URL.Query().Get("size"))
			plain := b
			if c.want == "gzip" || c.want == "zstd" {
				if res.Header.Get("Content-Length") != "" && res.ContentLength != int64(len(b)) {
					t.Errorf("Content-Length %d for %d bytes", res.ContentLength, len(b))
				}
				if len(b) >= size {
					t.Errorf("%d bytes encoded from %d: not smaller", len(b), size)
				}
				plain = decode(t, c.want, b)
			}
			if !bytes.Equal(plain, testPayload(size)) {
				t.Errorf("body: %d bytes differ from the upstream's %d", len(plain), size)
			}
		})
	}
}

func TestEncodeHeaders(t *testing.T) {
	up := encodeUpstream(t)
	e := startEdge(t, `
encode: [gzip]
routes:
  - { path: /, to: "${UP}" }
`, map[string]string{"UP": up.URL})
	res := e.get(t, `/r?type=application/json&size=3000&h=Etag:"abc"&h=Vary:Origin&h=Accept-Ranges:bytes`, "Accept-Encoding: gzip")
	b := []byte(body(t, res))
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("not encoded: %v", res.Header)
	}
	if got := res.Header.Get("Etag"); got != `W/"abc"` {
		t.Errorf("ETag %q, want it weakened", got)
	}
	if got := strings.Join(res.Header["Vary"], ", "); got != "Origin, Accept-Encoding" {
		t.Errorf("Vary %q", got)
	}
	if res.Header.Get("Accept-Ranges") != "" {
		t.Error("Accept-Ranges kept on an encoded body")
	}
	if !bytes.Equal(decode(t, "gzip", b), testPayload(3000)) {
		t.Error("body differs")
	}
	// A weak ETag stays as it was.
	res = e.get(t, `/r?type=application/json&size=3000&h=Etag:W/"x"`, "Accept-Encoding: gzip")
	if got := res.Header.Get("Etag"); got != `W/"x"` {
		t.Errorf("weak ETag became %q", got)
	}
	// Metrics and the access log say what was done.
	if in := e.metric(t, `edge_encode_bytes_total{encoding="gzip",route="/",stage="in"}`); in < 6000 {
		t.Errorf("bytes in %v, want ≥ 6000", in)
	}
	if out := e.metric(t, `edge_encode_bytes_total{encoding="gzip",route="/",stage="out"}`); out <= 0 || out >= 6000 {
		t.Errorf("bytes out %v", out)
	}
	waitFor(t, func() bool { return strings.Contains(e.accessLg.String(), `"encoding":"gzip"`) })
}

// TestEncodeStreams checks that an encode route does not hold back a
// stream: SSE passes as it is, event by event, and a compressed stream
// is flushed piece by piece.
func TestEncodeStreams(t *testing.T) {
	next := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.URL.Query().Get("type"))
		for i := 0; i < 3; i++ {
			_, _ = io.WriteString(w, "data: event "+strconv.Itoa(i)+"\n\n")
			http.NewResponseController(w).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Second):
				return
			}
		}
	})
	srv, srv2 := httptest.NewServer(h), httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(srv2.Close)
	// A pool route too: its Transport is the pool, whose streams must
	// flush through the encoder as the single upstream's do.
	e := startEdge(t, `
encode: [zstd, gzip]
routes:
  - { path: /, to: "${UP}" }
  - { path: /pool, to: ["${UP}", "${UP2}"] }
`, map[string]string{"UP": srv.URL, "UP2": srv2.URL})
	for _, c := range []struct{ prefix, typ, enc string }{
		{"", "text/event-stream; charset=utf-8", ""},
		{"", "text/plain", "gzip"},
		{"", "text/plain", "zstd"},
		{"/pool", "text/event-stream; charset=utf-8", ""},
		{"/pool", "text/event-stream; charset=utf-8", ""},
		{"/pool", "text/plain", "gzip"},
		{"/pool", "text/plain", "zstd"},
	} {
		t.Run(c.prefix+" "+c.typ+" "+c.enc, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.url+c.prefix+"/s?type="+url.QueryEscape(c.typ), nil)
			req.Header.Set("Accept-Encoding", "gzip, zstd;q=0.9")
			if c.enc == "zstd" {
				req.Header.Set("Accept-Encoding", "zstd")
			}
			tr := &http.Transport{DisableCompression: true}
			defer tr.CloseIdleConnections()
			res, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if got := res.Header.Get("Content-Encoding"); got != c.enc {
				t.Fatalf("Content-Encoding %q, want %q", got, c.enc)
			}
			var r io.Reader = res.Body
			switch c.enc {
			case "gzip":
				zr, err := gzip.NewReader(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				r = zr
			case "zstd":
				zr, err := zstd.NewReader(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				r = zr
			}
			br := bufio.NewReader(r)
			for i := 0; i < 3; i++ {
				// Each event must arrive before the upstream is told to
				// send the next: nothing is buffered until the end.
				done := make(chan string, 1)
				go func() {
					line, _ := br.ReadString('\n')
					_, _ = br.ReadString('\n')
					done <- line
				}()
				select {
				case line := <-done:
					if want := "data: event " + strconv.Itoa(i) + "\n"; line != want {
						t.Fatalf("got %q, want %q", line, want)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("event %d held back", i)
				}
				next <- struct{}{}
			}
		})
	}
}

// BenchmarkEncodeWriter measures compressing a 100 KiB JSON answer through
// the encode writer: CPU and allocations per response, and the ratio.
func BenchmarkEncodeWriter(b *testing.B) {
	payload := testPayload(100 << 10)
	for _, enc := range []string{"gzip", "zstd"} {
		b.Run(enc, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			var out int64
			for b.Loop() {
				rec := httptest.NewRecorder()
				rec.Header().Set("Content-Type", "application/json")
				ew := &encodeWriter{w: rec, enc: enc, method: http.MethodGet}
				ew.WriteHeader(http.StatusOK)
				for p := payload; len(p) > 0; {
					n := min(len(p), 32<<10)
					_, _ = ew.Write(p[:n])
					p = p[n:]
				}
				_, _, out = ew.close()
			}
			b.ReportMetric(float64(out)/float64(len(payload)), "ratio")
		})
	}
}

// TestEncodeHeadAnd304 checks that a HEAD and a 304 carry the headers the
// GET would have: a cache that stores the compressed GET must not see its
// Vary or its weak ETag change on a HEAD or on revalidation.
func TestEncodeHeadAnd304(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Etag", `"v1"`)
		w.Header().Set("Content-Type", "application/json")
		if inm := r.Header.Get("If-None-Match"); inm == `"v1"` || inm == `W/"v1"` {
			w.WriteHeader(http.StatusNotModified) // weak comparison, as RFC 9110 13.1.2
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(testPayload(3000)))
	}))
	t.Cleanup(up.Close)
	e := startEdge(t, `
encode: [gzip]
routes:
  - { path: /, to: "${UP}" }
`, map[string]string{"UP": up.URL})
	get := e.get(t, "/x", "Accept-Encoding: gzip")
	_ = body(t, get)
	head := e.do(t, http.MethodHead, "/x", nil, "Accept-Encoding: gzip")
	_ = body(t, head)
	for _, k := range []string{"Content-Encoding", "Etag", "Vary"} {
		if g, h := get.Header.Get(k), head.Header.Get(k); g != h {
			t.Errorf("HEAD %s %q, GET %q", k, h, g)
		}
	}
	if cl := head.Header.Get("Content-Length"); cl == "3000" {
		t.Errorf("HEAD Content-Length %s: the identity length of a body GET sends gzipped", cl)
	}
	// Without Accept-Encoding the HEAD still varies, and keeps its length.
	head = e.do(t, http.MethodHead, "/x", nil)
	_ = body(t, head)
	if head.Header.Get("Vary") != "Accept-Encoding" || head.Header.Get("Content-Encoding") != "" || head.Header.Get("Content-Length") != "3000" {
		t.Errorf("HEAD without Accept-Encoding: %v", head.Header)
	}
	// Revalidating the compressed copy: the 304 names the ETag the client
	// holds (weak) and varies as the 200 did.
	nm := e.get(t, "/x", "Accept-Encoding: gzip", `If-None-Match: W/"v1"`)
	_ = body(t, nm)
	if nm.StatusCode != http.StatusNotModified {
		t.Fatalf("status %d", nm.StatusCode)
	}
	if got := nm.Header.Get("Etag"); got != `W/"v1"` {
		t.Errorf("304 ETag %q, want the weak one the 200 gave", got)
	}
	if got := nm.Header.Get("Vary"); got != "Accept-Encoding" {
		t.Errorf("304 Vary %q", got)
	}
	// A 304 for an uncompressed copy keeps the strong ETag.
	nm = e.get(t, "/x", `If-None-Match: "v1"`)
	_ = body(t, nm)
	if got := nm.Header.Get("Etag"); got != `"v1"` {
		t.Errorf("304 ETag %q for a client holding the identity body", got)
	}
}

// TestEncodeRequestNoTransform checks that a client's Cache-Control:
// no-transform (RFC 9111 5.2.1.6) gets the body as the upstream sent it.
func TestEncodeRequestNoTransform(t *testing.T) {
	up := encodeUpstream(t)
	e := startEdge(t, `
encode: [gzip]
routes:
  - { path: /, to: "${UP}" }
`, map[string]string{"UP": up.URL})
	res := e.get(t, "/r?type=application/json&size=3000", "Accept-Encoding: gzip", "Cache-Control: no-cache, no-transform")
	b := body(t, res)
	if res.Header.Get("Content-Encoding") != "" || len(b) != 3000 {
		t.Errorf("encoded despite the request's no-transform: %v", res.Header)
	}
}
