package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/build"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"selfhost.dev/edgeapp/app/s3"
	"selfhost.dev/edgeapp/internal/testlog"
	"selfhost.dev/edgeapp/internal/testserver"
)

// TestTwoInstances builds cmd/app and runs two processes of it against one
// real PostgreSQL and one real MinIO, as two instances behind an edge
// would. 200 contacts and uploads, sent concurrently and split between
// them, must each be stored once, and every outbox job they queue must be
// done exactly once (claimed once: one attempt each) by one instance or
// the other.
func TestTwoInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts servers")
	}
	dbURL := testserver.Postgres(t)
	endpoint, accessKey, secretKey := testserver.MinIO(t)
	bucket := fmt.Sprintf("twoinstances-%d", time.Now().UnixNano()%1e9)
	bin := buildApp(t)

	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir(),
		"APP_ADDR=127.0.0.1:0", "METRICS_ADDR=127.0.0.1:0",
		"PUBLIC_API_KEY=" + testKey, "ADMIN_API_KEY=" + testKey + "-admin",
		"NOTIFY_EMAIL_TO=owner@example.com",
		"DATABASE_URL=" + dbURL,
		"S3_ENDPOINT=" + endpoint, "S3_ACCESS_KEY=" + accessKey, "S3_SECRET_KEY=" + secretKey, "S3_BUCKET=" + bucket,
	}
	api1, log1 := startApp(t, bin, env)
	api2, log2 := startApp(t, bin, env)
	apis := []string{api1, api2}

	const n = 200 // half contacts, half uploads
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			base := apis[i%2]
			var req *http.Request
			if i%4 < 2 {
				body := fmt.Sprintf(`{"name":"Person %d","email":"person%d@example.com","message":"Message %d about wombats"}`, i, i, i)
				req, _ = http.NewRequest("POST", base+"/contact", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
			} else {
				var buf bytes.Buffer
				mw := multipart.NewWriter(&buf)
				mw.WriteField("document_type", "note")
				fw, _ := mw.CreateFormFile("file", fmt.Sprintf("note-%d.txt", i))
				fmt.Fprintf(fw, "Note %d mentions the token quokka%d.\n", i, i)
				mw.Close()
				req, _ = http.NewRequest("POST", base+"/documents/upload", &buf)
				req.Header.Set("Content-Type", mw.FormDataContentType())
			}
			req.Header.Set("X-API-Key", testKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("request %d (%s): %d %s", i, req.URL.Path, resp.StatusCode, b)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	ctx := t.Context()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.WithoutCancel(ctx))
	count := func(sql string) int {
		t.Helper()
		var c int
		if err := db.QueryRow(ctx, sql).Scan(&c); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return c
	}
	deadline := time.Now().Add(60 * time.Second)
	for count("SELECT count(*) FROM jobs WHERE done_at IS NULL") > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("outbox not drained after 60s: %d jobs pending", count("SELECT count(*) FROM jobs WHERE done_at IS NULL"))
		}
		time.Sleep(100 * time.Millisecond)
	}

	for _, c := range []struct {
		what string
		sql  string
		want int
	}{
		{"contacts", "SELECT count(*) FROM contacts", n / 2},
		{"distinct contact emails", "SELECT count(DISTINCT email) FROM contacts", n / 2},
		{"documents", "SELECT count(*) FROM documents", n / 2},
		{"distinct document filenames", "SELECT count(DISTINCT filename) FROM documents", n / 2},
		{"distinct storage paths", "SELECT count(DISTINCT storage_path) FROM documents", n / 2},
		{"jobs (2 per contact, 1 per upload)", "SELECT count(*) FROM jobs", n/2*2 + n/2},
		{"jobs done", "SELECT count(*) FROM jobs WHERE done_at IS NOT NULL", n/2*2 + n/2},
		{"jobs claimed more than once", "SELECT count(*) FROM jobs WHERE attempts <> 1", 0},
		{"contact index entries", "SELECT count(*) FROM search_contacts", n / 2},
		{"document index entries", "SELECT count(*) FROM search_documents", n / 2},
		{"documents whose index entry has their text", `SELECT count(*) FROM documents d JOIN search_documents s ON s.id = d.id
			WHERE s.body LIKE '%quokka' || substring(d.filename from 'note-([0-9]+)') || '.%'`, n / 2},
	} {
		if got := count(c.sql); got != c.want {
			t.Errorf("%s: %d, want %d", c.what, got, c.want)
		}
	}

	// Each notification went out once, from one instance or the other
	// (the log mailer writes one line per message).
	mails := map[string]int{}
	perInstance := []int{0, 0}
	for i, out := range []*testlog.Buffer{log1, log2} {
		for line := range strings.SplitSeq(out.String(), "\n") {
			var rec struct{ Msg, Subject string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "mail not sent: logged instead" {
				mails[rec.Subject]++
				perInstance[i]++
			}
		}
	}
	if len(mails) != n/2 {
		t.Errorf("%d distinct notifications logged, want %d", len(mails), n/2)
	}
	for subject, c := range mails {
		if c != 1 {
			t.Errorf("notification %q sent %d times", subject, c)
		}
	}
	t.Logf("notifications sent per instance: %v", perInstance)

	// Every row's blob is in the bucket, with its bytes.
	blobs, err := s3.New(ctx, s3.Config{Endpoint: endpoint, AccessKey: accessKey, SecretKey: secretKey, Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(ctx, "SELECT filename, storage_path, size FROM documents")
	if err != nil {
		t.Fatal(err)
	}
	type doc struct {
		name, path string
		size       int64
	}
	var docs []doc
	for rows.Next() {
		var d doc
		if err := rows.Scan(&d.name, &d.path, &d.size); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	rows.Close()
	for _, d := range docs {
		rc, err := blobs.Get(ctx, d.path)
		if err != nil {
			t.Errorf("blob of %s: %v", d.name, err)
			continue
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		var i int
		fmt.Sscanf(d.name, "note-%d.txt", &i)
		if want := fmt.Sprintf("Note %d mentions the token quokka%d.\n", i, i); string(b) != want || int64(len(b)) != d.size {
			t.Errorf("blob of %s = %q (row size %d), want %q", d.name, b, d.size, want)
		}
	}

	// Both instances serve what either stored.
	for _, base := range apis {
		req, _ := http.NewRequest("GET", base+"/documents/search?q=quokka103&limit=10", nil)
		req.Header.Set("X-API-Key", testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Total int `json:"total"`
		}
		json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || res.Total != 1 {
			t.Errorf("search on %s: %d, total %d; want 200 and the one note", base, resp.StatusCode, res.Total)
		}
	}
}

// buildApp builds this command, once per test binary (a build takes
// seconds on a busy machine and every process test needs one), into a
// directory TestMain removes.
func buildApp(t *testing.T) string {
	t.Helper()
	appBin.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(build.Default.GOROOT, "bin", "go") // go test run by absolute path
		}
		if appBin.dir, appBin.err = os.MkdirTemp("", "app-test-bin-"); appBin.err != nil {
			return
		}
		appBin.path = filepath.Join(appBin.dir, "app")
		if out, err := exec.Command(goTool, "build", "-o", appBin.path, ".").CombinedOutput(); err != nil {
			appBin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if appBin.err != nil {
		t.Fatal(appBin.err)
	}
	return appBin.path
}

// startApp starts one app process and returns its API base URL and its
// log. It is stopped with SIGTERM (a graceful shutdown) when t ends.
func startApp(t *testing.T, bin string, env []string) (string, *testlog.Buffer) {
	t.Helper()
	out := &testlog.Buffer{}
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("app exited with %v", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("app did not stop within 30s of SIGTERM:\n%s", out.String())
		}
		if t.Failed() {
			log := out.String()
			t.Logf("app log (tail):\n%s", log[max(0, len(log)-8000):])
		}
	})
	api, _ := listening(t, out, done)
	return "http://" + api, out
}

// TestBackendsDownAtStart starts the app while its real PostgreSQL and
// MinIO are stopped: it starts all the same, /health/ready names what is
// down, writes that need it answer 503 with Retry-After and keep nothing
// half-done, and everything works once the servers are back, without
// restarting the app.
func TestBackendsDownAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts servers")
	}
	pg := testserver.StartPostgres(t)
	dbURL := pg.NewDatabase(t)
	mi := testserver.StartMinIO(t)
	bin := buildApp(t)
	pg.Stop(t)
	mi.Stop(t)

	api, _ := startApp(t, bin, []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir(),
		"APP_ADDR=127.0.0.1:0", "METRICS_ADDR=127.0.0.1:0",
		"PUBLIC_API_KEY=" + testKey, "NOTIFY_EMAIL_TO=owner@example.com",
		"DATABASE_URL=" + dbURL,
		"S3_ENDPOINT=" + mi.Endpoint, "S3_ACCESS_KEY=" + mi.AccessKey, "S3_SECRET_KEY=" + mi.SecretKey, "S3_BUCKET=down-at-start",
	})
	ready := func() (int, string) {
		resp, err := http.Get(api + "/health/ready")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Error
	}
	waitReady := func(wantStatus int, wantError string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, msg := ready()
			if status == wantStatus && msg == wantError {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/health/ready = %d %q, want %d %q", status, msg, wantStatus, wantError)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	post := func(what string, want int) {
		t.Helper()
		var req *http.Request
		if what == "contact" {
			req, _ = http.NewRequest("POST", api+"/contact", strings.NewReader(`{"name":"Ada","email":"ada@example.com","message":"hello"}`))
			req.Header.Set("Content-Type", "application/json")
		} else {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			mw.WriteField("document_type", "note")
			fw, _ := mw.CreateFormFile("file", "note.txt")
			io.WriteString(fw, "a note about numbats\n")
			mw.Close()
			req, _ = http.NewRequest("POST", api+"/documents/upload", &buf)
			req.Header.Set("Content-Type", mw.FormDataContentType())
		}
		req.Header.Set("X-API-Key", testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("POST %s = %d %s, want %d", what, resp.StatusCode, body, want)
		}
		if want == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
			t.Errorf("POST %s: 503 without Retry-After", what)
		}
	}

	waitReady(http.StatusServiceUnavailable, "database is unavailable")
	post("contact", http.StatusServiceUnavailable)

	pg.Start(t)
	waitReady(http.StatusServiceUnavailable, "blob storage is unavailable")
	post("contact", http.StatusCreated)
	post("upload", http.StatusServiceUnavailable)

	db, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.WithoutCancel(t.Context()))
	var docs int
	if err := db.QueryRow(t.Context(), "SELECT count(*) FROM documents").Scan(&docs); err != nil || docs != 0 {
		t.Errorf("after an upload refused with 503, %d document rows (%v), want none", docs, err)
	}

	mi.Start(t)
	waitReady(http.StatusOK, "")
	post("upload", http.StatusCreated)

	pg.Stop(t)
	post("contact", http.StatusServiceUnavailable)
	pg.Start(t)
	waitReady(http.StatusOK, "")
	post("contact", http.StatusCreated)

	db.Close(t.Context())
	if db, err = pgx.Connect(t.Context(), dbURL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var contacts, documents, pending int
		err := db.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM contacts), (SELECT count(*) FROM documents),
			(SELECT count(*) FROM jobs WHERE done_at IS NULL)`).Scan(&contacts, &documents, &pending)
		if err != nil {
			t.Fatal(err)
		}
		if contacts == 2 && documents == 1 && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d contacts, %d documents, %d jobs pending; want 2, 1, 0", contacts, documents, pending)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
