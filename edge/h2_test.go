package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"selfhost.dev/edgeapp/internal/testserver"
)

// h2specVersion is the h2spec the tests are written against (make tools).
const h2specVersion = "v2.2.1+incompatible"

// h2specKnown are the h2spec cases Go's HTTP/2 server fails, each with why
// it is not a hole, keyed by "section: case". Anything else failing fails
// the test.
var h2specKnown = map[string]string{
	// Go answers a request with connection-specific headers (Connection,
	// Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade) or a TE
	// other than "trailers" with 400 instead of RST_STREAM (golang/go#26321);
	// RFC 9113 8.1.1 lets a server send a response first. The handler never
	// runs, so nothing reaches an upstream (TestH2HeadersNeverReachUpstream).
	"http2/8.1.2.2: Sends a HEADERS frame that contains the connection-specific header field":                       "golang/go#26321",
	"http2/8.1.2.2: Sends a HEADERS frame that contains the TE header field with any value other than \"trailers\"": "golang/go#26321",
	// h2spec sends a 17 KB HEADERS frame assuming the 16 KiB default, but
	// Go's server advertises SETTINGS_MAX_FRAME_SIZE of 1 MiB, so the frame
	// is legal and is answered (summerwind/h2spec#102, #142).
	"http2/4.2: Sends a large size HEADERS frame that exceeds the SETTINGS_MAX_FRAME_SIZE": "summerwind/h2spec#102",
	// Go hangs up on a SETTINGS frame with a repeated identifier, on
	// purpose (net/http h2_bundle.go processSettings: "hang up on
	// suspiciously large settings frames or those with duplicate entries",
	// a hardening against settings floods). Browsers never repeat one.
	"http2/6.5.3: Sends multiple values of SETTINGS_INITIAL_WINDOW_SIZE": "Go hardening, see net/http processSettings",
}

// h2specKnownH2C are failures only the cleartext listener has.
var h2specKnownH2C = map[string]string{
	// The plain listener speaks HTTP/1.1 and prior-knowledge HTTP/2 on one
	// port: bytes that are not the HTTP/2 preface are read as HTTP/1.1 and
	// answered with 400, not a silent close. That is the price of h2c on a
	// shared port (Go's http.Server.Protocols UnencryptedHTTP2).
	"http2/3.5: Sends invalid connection preface": "h2c shares the port with HTTP/1.1",
}

type junitReport struct {
	Suites []struct {
		Cases []struct {
			Package string `xml:"package,attr"`
			Name    string `xml:"classname,attr"`
			Error   *struct {
				Text string `xml:",chardata"`
			} `xml:"error"`
			Failure *struct {
				Text string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// runH2Spec runs h2spec's whole suite against addr and fails t for every
// failing case not in known.
func runH2Spec(t *testing.T, addr string, useTLS bool, known ...map[string]string) {
	t.Helper()
	bin, err := exec.LookPath("h2spec")
	if err != nil {
		bin = filepath.Join(os.Getenv("HOME"), "go", "bin", "h2spec")
		if gp := os.Getenv("GOPATH"); gp != "" {
			bin = filepath.Join(gp, "bin", "h2spec")
		}
		if _, err := os.Stat(bin); err != nil {
			testserver.Skip(t, "h2spec not installed: go install github.com/summerwind/h2spec/cmd/h2spec@%s (or make tools)", h2specVersion)
		}
	}
	host, port, _ := net.SplitHostPort(addr)
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	args := []string{"-h", host, "-p", port, "-o", "2", "-j", report}
	if useTLS {
		args = append(args, "-t", "-k")
	}
	out, _ := exec.Command(bin, args...).CombinedOutput() // exits 1 on any failure
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("h2spec wrote no report: %v\n%s", err, out)
	}
	var r junitReport
	if err := xml.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	total, passed := 0, 0
	for _, s := range r.Suites {
		for _, c := range s.Cases {
			total++
			if c.Error == nil && c.Failure == nil {
				passed++
				continue
			}
			key := c.Package + ": " + c.Name
			why := ""
			for _, k := range known {
				if w, ok := k[key]; ok {
					why = w
				}
			}
			if why == "" {
				text := ""
				if c.Error != nil {
					text = c.Error.Text
				} else {
					text = c.Failure.Text
				}
				t.Errorf("h2spec %s failed:\n%s", key, text)
			} else {
				t.Logf("h2spec %s: known failure (%s)", key, why)
			}
		}
	}
	if total < 140 {
		t.Fatalf("h2spec ran %d cases, want the whole suite (145):\n%s", total, out)
	}
	t.Logf("h2spec: %d cases, %d passed", total, passed)
}

// h2specYAML routes everything to an upstream that reads request bodies
// (so content-length mismatches are seen) and answers small.
const h2specYAML = `
h2c: true
access_log: "off"
routes:
  - { path: /, to: "${UP}" }
`

// The plain listener with h2c: true passes h2spec's whole suite but for
// the failures explained above.
func TestH2SpecH2C(t *testing.T) {
	if testing.Short() {
		t.Skip("runs h2spec, about 15 s")
	}
	up := newUpstream(t)
	e := startEdge(t, h2specYAML, map[string]string{"UP": up.URL})
	runH2Spec(t, e.addr, false, h2specKnown, h2specKnownH2C)
}

// h2Request sends one HEADERS frame with the given fields (pseudo-headers
// first) on a new prior-knowledge HTTP/2 connection to addr, and returns
// the response status, or 0 when the stream or connection was reset.
func h2Request(t *testing.T, conn net.Conn, fields [][2]string) int {
	t.Helper()
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range fields {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return 0 // connection closed
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			hs, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hs {
				if h.Name == ":status" {
					n, _ := strconv.Atoi(h.Value)
					return n
				}
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			return 0
		}
	}
}

// An HTTP/2 request carrying what would split or reframe an HTTP/1.1
// request upstream (Transfer-Encoding, Connection and its friends, CR/LF
// or NUL in a value, an Upgrade) is refused at the edge and never reaches
// the upstream; the plain request next to it does.
func TestH2HeadersNeverReachUpstream(t *testing.T) {
	var mu sync.Mutex
	var got []string // the raw header lines the upstream received, per request
	up := &upstream{}
	up.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up.hits.Add(1)
		var b strings.Builder
		_ = r.Header.Write(&b)
		mu.Lock()
		got = append(got, b.String())
		mu.Unlock()
	}))
	t.Cleanup(up.Close)
	e := startEdge(t, h2specYAML, map[string]string{"UP": up.URL})
	base := [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "edge.test"}, {":path", "/x"}}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if got := h2Request(t, dial(), base); got != 200 || up.hits.Load() != 1 {
		t.Fatalf("plain h2c request: status %d, upstream hits %d", got, up.hits.Load())
	}
	for _, bad := range [][2]string{
		{"transfer-encoding", "chunked"},
		{"connection", "close"},
		{"keep-alive", "timeout=5"},
		{"proxy-connection", "keep-alive"},
		{"upgrade", "websocket"},
		{"te", "gzip"},
		{"x-smuggle", "a\r\nTransfer-Encoding: chunked"},
		{"x-smuggle", "a\nContent-Length: 5"},
		{"x-smuggle", "a\rb"},
		{"x-nul", "a\x00b"},
	} {
		got := h2Request(t, dial(), append(append([][2]string{}, base...), bad))
		if got != 0 && got != http.StatusBadRequest {
			t.Errorf("%s: %q: status %d, want 400 or a reset", bad[0], bad[1], got)
		}
	}
	if n := up.hits.Load(); n != 1 {
		t.Errorf("upstream received %d requests, want only the plain one", n)
	}
	// A malformed Content-Length on a request without a body is let through
	// by Go's HTTP/2 server, but the header is never forwarded: both
	// forwarding paths write the length of the body they send.
	for _, cl := range []string{"5, 6", "5", "-1"} {
		if st := h2Request(t, dial(), append(append([][2]string{}, base...), [2]string{"content-length", cl})); st != 0 && st != 200 && st != 400 {
			t.Errorf("content-length %q: status %d", cl, st)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range got {
		for _, bad := range []string{"Content-Length: 5", "Content-Length: -1", "Transfer-Encoding", "Connection:", "Upgrade", "Keep-Alive", "X-Smuggle", "X-Nul"} {
			if strings.Contains(h, bad) {
				t.Errorf("upstream received %q in:\n%s", bad, h)
			}
		}
	}
}

// Over HTTP/2 (h2c here; the TLS port runs the same server code) streams
// behave as on HTTP/1.1: an SSE event arrives before the upstream writes
// the next, a body streams to the upstream as it is sent, trailers and
// 103 Early Hints come through; and an HTTP/2 connection idle for longer
// than the plain port's park time (memory.go) keeps working.
func TestH2CStreams(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
			_, _ = io.WriteString(w, "data: 1\n\n")
			http.NewResponseController(w).Flush()
			<-release
			_, _ = io.WriteString(w, "data: 2\n\n")
		case "/upload":
			// Answer after the first chunk: the rest is still being sent.
			// (An HTTP/1.1 server answers while reading only when told to.)
			_ = http.NewResponseController(w).EnableFullDuplex()
			buf := make([]byte, 5)
			n, _ := io.ReadFull(r.Body, buf)
			_, _ = w.Write(buf[:n])
			http.NewResponseController(w).Flush()
			rest, _ := io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, " "+strconv.FormatInt(rest, 10))
		case "/trailer":
			w.Header().Set("Trailer", "X-Checksum")
			_, _ = io.WriteString(w, "body")
			w.Header().Set("X-Checksum", "abc")
		case "/hints":
			w.Header().Set("Link", "</style.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			_, _ = io.WriteString(w, "after hints")
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(up.Close)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // runs before up.Close
	e := startEdge(t, h2specYAML, map[string]string{"UP": up.URL})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()

	res, err := client.Get(e.url + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	if res.ProtoMajor != 2 {
		t.Fatalf("proto %s", res.Proto)
	}
	br := bufio.NewReader(res.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "data: 1\n" {
		t.Fatalf("first event before the second was written: %q %v", line, err)
	}
	once.Do(func() { close(release) })
	rest, _ := io.ReadAll(br)
	res.Body.Close()
	if string(rest) != "\ndata: 2\n\n" {
		t.Errorf("rest of stream %q", rest)
	}

	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, e.url+"/upload", pr)
	done := make(chan *http.Response, 1)
	go func() {
		res, err := client.Do(req)
		if err != nil {
			t.Error(err)
			close(done)
			return
		}
		done <- res
	}()
	_, _ = io.WriteString(pw, "first")
	var res2 *http.Response
	select {
	case res2 = <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("no response while the upload is still open: the body was buffered")
	}
	if res2 == nil {
		return
	}
	first := make([]byte, 5)
	if _, err := io.ReadFull(res2.Body, first); err != nil || string(first) != "first" {
		t.Fatalf("echo of the first chunk: %q %v", first, err)
	}
	_, _ = io.WriteString(pw, strings.Repeat("x", 1000))
	pw.Close()
	tail, _ := io.ReadAll(res2.Body)
	res2.Body.Close()
	if string(tail) != " 1000" {
		t.Errorf("upload tail %q", tail)
	}

	res, err = client.Get(e.url + "/trailer")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "body" || res.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("trailer: body %q, trailer %v", b, res.Trailer)
	}

	var hints []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, strconv.Itoa(code)+" "+h.Get("Link"))
			return nil
		},
	})
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/hints", nil)
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if len(hints) != 1 || hints[0] != "103 </style.css>; rel=preload; as=style" || res.StatusCode != 200 {
		t.Errorf("early hints %q, status %d", hints, res.StatusCode)
	}

	// Longer than parkAfter: a parked HTTP/1.1 connection would be handed
	// back to net/http as a new one, which would break an HTTP/2 stream.
	time.Sleep(parkAfter + 300*time.Millisecond)
	res, err = client.Get(e.url + "/")
	if err != nil {
		t.Fatalf("request on the idle h2c connection: %v", err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "ok" || res.ProtoMajor != 2 {
		t.Errorf("after idle: %s %q", res.Proto, b)
	}
}

// Over HTTP/2 Basic Auth guards a route as on HTTP/1.1, and a shutdown
// lets a request in flight finish (net/http sends GOAWAY, so the client
// opens no new stream on that connection).
func TestH2CAuthAndShutdown(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var once sync.Once
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "done")
	}))
	t.Cleanup(up.Close)
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	e := startEdge(t, `
h2c: true
access_log: "off"
users:
  admins: [ { user: admin, hash: "${HASH}" } ]
routes:
  - { path: /admin, to: "${UP}", auth: admins }
  - { path: /, to: "${UP}" }
`, map[string]string{"UP": up.URL})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()

	req, _ := http.NewRequest(http.MethodGet, e.url+"/admin/x", nil)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || res.ProtoMajor != 2 || res.Header.Get("Www-Authenticate") == "" {
		t.Errorf("no credentials: %s %d", res.Proto, res.StatusCode)
	}
	req.SetBasicAuth(testUser, testPassword)
	if res, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("with credentials: %d", res.StatusCode)
	}

	done := make(chan string, 1)
	go func() {
		res, err := client.Get(e.url + "/slow")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		done <- string(b)
	}()
	<-entered
	stopped := make(chan struct{})
	go func() { e.shutdown(t); close(stopped) }()
	time.Sleep(100 * time.Millisecond) // the GOAWAY goes out
	once.Do(func() { close(release) })
	if got := <-done; got != "done" {
		t.Errorf("request in flight during shutdown: %q", got)
	}
	<-stopped
}
