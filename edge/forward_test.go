package edge

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
)

// rawEchoUpstream records the head of each request it reads and answers
// with the canned raw response named by the request's path.
type rawEchoUpstream struct {
	l    net.Listener
	mu   sync.Mutex
	last string // the last request head, normalized
}

// leanResponses are the raw upstream answers, by path: what the lean path
// must hand on exactly as ReverseProxy does.
var leanResponses = map[string]string{
	"/plain": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\n" +
		"Keep-Alive: timeout=5\r\nX-Multi: a\r\nX-Multi: b\r\nContent-Type: text/plain\r\n\r\nok",
	"/hints": "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	// The streamed answers name their type: ReverseProxy flushes their
	// headers from a timer goroutine, racing net/http's sniffing.
	"/trailers": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
		"5\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n",
	"/undeclared-trailer": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"2\r\nhi\r\n0\r\nX-Late: yes\r\n\r\n",
	"/sse":  "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nContent-Length: 9\r\n\r\ndata: 1\n\n",
	"/204":  "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
	"/304":  "HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n",
	"/101":  "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
	"/cut":  "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	"/bad":  "HTTP/1.1 2OO OK\r\n\r\n",
	"/head": "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
}

func newRawEchoUpstream(t *testing.T) *rawEchoUpstream {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawEchoUpstream{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go u.conn(c)
		}
	}()
	return u
}

func (u *rawEchoUpstream) conn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		var keys []string
		for k, vv := range req.Header {
			keys = append(keys, k+": "+strings.Join(vv, " | "))
		}
		sort.Strings(keys)
		u.mu.Lock()
		u.last = fmt.Sprintf("%s %s host=%s\n%s", req.Method, req.RequestURI, req.Host, strings.Join(keys, "\n"))
		u.mu.Unlock()
		res, ok := leanResponses[req.URL.Path]
		if !ok {
			res = leanResponses["/plain"]
		}
		if _, err := io.WriteString(c, res); err != nil {
			return
		}
		if req.URL.Path == "/cut" || req.URL.Path == "/bad" || req.URL.Path == "/101" {
			return
		}
	}
}

func (u *rawEchoUpstream) seen() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.last
	u.last = ""
	return s
}

// leanCase is one request of the differential test.
type leanCase struct {
	method, path string
	headers      []string
}

var leanCases = []leanCase{
	{"GET", "/plain", nil},
	{"GET", "/plain?a=1;b=2&c=%zz", nil},
	{"GET", "/plain", []string{"Connection: X-Drop, keep-alive", "X-Drop: 1", "Te: trailers", "Keep-Alive: 5",
		"X-Forwarded-For: 6.6.6.6", "X-Forwarded-Host: evil", "X-Forwarded-Proto: https", "Forwarded: for=6.6.6.6",
		"Proxy-Authorization: Basic eA==", "Authorization: Basic eDp5", "X-Multi: 1", "X-Multi: 2"}},
	{"GET", "/plain", []string{"User-Agent: "}},
	{"HEAD", "/head", nil},
	{"OPTIONS", "/plain", nil},
	{"DELETE", "/plain", nil},
	{"GET", "/hints", nil},
	{"GET", "/trailers", nil},
	{"GET", "/undeclared-trailer", nil},
	{"GET", "/sse", nil},
	{"GET", "/204", nil},
	{"GET", "/304", []string{"If-None-Match: \"x\""}},
	{"GET", "/101", nil},
	{"GET", "/cut", nil},
	{"GET", "/bad", nil},
}

// leanOutcome is what one request showed: at the upstream and at the client.
type leanOutcome struct {
	Upstream string
	Status   int
	Header   http.Header
	Body     string
	Trailer  http.Header
	Info     []string // 1xx responses
	Err      string
}

func runLeanCases(t *testing.T, fast string) []leanOutcome {
	t.Setenv(fastHTTP1Env, fast)
	up := newRawEchoUpstream(t)
	e := startEdge(t, `routes: [ { path: /, to: "${UP}" } ]`, map[string]string{"UP": "http://" + up.l.Addr().String()})
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	var out []leanOutcome
	for _, c := range leanCases {
		var info []string
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			info = append(info, fmt.Sprint(code, " ", h))
			return nil
		}}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), c.method, e.url+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Request-Id", "fixed-id")
		for _, h := range c.headers {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Add(k, strings.TrimSpace(v))
		}
		o := leanOutcome{}
		res, err := tr.RoundTrip(req)
		if err != nil {
			o.Err = err.Error()
		} else {
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				o.Err = "body: " + err.Error()
			}
			res.Header.Del("Date")
			o.Status, o.Header, o.Body, o.Trailer = res.StatusCode, res.Header, string(b), res.Trailer
		}
		o.Info = info
		// The edge's address differs between the two runs.
		o.Upstream = strings.ReplaceAll(up.seen(), e.addr, "EDGE")
		out = append(out, o)
	}
	return out
}

// TestLeanPathMatchesReverseProxy sends the same requests through the lean
// path (EDGE_FAST_HTTP1 on) and through ReverseProxy on Go's http.Transport
// (off), and requires that the upstream and the client see the same thing:
// hop-by-hop and forwarding headers, query cleaning, User-Agent, Te,
// 1xx, trailers, bodiless statuses, refused upgrades and upstream errors.
func TestLeanPathMatchesReverseProxy(t *testing.T) {
	var lean, ref []leanOutcome
	t.Run("lean", func(t *testing.T) { lean = runLeanCases(t, "on") })
	t.Run("reverseproxy", func(t *testing.T) { ref = runLeanCases(t, "off") })
	if len(lean) != len(leanCases) || len(ref) != len(leanCases) {
		t.Fatalf("ran %d and %d of %d cases", len(lean), len(ref), len(leanCases))
	}
	for i, c := range leanCases {
		if !reflect.DeepEqual(lean[i], ref[i]) {
			t.Errorf("%s %s %q:\nlean:         %+v\nreverseproxy: %+v", c.method, c.path, c.headers, lean[i], ref[i])
		}
	}
	// The cases must exercise what they claim.
	if !strings.Contains(lean[0].Upstream, "X-Forwarded-For: 127.0.0.1") || strings.Contains(lean[2].Upstream, "X-Drop") ||
		strings.Contains(lean[2].Upstream, "Forwarded: for") || !strings.Contains(lean[2].Upstream, "Te: trailers") {
		t.Errorf("upstream saw:\n%s\n--\n%s", lean[0].Upstream, lean[2].Upstream)
	}
	if len(lean[7].Info) != 1 || lean[8].Trailer.Get("X-Sum") != "5" || lean[0].Header.Get("X-Hop") != "" {
		t.Errorf("hints %q, trailer %q, hop header %q", lean[7].Info, lean[8].Trailer, lean[0].Header.Get("X-Hop"))
	}
}

// TestLeanPathTaken checks that the benchmark's request takes the lean path
// (no ReverseProxy): its allocations are the figure the path exists for.
func TestLeanPathTaken(t *testing.T) {
	t.Setenv(fastHTTP1Env, "on")
	up := newRawEchoUpstream(t)
	e := startEdge(t, `routes: [ { path: /, to: "${UP}" } ]`, map[string]string{"UP": "http://" + up.l.Addr().String()})
	rt := e.cur.Load().lookup("127.0.0.1", "/plain")
	if rt == nil || rt.fast == nil {
		t.Fatal("route has no lean path")
	}
	t.Setenv(leanForwardEnv, "off")
	off := startEdge(t, `routes: [ { path: /, to: "${UP}" } ]`, map[string]string{"UP": "http://" + up.l.Addr().String()})
	if rt := off.cur.Load().lookup("127.0.0.1", "/plain"); rt == nil || rt.fast != nil {
		t.Errorf("%s=off: the route still has a lean path", leanForwardEnv)
	}
	req, _ := http.NewRequest("GET", "/plain", nil)
	if !leanRequest(req) {
		t.Error("a GET without a body is not lean")
	}
	for _, mod := range []func(*http.Request){
		func(r *http.Request) { r.Header.Set("Upgrade", "websocket") },
		func(r *http.Request) { r.Body, r.ContentLength = io.NopCloser(strings.NewReader("x")), 1 },
		func(r *http.Request) { r.TransferEncoding = []string{"chunked"} },
	} {
		r := req.Clone(t.Context())
		mod(r)
		if leanRequest(r) {
			t.Errorf("%+v: lean, want ReverseProxy", r)
		}
	}
}
