package edge

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/fsblob"
	apphttp "selfhost.dev/edgeapp/app/http"
	"selfhost.dev/edgeapp/app/sqlite"
)

// refusalKey is the real app's API key in TestRefusedUploadArrives.
const refusalKey = "refusal-key-0123456789"

// refusalBodyLen is the size of each refused upload: large enough that the
// client is still sending when the app answers.
const refusalBodyLen = 20_000_000

// TestRefusedUploadArrives sends 20 MB uploads that the real app refuses
// early (401 without a key, 400 not multipart, 415 a PNG, 413 larger than
// the limit, found while streaming) over real sockets, straight to the app
// and through a real edge, each with and without Expect: 100-continue. Each
// of 20 refusals must arrive whole: the status and the app's JSON error,
// never a reset or a 502. With Expect, a refusal decided on the headers
// must arrive without the client sending the body.
func TestRefusedUploadArrives(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 1.6 GB over loopback")
	}
	appURL := startRefusingApp(t)
	up := strings.TrimPrefix(appURL, "http://")
	e := startEdge(t, "admin: off\naccess_log: off\nroutes:\n  - path: /\n    to: \"${APP}\"\n", map[string]string{"APP": appURL})

	png, pngType := refusalUpload(t, "a.png", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	big, bigType := refusalUpload(t, "big.txt", "plain text ")
	kinds := []struct {
		name       string
		header     string // Content-Type and key
		body       []byte
		status     int
		onHeaders  bool // refused before any body byte is read
		wantInBody string
	}{
		{"401 no key", "Content-Type: " + pngType + "\r\n", png, 401, true, "missing API key"},
		{"400 not multipart", "Content-Type: application/octet-stream\r\nX-API-Key: " + refusalKey + "\r\n", png, 400, true, "expected a multipart/form-data body"},
		{"415 png", "Content-Type: " + pngType + "\r\nX-API-Key: " + refusalKey + "\r\n", png, 415, false, "unsupported file type image/png"},
		{"413 while streaming", "Content-Type: " + bigType + "\r\nX-API-Key: " + refusalKey + "\r\n", big, 413, false, "larger than the limit"},
	}
	for _, target := range []struct{ name, addr string }{{"direct", up}, {"edge", e.addr}} {
		for _, expect := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/expect=%v", target.name, expect), func(t *testing.T) {
				for i := range 20 {
					k := kinds[i%len(kinds)]
					res, err := refusedRoundTrip(target.addr, k.header, k.body, expect)
					if err != nil {
						t.Fatalf("try %d (%s): %v", i+1, k.name, err)
					}
					if res.status != k.status || !strings.Contains(res.body, k.wantInBody) {
						t.Fatalf("try %d (%s): %d %q, want %d with %q", i+1, k.name, res.status, res.body, k.status, k.wantInBody)
					}
					if expect && k.onHeaders && res.sent > 0 {
						t.Errorf("try %d (%s): the client sent %d body bytes, want none with Expect (%s)", i+1, k.name, res.sent, res.why)
					}
				}
			})
		}
	}
}

// startRefusingApp serves the real API (SQLite, files) with an upload limit
// below refusalBodyLen, on a real socket.
func startRefusingApp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := fsblob.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	// The body is within the multipart slack of the limit, so the 413
	// comes while streaming, not from the declared length.
	svc := &app.Service{Store: db, Blobs: blobs, Index: sqlite.NewIndex(db), MaxUploadBytes: refusalBodyLen - 1<<19}
	srv := httptest.NewServer((&apphttp.Server{Service: svc, PublicKey: refusalKey}).Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// refusalUpload is a multipart body of refusalBodyLen bytes: a
// document_type field and a file starting with head, padded with spaces.
func refusalUpload(t *testing.T, filename, head string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("document_type", "report")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, filename))
	pw, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	pw.Write([]byte(head))
	const closing = 100 // room for the closing boundary
	pw.Write(bytes.Repeat([]byte(" "), refusalBodyLen-buf.Len()-closing))
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

type refusal struct {
	status int
	body   string
	sent   int // body bytes the client wrote
	why    string
}

// refusedRoundTrip posts body to addr on a fresh connection as curl does:
// it sends while reading, so that an early answer is read as soon as it
// comes. With expect it sends the headers with Expect: 100-continue and
// the body only after a 100 (or after 1 s without an answer, as curl).
func refusedRoundTrip(addr, header string, body []byte, expect bool) (*refusal, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	head := fmt.Sprintf("POST /documents/upload HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n", addr, header, len(body))
	if expect {
		head += "Expect: 100-continue\r\n"
	}
	if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
		return nil, err
	}
	res := &refusal{}
	sent := make(chan int, 1)
	send := func() {
		n, _ := conn.Write(body) // a refusal may stop it; the answer is what counts
		sent <- n
	}
	br := bufio.NewReader(conn)
	var resp *http.Response
	if expect {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		resp, err = http.ReadResponse(br, nil)
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		switch {
		case err == nil && resp.StatusCode == http.StatusContinue:
			res.why = "got 100"
			go send()
			resp, err = http.ReadResponse(br, nil)
		case err != nil && isTimeout(err):
			res.why = "timed out"
			go send()
			resp, err = http.ReadResponse(br, nil)
		default:
			sent <- 0
		}
	} else {
		go send()
		resp, err = http.ReadResponse(br, nil)
	}
	// More 100s may come (the edge's own and the app's, forwarded): a
	// client skips them.
	for err == nil && resp.StatusCode == http.StatusContinue {
		resp, err = http.ReadResponse(br, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read answer body (status %d): %w", resp.StatusCode, err)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("answer %d is not the app's JSON error: %q", resp.StatusCode, b)
	}
	conn.Close() // stops a send still under way
	res.status, res.body, res.sent = resp.StatusCode, e.Error, <-sent
	return res, nil
}

// TestEarlyAnswerForwarded: an upstream that answers before reading the
// body (all of it, or past its first 512 bytes) and does not linger
// (net/http's server reads 256 KiB more at most, then closes) still gets
// its answer to the client through the edge, never a 502: 40 of 40 with
// and without Expect, and under Expect an upstream that read nothing
// makes the client send nothing. Without answeredConn about 6% of the
// partly-read ones were 502s.
func TestEarlyAnswerForwarded(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 3 GB over loopback")
	}
	for _, read := range []int64{0, 512} {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.CopyN(io.Discard, r.Body, read)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			io.WriteString(w, `{"error":"too large for this upstream"}`)
		}))
		t.Cleanup(up.Close)
		e := startEdge(t, "admin: off\naccess_log: off\nroutes:\n  - path: /\n    to: \"${APP}\"\n", map[string]string{"APP": up.URL})
		body := bytes.Repeat([]byte("x"), refusalBodyLen)
		for _, expect := range []bool{false, true} {
			for i := range 40 {
				res, err := refusedRoundTrip(e.addr, "Content-Type: text/plain\r\n", body, expect)
				if err != nil {
					t.Fatalf("upstream reads %d, expect=%v, try %d: %v", read, expect, i+1, err)
				}
				if res.status != http.StatusRequestEntityTooLarge || res.body != "too large for this upstream" {
					t.Fatalf("upstream reads %d, expect=%v, try %d: %d %q, want the upstream's 413", read, expect, i+1, res.status, res.body)
				}
				if expect && read == 0 && res.sent > 0 {
					t.Errorf("expect=%v try %d: the client sent %d body bytes (%s), want none", expect, i+1, res.sent, res.why)
				}
			}
		}
	}
}
