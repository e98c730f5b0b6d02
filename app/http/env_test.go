package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/extract"
	"selfhost.dev/edgeapp/app/fsblob"
	apphttp "selfhost.dev/edgeapp/app/http"
	"selfhost.dev/edgeapp/app/logmail"
	"selfhost.dev/edgeapp/app/sqlite"
	"selfhost.dev/edgeapp/internal/testlog"
)

const (
	publicKey = "public-key-0123456789"
	adminKey  = "admin-key-0123456789ab"
)

// env is the API over the real embedded adapters (SQLite, files, FTS5, the
// log mailer) in a temp dir, behind an httptest.Server, with an outbox
// worker running. The index and mailer are wrapped to count deliveries and
// to fail on demand.
type env struct {
	t      testing.TB
	srv    *httptest.Server
	db     *sqlite.DB
	blobs  *fsblob.Store
	dir    string // DATA_DIR-like: blobs under dir/blobs
	svc    *app.Service
	api    *apphttp.Server
	worker *app.Worker
	index  *flakyIndex
	mail   *recordingMailer
	reg    *prometheus.Registry
	logs   *testlog.Buffer
}

type envOption func(*app.Service, *app.Worker)

func maxUpload(n int64) envOption {
	return func(s *app.Service, _ *app.Worker) { s.MaxUploadBytes = n }
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "app.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := fsblob.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatalf("fsblob: %v", err)
	}
	logs := &testlog.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	e := &env{
		t: t, db: db, blobs: blobs, dir: dir, logs: logs,
		index: &flakyIndex{SearchIndex: sqlite.NewIndex(db), indexed: map[string]int{}},
		mail:  &recordingMailer{Mailer: logmail.New(logger), sent: map[string]int{}},
		reg:   apphttp.NewRegistry(),
	}
	e.worker = &app.Worker{
		Store: db, Blobs: blobs, Index: e.index, Mailer: e.mail, Extractor: extract.New(),
		NotifyFrom: "app@example.com", NotifyTo: []string{"owner@example.com"},
		Logger: logger, Metrics: app.NewWorkerMetrics(e.reg),
		PollInterval: 20 * time.Millisecond, MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		TempDir: t.TempDir(),
	}
	e.svc = &app.Service{Store: db, Blobs: blobs, Index: e.index, Mailer: e.mail, Kick: e.worker.Kick}
	for _, o := range opts {
		o(e.svc, e.worker)
	}
	e.api = &apphttp.Server{Service: e.svc, PublicKey: publicKey, AdminKey: adminKey, Logger: logger, Metrics: apphttp.NewMetrics(e.reg)}
	e.srv = httptest.NewServer(e.api.Handler())
	t.Cleanup(e.srv.Close)
	e.worker.Start(context.Background())
	t.Cleanup(func() { e.worker.Stop(context.Background()) })
	return e
}

// request is one HTTP request of a test.
type request struct {
	method, path string
	key          string // X-API-Key; "" sends none
	header       map[string]string
	body         io.Reader
	contentType  string
}

// response is what came back, with the JSON body decoded if it was JSON.
type response struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (e *env) do(r request) *response {
	e.t.Helper()
	req, err := http.NewRequest(r.method, e.srv.URL+r.path, r.body)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.key != "" {
		req.Header.Set("X-API-Key", r.key)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	out := &response{status: resp.StatusCode, header: resp.Header, body: b}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &out.json); err != nil {
			e.t.Fatalf("%s %s: invalid JSON response %q: %v", r.method, r.path, b, err)
		}
	}
	return out
}

// postContact submits a contact with the public key.
func (e *env) postContact(name, email, message string) *response {
	e.t.Helper()
	b, _ := json.Marshal(map[string]string{"name": name, "email": email, "message": message})
	return e.do(request{method: "POST", path: "/contact", key: publicKey, body: bytes.NewReader(b), contentType: "application/json"})
}

// part is one part of a multipart body.
type part struct {
	name, filename string
	data           []byte
}

func multipartBody(t testing.TB, parts ...part) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.filename != "" {
			w, err = mw.CreateFormFile(p.name, p.filename)
		} else {
			w, err = mw.CreateFormField(p.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.data)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

// upload posts a document with document_type first, as required.
func (e *env) upload(filename, docType string, data []byte) *response {
	e.t.Helper()
	body, ct := multipartBody(e.t, part{name: "document_type", data: []byte(docType)}, part{name: "file", filename: filename, data: data})
	return e.do(request{method: "POST", path: "/documents/upload", key: publicKey, body: body, contentType: ct})
}

// blobFiles lists the files under the blob dir (temp files included: a
// failed upload must not leave one either).
func (e *env) blobFiles() []string {
	e.t.Helper()
	var files []string
	root := filepath.Join(e.dir, "blobs")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	return files
}

func (e *env) contactCount() int {
	e.t.Helper()
	_, n, err := e.db.Contacts(context.Background(), app.ContactFilter{Limit: 1})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// eventually retries check until it passes or 10 s have gone by.
func eventually(t testing.TB, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// flakyIndex counts what it indexes and fails while fail is set.
type flakyIndex struct {
	app.SearchIndex
	fail    atomic.Bool
	mu      sync.Mutex
	indexed map[string]int // "contact:ID" or "document:ID" → calls that succeeded
}

var errDown = app.Unavailable("search", errors.New("connection refused"))

func (f *flakyIndex) IndexContact(ctx context.Context, c *app.Contact) error {
	if f.fail.Load() {
		return errDown
	}
	if err := f.SearchIndex.IndexContact(ctx, c); err != nil {
		return err
	}
	f.count(fmt.Sprintf("contact:%d", c.ID))
	return nil
}

func (f *flakyIndex) IndexDocument(ctx context.Context, d *app.Document, text string) error {
	if f.fail.Load() {
		return errDown
	}
	if err := f.SearchIndex.IndexDocument(ctx, d, text); err != nil {
		return err
	}
	f.count(fmt.Sprintf("document:%d", d.ID))
	return nil
}

func (f *flakyIndex) Ping(ctx context.Context) error {
	if f.fail.Load() {
		return errDown
	}
	return f.SearchIndex.Ping(ctx)
}

func (f *flakyIndex) count(key string) {
	f.mu.Lock()
	f.indexed[key]++
	f.mu.Unlock()
}

func (f *flakyIndex) calls(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.indexed[key]
}

// recordingMailer counts the messages sent per contact email (taken from
// the notification's text) and fails while fail is set.
type recordingMailer struct {
	app.Mailer
	fail atomic.Bool
	mu   sync.Mutex
	sent map[string]int
	last *app.Message
}

func (m *recordingMailer) Send(ctx context.Context, msg *app.Message) error {
	if m.fail.Load() {
		return app.Unavailable("mail", errors.New("connection refused"))
	}
	if err := m.Mailer.Send(ctx, msg); err != nil {
		return err
	}
	email := ""
	for line := range strings.SplitSeq(msg.Text, "\n") {
		if v, ok := strings.CutPrefix(line, "Email: "); ok {
			email = v
		}
	}
	m.mu.Lock()
	m.sent[email]++
	m.last = msg
	m.mu.Unlock()
	return nil
}

func (m *recordingMailer) count(email string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sent[email]
}
