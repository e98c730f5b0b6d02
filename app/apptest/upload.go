package apptest

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"selfhost.dev/edgeapp/app"
)

// UploadBackends is what TestUpload runs over: a fresh, empty store and blob
// store, and optionally a way to take the database down for real.
type UploadBackends struct {
	Store app.Store
	Blobs app.BlobStore
	// StopDatabase, if not nil, makes the database unreachable (stops its
	// server) and returns a function that brings it back.
	StopDatabase func(t *testing.T) (restart func())
}

// TestUpload runs app.Service's upload against real adapters with the
// client, the blob store and the database failing at each step, in both
// orders of a multipart body: the document type first (UploadDocument) and
// the file first (StageDocument, then Commit or Abort). After every failure
// no row, no job and no blob of the failed upload remain; what was stored
// before is kept.
//
// The blob store fails for real: its Put is cancelled midway, or completes
// with only part of the file and then reports an error (a failure after the
// object was committed). The database fails as a cancelled transaction
// would, as a backend reporting itself down, and, if StopDatabase is set, by
// its server being stopped between the blob write and the row write.
func TestUpload(t *testing.T, open func(t *testing.T) UploadBackends) {
	const size = 1<<20 + 7
	text := func(n int64, seed uint64) io.Reader {
		// Printable, so that it sniffs as text/plain.
		return &printable{r: patternReader(n, seed)}
	}
	type step struct {
		name string
		// fault prepares the backends; upload runs in one of the two orders.
		fault    func(t *testing.T, f *uploadFixture)
		body     func() io.Reader
		docType  string
		wantCode app.Code
	}
	steps := []step{
		{name: "client fails midway", body: func() io.Reader { return io.MultiReader(text(512<<10, 3), errorReader{}) }, docType: "report", wantCode: app.EINVALID},
		{name: "too large", body: func() io.Reader { return text(size+1, 4) }, docType: "report", wantCode: app.ETOOLARGE},
		{name: "unsupported type", body: func() io.Reader { return strings.NewReader("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR") }, docType: "report", wantCode: app.EUNSUPPORTED},
		{name: "blob store cancelled midway", fault: func(t *testing.T, f *uploadFixture) { f.blobs.cancelAfter = 512 << 10 }, body: func() io.Reader { return text(size, 5) }, docType: "report", wantCode: app.EINTERNAL},
		{name: "blob store fails after commit", fault: func(t *testing.T, f *uploadFixture) { f.blobs.failAfterPut = true }, body: func() io.Reader { return text(size, 6) }, docType: "report", wantCode: app.EINTERNAL},
		{name: "database transaction cancelled", fault: func(t *testing.T, f *uploadFixture) { f.store.cancelCreate = true }, body: func() io.Reader { return text(size, 7) }, docType: "report", wantCode: app.EINTERNAL},
		{name: "database down", fault: func(t *testing.T, f *uploadFixture) { f.store.down = true }, body: func() io.Reader { return text(size, 8) }, docType: "report", wantCode: app.EUNAVAILABLE},
	}
	for _, order := range []string{"type first", "file first"} {
		for _, st := range steps {
			t.Run(order+"/"+st.name, func(t *testing.T) {
				f := newUploadFixture(t, open(t))
				if st.fault != nil {
					st.fault(t, f)
				}
				var err error
				if order == "type first" {
					_, err = f.svc.UploadDocument(t.Context(), "a.txt", st.docType, st.body())
				} else {
					var u *app.StagedUpload
					u, err = f.svc.StageDocument(t.Context(), "a.txt", st.body())
					if err == nil {
						_, err = u.Commit(t.Context(), st.docType)
					}
				}
				if err == nil {
					t.Fatal("upload succeeded, want a failure")
				}
				if st.wantCode != app.EINTERNAL {
					wantCode(t, "upload", err, st.wantCode)
				}
				f.checkNothingNew(t)
			})
		}
	}
	t.Run("file first/bad type after the file", func(t *testing.T) {
		f := newUploadFixture(t, open(t))
		u, err := f.svc.StageDocument(t.Context(), "a.txt", text(size, 9))
		if err != nil {
			t.Fatal(err)
		}
		f.wantBlob(t, u.Key())
		_, err = u.Commit(t.Context(), "a/b")
		wantCode(t, "Commit with a bad type", err, app.EVALIDATION)
		f.checkNothingNew(t)
	})
	t.Run("file first/type never comes", func(t *testing.T) {
		f := newUploadFixture(t, open(t))
		ctx, cancel := context.WithCancel(t.Context())
		u, err := f.svc.StageDocument(ctx, "a.txt", text(size, 10))
		if err != nil {
			t.Fatal(err)
		}
		cancel() // the client went away before sending the type
		u.Abort(ctx)
		f.checkNothingNew(t)
	})
	t.Run("file first/committed", func(t *testing.T) {
		f := newUploadFixture(t, open(t))
		u, err := f.svc.StageDocument(t.Context(), "later.txt", text(size, 11))
		if err != nil {
			t.Fatal(err)
		}
		d, err := u.Commit(t.Context(), "memo")
		if err != nil {
			t.Fatal(err)
		}
		u.Abort(t.Context()) // spent: must not remove the committed blob
		if d.DocumentType != "memo" || d.Size != size || d.ID == 0 {
			t.Errorf("committed %+v", d)
		}
		if got, want := getSum(t, f.blobs, d.StoragePath), readerSum(text(size, 11)); got != want {
			t.Error("stored bytes differ from the upload")
		}
		if n := pending(t, f.store); n != f.jobsBefore+1 {
			t.Errorf("%d pending jobs, want %d (the index job)", n, f.jobsBefore+1)
		}
	})
	if probe := open(t); probe.StopDatabase != nil {
		t.Run("file first/database server stopped before the commit", func(t *testing.T) {
			f := newUploadFixture(t, probe)
			u, err := f.svc.StageDocument(t.Context(), "a.txt", text(size, 12))
			if err != nil {
				t.Fatal(err)
			}
			restart := probe.StopDatabase(t)
			_, err = u.Commit(t.Context(), "report")
			restart()
			wantCode(t, "Commit with the database stopped", err, app.EUNAVAILABLE)
			f.checkNothingNew(t)
		})
	}
}

// uploadFixture is a Service over the backends under test, wrapped to fail
// on demand and to remember every key put, with one document stored
// beforehand that every failure must leave alone.
type uploadFixture struct {
	svc        *app.Service
	store      *faultyStore
	blobs      *faultyBlobs
	seed       *app.Document
	jobsBefore int
}

func newUploadFixture(t *testing.T, b UploadBackends) *uploadFixture {
	t.Helper()
	f := &uploadFixture{store: &faultyStore{Store: b.Store}, blobs: &faultyBlobs{BlobStore: b.Blobs}}
	f.svc = &app.Service{Store: f.store, Blobs: f.blobs, MaxUploadBytes: 1<<20 + 7}
	seed, err := f.svc.UploadDocument(t.Context(), "seed.txt", "seed", strings.NewReader("stored before"))
	if err != nil {
		t.Fatalf("seed upload: %v", err)
	}
	f.seed = seed
	f.jobsBefore = pending(t, b.Store)
	return f
}

// checkNothingNew fails unless the seed document and its blob are all
// that is stored: no other row, no job beyond the seed's, no other blob.
func (f *uploadFixture) checkNothingNew(t *testing.T) {
	t.Helper()
	docs, err := f.store.Store.DocumentsByID(t.Context(), []int64{f.seed.ID, f.seed.ID + 1, f.seed.ID + 2, f.seed.ID + 3})
	if err != nil {
		t.Fatalf("DocumentsByID: %v", err)
	}
	if len(docs) != 1 || docs[f.seed.ID] == nil {
		t.Errorf("documents after the failure: %v, want only the seed %d", slices.Collect(mapKeys(docs)), f.seed.ID)
	}
	if n := pending(t, f.store.Store); n != f.jobsBefore {
		t.Errorf("%d pending jobs after the failure, want %d", n, f.jobsBefore)
	}
	for _, key := range f.blobs.keys() {
		if key == f.seed.StoragePath {
			continue
		}
		if _, err := f.blobs.BlobStore.Get(t.Context(), key); app.ErrorCode(err) != app.ENOTFOUND {
			t.Errorf("blob %q left behind (Get: %v)", key, err)
		}
	}
	if got := get(t, f.blobs.BlobStore, f.seed.StoragePath); got != "stored before" {
		t.Errorf("seed blob = %q, want it kept", got)
	}
}

func (f *uploadFixture) wantBlob(t *testing.T, key string) {
	t.Helper()
	rc, err := f.blobs.BlobStore.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("staged blob %q: %v", key, err)
	}
	rc.Close()
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

var errBlobStoreFailed = errors.New("apptest: blob store failed after storing the object")

// faultyBlobs is a real BlobStore that remembers the keys put and fails on
// demand.
type faultyBlobs struct {
	app.BlobStore
	// cancelAfter, if > 0, cancels Put's context once that many bytes were read.
	cancelAfter int64
	// failAfterPut reports an error after a Put that stored only half of
	// the object, as a store failing after its commit point would.
	failAfterPut bool

	mu  sync.Mutex
	put []string
}

func (b *faultyBlobs) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	b.mu.Lock()
	b.put = append(b.put, key)
	b.mu.Unlock()
	switch {
	case b.cancelAfter > 0:
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		return b.BlobStore.Put(ctx, key, &cancelReader{r: r, left: b.cancelAfter, cancel: cancel, ctx: ctx}, size, contentType)
	case b.failAfterPut:
		if err := b.BlobStore.Put(ctx, key, io.LimitReader(r, 256<<10), -1, contentType); err != nil {
			return err
		}
		return errBlobStoreFailed
	}
	return b.BlobStore.Put(ctx, key, r, size, contentType)
}

func (b *faultyBlobs) keys() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.put)
}

// cancelReader cancels its context once left bytes were read, then fails
// as a Put reading a cancelled request would.
type cancelReader struct {
	r      io.Reader
	left   int64
	cancel context.CancelFunc
	ctx    context.Context
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.cancel()
		return 0, c.ctx.Err()
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// faultyStore is a real Store whose CreateDocument fails on demand.
type faultyStore struct {
	app.Store
	// cancelCreate runs the real CreateDocument with a cancelled context.
	cancelCreate bool
	// down answers CreateDocument as a database that cannot be reached.
	down bool
}

func (s *faultyStore) CreateDocument(ctx context.Context, d *app.Document, jobs ...*app.Job) error {
	switch {
	case s.down:
		return app.Unavailable("database", errors.New("apptest: connection refused"))
	case s.cancelCreate:
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		return s.Store.CreateDocument(ctx, d, jobs...)
	}
	return s.Store.CreateDocument(ctx, d, jobs...)
}

// printable maps bytes to printable ASCII, so that a pattern sniffs as text.
type printable struct{ r io.Reader }

func (p *printable) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	for i := range b[:n] {
		b[i] = 'a' + b[i]%26
	}
	return n, err
}
