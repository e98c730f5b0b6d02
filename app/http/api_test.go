package http_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/apptest"
	apphttp "selfhost.dev/edgeapp/app/http"
)

func TestContact(t *testing.T) {
	e := newEnv(t)
	r := e.postContact("  Ada Lovelace ", "ada@example.com", "Hello there, about engines")
	if r.status != 201 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	want := fmt.Sprintf(`{"id":%v,"status":"success","message":"Contact submitted successfully"}`, r.json["id"])
	if got := strings.TrimSpace(string(r.body)); got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	eventually(t, "contact indexed and mailed", func() error {
		if n := e.mail.count("ada@example.com"); n != 1 {
			return fmt.Errorf("%d notifications", n)
		}
		if n := e.index.calls(fmt.Sprintf("contact:%v", r.json["id"])); n != 1 {
			return fmt.Errorf("indexed %d times", n)
		}
		return nil
	})
	e.mail.mu.Lock()
	m := e.mail.last
	e.mail.mu.Unlock()
	if m.From != "app@example.com" || len(m.To) != 1 || m.To[0] != "owner@example.com" || m.Subject != "New contact from Ada Lovelace" {
		t.Errorf("notification %+v", m)
	}

	// The admin can list and search it.
	list := e.do(request{method: "GET", path: "/contacts", key: adminKey})
	if list.status != 200 || list.json["total"] != 1.0 {
		t.Fatalf("GET /contacts: %d %s", list.status, list.body)
	}
	c := list.json["contacts"].([]any)[0].(map[string]any)
	if c["name"] != "Ada Lovelace" || c["email"] != "ada@example.com" {
		t.Errorf("listed contact %v", c)
	}
	found := e.do(request{method: "GET", path: "/contacts?q=engine", key: adminKey})
	if found.status != 200 || found.json["total"] != 1.0 || len(found.json["contacts"].([]any)) != 1 {
		t.Errorf("GET /contacts?q=engine: %d %s", found.status, found.body)
	}
	none := e.do(request{method: "GET", path: "/contacts?q=zebra", key: adminKey})
	if none.status != 200 || none.json["total"] != 0.0 || len(none.json["contacts"].([]any)) != 0 {
		t.Errorf("GET /contacts?q=zebra: %d %s", none.status, none.body)
	}
}

// TestParallelContacts submits contacts concurrently: every one is stored
// once with its own id, and every notification goes out once.
func TestParallelContacts(t *testing.T) {
	e := newEnv(t)
	const n = 40
	var wg sync.WaitGroup
	ids := make(chan float64, n)
	for i := range n {
		wg.Go(func() {
			r := e.postContact(fmt.Sprintf("Person %d", i), fmt.Sprintf("p%d@example.com", i), "hi")
			if r.status != 201 {
				t.Errorf("contact %d: %d %s", i, r.status, r.body)
				return
			}
			ids <- r.json["id"].(float64)
		})
	}
	wg.Wait()
	close(ids)
	seen := map[float64]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("id %v returned twice", id)
		}
		seen[id] = true
	}
	if got := e.contactCount(); got != n {
		t.Errorf("%d contacts stored, want %d", got, n)
	}
	eventually(t, "notifications", func() error {
		for i := range n {
			if c := e.mail.count(fmt.Sprintf("p%d@example.com", i)); c != 1 {
				return fmt.Errorf("contact %d notified %d times", i, c)
			}
		}
		return nil
	})
}

// TestUploadSearchDownloadDelete follows a generated PDF from upload to
// search, download and deletion.
func TestUploadSearchDownloadDelete(t *testing.T) {
	e := newEnv(t)
	pdf := apptest.PDF("Quarterly report on zymurgical fermentation yields")
	up := e.upload("Q3 report.pdf", "report", pdf)
	if up.status != 201 {
		t.Fatalf("upload: %d %s", up.status, up.body)
	}
	sum := sha256.Sum256(pdf)
	id := up.json["id"]
	for k, want := range map[string]any{
		"filename": "Q3 report.pdf", "document_type": "report", "status": "uploaded",
		"size": float64(len(pdf)), "sha256": hex.EncodeToString(sum[:]), "text_status": "pending",
	} {
		if up.json[k] != want {
			t.Errorf("upload %s = %v, want %v", k, up.json[k], want)
		}
	}
	if len(up.json) != 8 || up.json["storage_path"] == "" {
		t.Errorf("upload response %s: want exactly id, filename, document_type, status, storage_path, size, sha256, text_status", up.body)
	}

	// Prefix search finds it once the outbox has indexed it.
	var hit map[string]any
	eventually(t, "search finds the PDF's text", func() error {
		r := e.do(request{method: "GET", path: "/documents/search?q=zymurg", key: publicKey})
		if r.status != 200 {
			return fmt.Errorf("status %d: %s", r.status, r.body)
		}
		res := r.json["results"].([]any)
		if len(res) != 1 {
			return fmt.Errorf("%d results: %s", len(res), r.body)
		}
		if r.json["query"] != "zymurg" || r.json["total"] != 1.0 {
			return fmt.Errorf("response %s", r.body)
		}
		if _, ok := r.json["processing_time_ms"].(float64); !ok {
			return fmt.Errorf("no processing_time_ms: %s", r.body)
		}
		hit = res[0].(map[string]any)
		// The index entry is written just before the status: a hit may
		// say pending for that moment.
		if hit["text_status"] != "indexed" {
			return fmt.Errorf("search hit text_status = %v, want indexed (its text was found)", hit["text_status"])
		}
		return nil
	})
	for _, k := range []string{"id", "filename", "document_type", "storage_path", "size", "created_at", "ranking_score", "snippet", "text_status"} {
		if _, ok := hit[k]; !ok {
			t.Errorf("search result lacks %q: %v", k, hit)
		}
	}
	if hit["id"] != id || !strings.Contains(strings.ToLower(hit["snippet"].(string)), "zymurgical") {
		t.Errorf("hit %v", hit)
	}
	if r := e.do(request{method: "GET", path: "/documents/search?q=zymurg&document_type=invoice", key: publicKey}); r.status != 200 || len(r.json["results"].([]any)) != 0 {
		t.Errorf("document_type filter: %d %s", r.status, r.body)
	}

	meta := e.do(request{method: "GET", path: fmt.Sprintf("/documents/%v", id), key: publicKey})
	if meta.status != 200 || meta.json["content_type"] != "application/pdf" || meta.json["sha256"] != up.json["sha256"] {
		t.Errorf("GET /documents/%v: %d %s", id, meta.status, meta.body)
	}

	dl := e.do(request{method: "GET", path: fmt.Sprintf("/documents/%v/download", id), key: publicKey})
	if dl.status != 200 || !bytes.Equal(dl.body, pdf) {
		t.Fatalf("download: status %d, %d bytes", dl.status, len(dl.body))
	}
	if got := dl.header.Get("Content-Type"); got != "application/pdf" {
		t.Errorf("Content-Type %q", got)
	}
	if got := dl.header.Get("Content-Length"); got != fmt.Sprint(len(pdf)) {
		t.Errorf("Content-Length %q", got)
	}
	if got := dl.header.Get("Content-Disposition"); got != `attachment; filename="Q3 report.pdf"` {
		t.Errorf("Content-Disposition %q", got)
	}

	del := e.do(request{method: "DELETE", path: fmt.Sprintf("/documents/%v", id), key: adminKey})
	if del.status != 200 || del.json["status"] != "deleted" {
		t.Fatalf("delete: %d %s", del.status, del.body)
	}
	if r := e.do(request{method: "GET", path: fmt.Sprintf("/documents/%v", id), key: publicKey}); r.status != 404 {
		t.Errorf("after delete: %d", r.status)
	}
	eventually(t, "blob and index entry removed", func() error {
		if f := e.blobFiles(); len(f) != 0 {
			return fmt.Errorf("blob files left: %v", f)
		}
		res, err := e.index.SearchDocuments(context.Background(), app.SearchQuery{Q: "zymurgical", Limit: 10})
		if err != nil {
			return err
		}
		if len(res.Hits) != 0 {
			return fmt.Errorf("still indexed: %v", res.Hits)
		}
		return nil
	})
}

// TestUploadFieldOrder: document_type may come before or after the file,
// which is streamed as it arrives either way; a file whose type never
// comes keeps nothing.
func TestUploadFieldOrder(t *testing.T) {
	e := newEnv(t)
	body, ct := multipartBody(t, part{name: "document_type", data: []byte("notes")}, part{name: "file", filename: "n.md", data: []byte("# Title\n\nsome *markdown*")})
	r := e.do(request{method: "POST", path: "/documents/upload", key: publicKey, body: body, contentType: ct})
	if r.status != 201 || r.json["document_type"] != "notes" || r.json["text_status"] != "pending" {
		t.Fatalf("type first: %d %s", r.status, r.body)
	}
	meta := e.do(request{method: "GET", path: fmt.Sprintf("/documents/%v", r.json["id"]), key: publicKey})
	if meta.json["content_type"] != "text/markdown" {
		t.Errorf("content_type %v, want text/markdown for a .md file", meta.json["content_type"])
	}
	// The seed's own client sends the file first, and other fields around it.
	body, ct = multipartBody(t, part{name: "file", filename: "later.txt", data: []byte("typed after the file")}, part{name: "submit", data: []byte("Upload")}, part{name: "document_type", data: []byte("memo")})
	r = e.do(request{method: "POST", path: "/documents/upload", key: publicKey, body: body, contentType: ct})
	if r.status != 201 || r.json["document_type"] != "memo" || r.json["filename"] != "later.txt" || r.json["text_status"] != "pending" {
		t.Fatalf("file first: %d %s", r.status, r.body)
	}
	dl := e.do(request{method: "GET", path: fmt.Sprintf("/documents/%v/download", r.json["id"]), key: publicKey})
	if string(dl.body) != "typed after the file" {
		t.Errorf("file first: downloaded %q", dl.body)
	}
	body, ct = multipartBody(t, part{name: "file", filename: "n.md", data: []byte("text")})
	r = e.do(request{method: "POST", path: "/documents/upload", key: publicKey, body: body, contentType: ct})
	if r.status != 400 || !strings.Contains(r.json["error"].(string), `missing "document_type" field`) {
		t.Errorf("file without type: %d %s", r.status, r.body)
	}
	if f := e.blobFiles(); len(f) != 2 {
		t.Errorf("blob files %v, want only the two stored uploads'", f)
	}
}

// TestDownloadFilenameEscaped: a hostile or non-ASCII filename cannot break
// out of the Content-Disposition header.
func TestDownloadFilenameEscaped(t *testing.T) {
	e := newEnv(t)
	for name, want := range map[string]string{
		`a"b.txt`:       `a"b.txt`,
		`C:\dir\c.txt`:  "c.txt", // browsers on Windows send the path
		"résumé.txt":    "résumé.txt",
		"tab\there.txt": "tabhere.txt",
	} {
		up := e.upload(name, "cv", []byte("plain text"))
		if up.status != 201 {
			t.Fatalf("upload %q: %d %s", name, up.status, up.body)
		}
		dl := e.do(request{method: "GET", path: fmt.Sprintf("/documents/%v/download", up.json["id"]), key: publicKey})
		cd := dl.header.Get("Content-Disposition")
		disp, params, err := mime.ParseMediaType(cd)
		if err != nil || disp != "attachment" || params["filename"] != want {
			t.Errorf("%q: Content-Disposition %q parses as %q %v (%v), want filename %q", name, cd, disp, params, err, want)
		}
		if strings.ContainsAny(cd, "\r\n") {
			t.Errorf("%q: Content-Disposition %q holds a line break", name, cd)
		}
		if dl.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Error("download without nosniff")
		}
	}
}

// TestBackendsDownThenBack: while search and mail fail, requests still
// succeed and jobs wait; once they are back every job goes out once.
func TestBackendsDownThenBack(t *testing.T) {
	e := newEnv(t)
	e.index.fail.Store(true)
	e.mail.fail.Store(true)
	for i := range 5 {
		if r := e.postContact("Bo", fmt.Sprintf("bo%d@example.com", i), "searchable words"); r.status != 201 {
			t.Fatalf("contact while search is down: %d %s", r.status, r.body)
		}
	}
	up := e.upload("doc.txt", "notes", []byte("flamingo migration patterns"))
	if up.status != 201 {
		t.Fatalf("upload while search is down: %d %s", up.status, up.body)
	}
	r := e.do(request{method: "GET", path: "/health/ready"})
	if r.status != 503 || r.json["error"] != "search is unavailable" || r.header.Get("Retry-After") == "" {
		t.Errorf("ready while search is down: %d %s (Retry-After %q)", r.status, r.body, r.header.Get("Retry-After"))
	}
	// Let the worker fail a few times.
	eventually(t, "failed attempts counted", func() error {
		if n := e.mail.count("bo0@example.com"); n != 0 {
			return fmt.Errorf("sent while down")
		}
		if !strings.Contains(scrape(t, e), `outbox_job_failures_total{kind="notify_contact"}`) {
			return fmt.Errorf("no failures yet")
		}
		return nil
	})
	e.index.fail.Store(false)
	e.mail.fail.Store(false)
	eventually(t, "jobs delivered after recovery", func() error {
		for i := range 5 {
			if n := e.mail.count(fmt.Sprintf("bo%d@example.com", i)); n != 1 {
				return fmt.Errorf("contact %d notified %d times", i, n)
			}
		}
		if n := e.index.calls(fmt.Sprintf("document:%v", up.json["id"])); n != 1 {
			return fmt.Errorf("document indexed %d times", n)
		}
		if n, _ := e.db.PendingJobs(context.Background()); n != 0 {
			return fmt.Errorf("%d jobs pending", n)
		}
		return nil
	})
	if r := e.do(request{method: "GET", path: "/health/ready"}); r.status != 200 {
		t.Errorf("ready after recovery: %d %s", r.status, r.body)
	}
}

func TestHealthAndLanding(t *testing.T) {
	e := newEnv(t)
	if r := e.do(request{method: "GET", path: "/health"}); r.status != 200 || r.json["status"] != "healthy" {
		t.Errorf("/health: %d %s", r.status, r.body)
	}
	if r := e.do(request{method: "GET", path: "/health/ready"}); r.status != 200 || r.json["status"] != "ready" {
		t.Errorf("/health/ready: %d %s", r.status, r.body)
	}
	r := e.do(request{method: "GET", path: "/"})
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "POST /contact") {
		t.Errorf("/: %d %q", r.status, r.header.Get("Content-Type"))
	}
}

// TestRequestID: an incoming id is reused and echoed and is in the log
// line; a malformed one is replaced; none gets a fresh one.
func TestRequestID(t *testing.T) {
	e := newEnv(t)
	r := e.do(request{method: "GET", path: "/health", header: map[string]string{"X-Request-ID": "edge-abc-123"}})
	if got := r.header.Get("X-Request-ID"); got != "edge-abc-123" {
		t.Errorf("X-Request-ID %q, want the incoming one", got)
	}
	r = e.do(request{method: "GET", path: "/health", header: map[string]string{"X-Correlation-ID": "corr-456"}})
	if r.header.Get("X-Request-ID") != "corr-456" || r.header.Get("X-Correlation-ID") != "corr-456" {
		t.Errorf("correlation id not echoed: %v", r.header)
	}
	r = e.do(request{method: "GET", path: "/health", header: map[string]string{"X-Request-ID": "bad id\twith spaces"}})
	if got := r.header.Get("X-Request-ID"); got == "" || strings.Contains(got, " ") {
		t.Errorf("malformed id kept: %q", got)
	}
	r = e.do(request{method: "GET", path: "/nope"})
	if len(r.header.Get("X-Request-ID")) != 32 {
		t.Errorf("generated id %q", r.header.Get("X-Request-ID"))
	}
	var found bool
	for line := range strings.SplitSeq(e.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "request" && rec["request_id"] == "edge-abc-123" {
			found = true
			if rec["endpoint"] != "/health" || rec["status"] != 200.0 {
				t.Errorf("log line %s", line)
			}
		}
	}
	if !found {
		t.Errorf("no request log line with the incoming id in:\n%s", e.logs.String())
	}
}

func scrape(t testing.TB, e *env) string {
	t.Helper()
	srv := http.Handler(apphttp.MetricsHandler(e.reg))
	req, _ := http.NewRequest("GET", "/metrics", nil)
	rec := &recorder{header: http.Header{}}
	srv.ServeHTTP(rec, req)
	return rec.body.String()
}

type recorder struct {
	header http.Header
	body   bytes.Buffer
	status int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.status = code }

// TestMetricsLabels: the endpoint label is the route pattern, never the
// raw path, and the counters move.
func TestMetricsLabels(t *testing.T) {
	e := newEnv(t)
	e.do(request{method: "GET", path: "/documents/12345", key: publicKey})
	e.do(request{method: "GET", path: "/documents/abc/download", key: publicKey})
	e.do(request{method: "GET", path: "/random/" + url.PathEscape("x y")})
	e.postContact("Al", "al@example.com", "hi")
	e.upload("a.txt", "t", []byte("text"))
	m := scrape(t, e)
	for _, want := range []string{
		`http_requests_total{endpoint="/documents/{id}",method="GET",status="404"} 1`,
		`http_requests_total{endpoint="/documents/{id}/download",method="GET",status="400"} 1`,
		`http_requests_total{endpoint="unmatched",method="GET",status="404"} 1`,
		`http_requests_total{endpoint="/contact",method="POST",status="201"} 1`,
		`http_request_duration_seconds_count{endpoint="/documents/upload",method="POST"} 1`,
		`contact_submissions_total 1`,
		`document_uploads_total 1`,
		`outbox_jobs_pending`,
		`go_goroutines`,
		`process_`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, bad := range []string{"12345", "/random", "abc"} {
		if strings.Contains(m, bad) {
			t.Errorf("metrics mention raw path part %q", bad)
		}
	}
}
