package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/apptest"
	"selfhost.dev/edgeapp/app/fsblob"
	"selfhost.dev/edgeapp/app/sqlite"
)

// fixture is a Service over real SQLite, FTS5 and files in a temp dir.
type fixture struct {
	dir   string
	db    *sqlite.DB
	blobs *fsblob.Store
	index *sqlite.Index
	svc   *app.Service
}

func newFixture(t *testing.T) *fixture {
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
	f := &fixture{dir: dir, db: db, blobs: blobs, index: sqlite.NewIndex(db)}
	f.svc = &app.Service{Store: db, Blobs: blobs, Index: f.index}
	return f
}

func (f *fixture) blobFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(filepath.Join(f.dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}

func wantCode(t *testing.T, err error, code app.Code) {
	t.Helper()
	if got := app.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func TestUploadSniffsAndHashes(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"a.pdf", apptest.PDF("hello"), "application/pdf"},
		{"notes.txt", []byte("plain words"), "text/plain"},
		{"README.md", []byte("# Title\n"), "text/markdown"},
		{"doc.markdown", []byte("text"), "text/markdown"},
		{"misnamed.txt", apptest.PDF("hi"), "application/pdf"}, // content wins over the name
	} {
		d, err := f.svc.UploadDocument(ctx, c.name, "t", bytes.NewReader(c.data))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if d.ContentType != c.want || d.Size != int64(len(c.data)) || len(d.SHA256) != 64 || d.ID == 0 {
			t.Errorf("%s: %+v, want type %s size %d", c.name, d, c.want, len(c.data))
		}
	}
	// An allow-list without Markdown refuses it.
	f.svc.AllowedTypes = []string{"application/pdf"}
	_, err := f.svc.UploadDocument(ctx, "x.md", "t", strings.NewReader("# hi"))
	wantCode(t, err, app.EUNSUPPORTED)
}

// TestUploadLimitExact: MaxUploadBytes is accepted, one more byte is not,
// and the refused upload leaves no file and no row.
func TestUploadLimitExact(t *testing.T) {
	f := newFixture(t)
	f.svc.MaxUploadBytes = 600 // beyond the sniffed head, so the limit is enforced while streaming
	if _, err := f.svc.UploadDocument(t.Context(), "ok.txt", "t", bytes.NewReader(bytes.Repeat([]byte("a"), 600))); err != nil {
		t.Fatalf("upload of exactly the limit: %v", err)
	}
	before := f.blobFiles(t)
	_, err := f.svc.UploadDocument(t.Context(), "big.txt", "t", bytes.NewReader(bytes.Repeat([]byte("a"), 601)))
	wantCode(t, err, app.ETOOLARGE)
	if got := f.blobFiles(t); len(got) != len(before) {
		t.Errorf("blob files %v after a refused upload, want %v", got, before)
	}
	if docs, _ := f.db.DocumentsByID(t.Context(), []int64{1, 2}); len(docs) != 1 {
		t.Errorf("%d rows, want 1", len(docs))
	}
}

// failingCreate is a Store whose CreateDocument fails, as a database that
// went down between the blob write and the row write would.
type failingCreate struct{ app.Store }

func (failingCreate) CreateDocument(context.Context, *app.Document, ...*app.Job) error {
	return app.Unavailable("database", errors.New("connection reset"))
}

func TestUploadRemovesBlobWhenRowFails(t *testing.T) {
	f := newFixture(t)
	f.svc.Store = failingCreate{f.db}
	_, err := f.svc.UploadDocument(t.Context(), "a.txt", "t", strings.NewReader("some text"))
	wantCode(t, err, app.EUNAVAILABLE)
	if got := f.blobFiles(t); len(got) != 0 {
		t.Errorf("blob left behind: %v", got)
	}
}

// errReader fails mid-upload, as a client that disconnects does.
type errReader struct{ n int }

func (r *errReader) Read(p []byte) (int, error) {
	if r.n > 2000 {
		return 0, errors.New("connection reset by peer")
	}
	r.n += len(p)
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func TestUploadClientGoneKeepsNothing(t *testing.T) {
	f := newFixture(t)
	_, err := f.svc.UploadDocument(t.Context(), "a.txt", "t", &errReader{})
	wantCode(t, err, app.EINVALID)
	if got := f.blobFiles(t); len(got) != 0 {
		t.Errorf("blob left behind: %v", got)
	}
}

// countingStore counts DocumentsByID calls.
type countingStore struct {
	app.Store
	byID atomic.Int32
}

func (s *countingStore) DocumentsByID(ctx context.Context, ids []int64) (map[int64]*app.Document, error) {
	s.byID.Add(1)
	return s.Store.DocumentsByID(ctx, ids)
}

// TestSearchEnrichesInOneQuery: hits are enriched by one DocumentsByID
// call, and a hit whose row is gone is dropped.
func TestSearchEnrichesInOneQuery(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	var docs []*app.Document
	for _, name := range []string{"a.txt", "b.txt", "c.txt"} {
		d, err := f.svc.UploadDocument(ctx, name, "t", strings.NewReader("common words in "+name))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.index.IndexDocument(ctx, d, "common words in "+name); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	if err := f.db.DeleteDocument(ctx, docs[1].ID); err != nil { // row gone, index entry not yet
		t.Fatal(err)
	}
	cs := &countingStore{Store: f.db}
	f.svc.Store = cs
	res, err := f.svc.SearchDocuments(ctx, app.SearchQuery{Q: "common"})
	if err != nil {
		t.Fatal(err)
	}
	if n := cs.byID.Load(); n != 1 {
		t.Errorf("%d DocumentsByID calls, want 1", n)
	}
	if len(res.Hits) != 2 || res.Total != 2 {
		t.Fatalf("%d hits, total %d; want 2, 2", len(res.Hits), res.Total)
	}
	for _, h := range res.Hits {
		if h.ID == docs[1].ID {
			t.Error("hit for a deleted document")
		}
		if h.Filename == "" || h.StoragePath == "" {
			t.Errorf("hit not enriched: %+v", h)
		}
	}
	_, err = f.svc.SearchDocuments(ctx, app.SearchQuery{Q: " "})
	wantCode(t, err, app.EINVALID)
	_, err = f.svc.SearchDocuments(ctx, app.SearchQuery{Q: "x", Limit: 101})
	wantCode(t, err, app.EINVALID)
}

func TestSubmitContactInvalidStoresNothing(t *testing.T) {
	f := newFixture(t)
	err := f.svc.SubmitContact(t.Context(), &app.Contact{Name: "A", Email: "nope", Message: "m"})
	wantCode(t, err, app.EVALIDATION)
	if fields := app.ErrorFields(err); fields["email"] == "" {
		t.Errorf("fields %v lack email", fields)
	}
	if n, _ := f.db.PendingJobs(t.Context()); n != 0 {
		t.Errorf("%d jobs queued for an invalid contact", n)
	}
}

func TestSubmitContactQueuesJobsAndKicks(t *testing.T) {
	f := newFixture(t)
	var kicks atomic.Int32
	f.svc.Kick = func() { kicks.Add(1) }
	c := &app.Contact{Name: "A", Email: "a@example.com", Message: "m"}
	if err := f.svc.SubmitContact(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if c.ID == 0 || kicks.Load() != 1 {
		t.Errorf("id %d, kicks %d", c.ID, kicks.Load())
	}
	if n, _ := f.db.PendingJobs(t.Context()); n != 2 {
		t.Errorf("%d jobs queued, want 2", n)
	}
}

func TestDeleteDocumentQueuesCleanup(t *testing.T) {
	f := newFixture(t)
	d, err := f.svc.UploadDocument(t.Context(), "a.txt", "t", strings.NewReader("text"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteDocument(t.Context(), d.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.svc.DeleteDocument(t.Context(), d.ID), app.ENOTFOUND)
	_, err = f.svc.Document(t.Context(), d.ID)
	wantCode(t, err, app.ENOTFOUND)
	jobs, err := f.db.ClaimJobs(t.Context(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, j := range jobs {
		if j.Kind == app.JobDeleteDocument && strings.Contains(string(j.Payload), d.StoragePath) {
			found = true
		}
	}
	if !found {
		t.Errorf("no delete_document job carrying %q among %d jobs", d.StoragePath, len(jobs))
	}
}

// downPinger fails its Ping.
type downBlobs struct{ app.BlobStore }

func (downBlobs) Ping(context.Context) error { return errors.New("disk gone") }

func TestReadyNamesFailingBackend(t *testing.T) {
	f := newFixture(t)
	if err := f.svc.Ready(t.Context()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	f.svc.Blobs = downBlobs{f.blobs}
	err := f.svc.Ready(t.Context())
	wantCode(t, err, app.EUNAVAILABLE)
	if msg := app.ErrorMessage(err); msg != "blob storage is unavailable" {
		t.Errorf("message %q", msg)
	}
}

// TestJobPayloadsGetRowIDs pins what SubmitContact and UploadDocument rely
// on: the Store fills a zero contact_id/document_id in the jobs it is given
// with the id of the row it creates in the same transaction (the only
// place that id exists). app/postgres does this; if this test fails, every
// contact and document job finds no row and nothing is indexed or mailed.
func TestJobPayloadsGetRowIDs(t *testing.T) {
	f := newFixture(t)
	c := &app.Contact{Name: "A", Email: "a@example.com", Message: "m"}
	if err := f.svc.SubmitContact(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	d, err := f.svc.UploadDocument(t.Context(), "a.txt", "t", strings.NewReader("text"))
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := f.db.ClaimJobs(t.Context(), 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		var p struct {
			ContactID  int64 `json:"contact_id"`
			DocumentID int64 `json:"document_id"`
		}
		if err := json.Unmarshal(j.Payload, &p); err != nil {
			t.Fatal(err)
		}
		switch j.Kind {
		case app.JobIndexContact, app.JobNotifyContact:
			if p.ContactID != c.ID {
				t.Errorf("%s job payload %s: contact_id %d, want %d: the Store must fill in the new row's id", j.Kind, j.Payload, p.ContactID, c.ID)
			}
		case app.JobIndexDocument:
			if p.DocumentID != d.ID {
				t.Errorf("%s job payload %s: document_id %d, want %d: the Store must fill in the new row's id", j.Kind, j.Payload, p.DocumentID, d.ID)
			}
		}
	}
}

// lostCommit is a Store whose CreateDocument stores the row but reports a
// failure, as a COMMIT whose answer the connection lost does.
type lostCommit struct{ *sqlite.DB }

func (s lostCommit) CreateDocument(ctx context.Context, d *app.Document, jobs ...*app.Job) error {
	if err := s.DB.CreateDocument(ctx, d, jobs...); err != nil {
		return err
	}
	return app.Unavailable("database", errors.New("connection reset during commit"))
}

// TestUploadKeepsBlobOfLostCommit: when the row was stored but the answer
// said otherwise, the file stays, so the document still downloads.
func TestUploadKeepsBlobOfLostCommit(t *testing.T) {
	f := newFixture(t)
	f.svc.Store = lostCommit{f.db}
	_, err := f.svc.UploadDocument(t.Context(), "a.txt", "t", strings.NewReader("some text"))
	wantCode(t, err, app.EUNAVAILABLE)
	f.svc.Store = f.db
	d, rc, err := f.svc.OpenDocument(t.Context(), 1)
	if err != nil {
		t.Fatalf("the stored row's file was removed: %v", err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "some text" || d.Filename != "a.txt" {
		t.Errorf("document %+v holds %q", d, b)
	}
}
