// The tests of this package run the adapter against fakeMeili (see
// fake_test.go), a protocol fake: Meilisearch cannot run on the machines
// these tests run on, so an httptest server implements the documented
// endpoints the adapter calls and fails the test on any request of
// another shape.
package meili_test

import (
	"strings"
	"testing"
	"time"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/apptest"
	"selfhost.dev/edgeapp/app/meili"
)

const masterKey = "test-master-key"

func open(t *testing.T) (*meili.Index, *fakeMeili) {
	t.Helper()
	f := newFakeMeili(t, masterKey)
	x, err := meili.New(f.URL(), masterKey)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	x.PollInterval = 5 * time.Millisecond
	return x, f
}

func TestSearchIndex(t *testing.T) {
	apptest.TestSearchIndex(t, func(t *testing.T) app.SearchIndex {
		x, _ := open(t)
		return x
	})
}

// TestTaskFailed checks that a task Meilisearch reports failed is an
// error, so the outbox job is retried, and that the retry succeeds.
func TestTaskFailed(t *testing.T) {
	x, f := open(t)
	d := &app.Document{ID: 1, Filename: "a.txt", DocumentType: "note"}
	f.failDocumentTasks(1)
	if err := x.IndexDocument(t.Context(), d, "quokka"); err == nil {
		t.Fatal("IndexDocument succeeded although Meilisearch failed the task")
	} else if !strings.Contains(err.Error(), "simulated indexing failure") {
		t.Errorf("error %q does not say why the task failed", err)
	}
	res, err := x.SearchDocuments(t.Context(), app.SearchQuery{Q: "quokka", Limit: 10})
	if err != nil || res.Total != 0 {
		t.Fatalf("after a failed task, search = %+v, %v; want nothing", res, err)
	}
	if err := x.IndexDocument(t.Context(), d, "quokka"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	res, err = x.SearchDocuments(t.Context(), app.SearchQuery{Q: "quokka", Limit: 10})
	if err != nil || res.Total != 1 {
		t.Fatalf("after the retry, search = %+v, %v; want the document", res, err)
	}

	f.failDocumentTasks(1)
	if err := x.RemoveDocument(t.Context(), 1); err == nil {
		t.Error("RemoveDocument succeeded although Meilisearch failed the task")
	}
}

// TestUnavailable checks that a server that cannot be reached is
// EUNAVAILABLE, and that New does not need it.
func TestUnavailable(t *testing.T) {
	f := newFakeMeili(t, masterKey)
	url := f.URL()
	f.srv.Close()
	x, err := meili.New(url, masterKey)
	if err != nil {
		t.Fatalf("New with the server down = %v, want an index that reports it", err)
	}
	ctx := t.Context()
	for name, err := range map[string]error{
		"Ping":            x.Ping(ctx),
		"IndexDocument":   x.IndexDocument(ctx, &app.Document{ID: 1}, "x"),
		"IndexContact":    x.IndexContact(ctx, &app.Contact{ID: 1}),
		"RemoveDocument":  x.RemoveDocument(ctx, 1),
		"SearchDocuments": second(x.SearchDocuments(ctx, app.SearchQuery{Q: "x", Limit: 1})),
	} {
		if app.ErrorCode(err) != app.EUNAVAILABLE {
			t.Errorf("%s with the server down = %v, want EUNAVAILABLE", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestWrongKey is a configuration error, not an outage, and the key never
// appears in the error.
func TestWrongKey(t *testing.T) {
	f := newFakeMeili(&quietT{TB: t}, masterKey)
	x, err := meili.New(f.URL(), "wrong-key")
	if err != nil {
		t.Fatal(err)
	}
	err = x.Ping(t.Context())
	if err == nil || app.ErrorCode(err) == app.EUNAVAILABLE {
		t.Errorf("Ping with a wrong key = %v, want a plain error", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong-key") {
		t.Errorf("error %q shows the key", err)
	}
}

// quietT lets the fake reject a request without failing the test that
// expects the rejection.
type quietT struct{ testing.TB }

func (quietT) Errorf(string, ...any) {}

// TestFilterQuoting sends a document type with quotes and backslashes: it
// must reach Meilisearch as one quoted string, matching only itself.
func TestFilterQuoting(t *testing.T) {
	x, _ := open(t)
	odd := `a" OR document_type = "b\`
	for i, typ := range []string{odd, "b", "a"} {
		if err := x.IndexDocument(t.Context(), &app.Document{ID: int64(i + 1), Filename: "f.txt", DocumentType: typ}, "wombat"); err != nil {
			t.Fatal(err)
		}
	}
	res, err := x.SearchDocuments(t.Context(), app.SearchQuery{Q: "wombat", DocumentType: odd, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 1 || res.Hits[0].ID != 1 {
		t.Errorf("filter on %q = %+v, want only document 1", odd, res.Hits)
	}
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"", "localhost:7700", "ftp://x", "http://"} {
		if _, err := meili.New(u, ""); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}
