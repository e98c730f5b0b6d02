package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/sqlite"
)

func openPath(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return db
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	db := openPath(t, path)
	c := &app.Contact{Name: "Ada", Email: "ada@example.com", Message: "Hello"}
	if err := db.CreateContact(t.Context(), c, app.NewJob(app.JobNotifyContact, app.ContactPayload{ContactID: 1})); err != nil {
		t.Fatal(err)
	}
	d := &app.Document{Filename: "a.pdf", DocumentType: "report", ContentType: "application/pdf", Size: 3, SHA256: "abc", StoragePath: "k/a.pdf"}
	if err := db.CreateDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.NewIndex(db).IndexDocument(t.Context(), d, "persistent words"); err != nil {
		t.Fatal(err)
	}
	// A worker claims the job with a short lease and crashes before completing it.
	jobs, err := db.ClaimJobs(t.Context(), 10, 300*time.Millisecond)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("ClaimJobs = %v, %v; want one job", jobs, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openPath(t, path) // migrations must not run twice
	defer db.Close()
	cs, total, err := db.Contacts(t.Context(), app.ContactFilter{Limit: 10})
	if err != nil || total != 1 || cs[0].Name != "Ada" || !cs[0].CreatedAt.Equal(c.CreatedAt) {
		t.Errorf("after reopen Contacts = %+v, %d, %v; want the contact", cs, total, err)
	}
	if got, err := db.Document(t.Context(), d.ID); err != nil || got.StoragePath != d.StoragePath {
		t.Errorf("after reopen Document = %+v, %v", got, err)
	}
	res, err := sqlite.NewIndex(db).SearchDocuments(t.Context(), app.SearchQuery{Q: "persistent", Limit: 10})
	if err != nil || len(res.Hits) != 1 || res.Hits[0].ID != d.ID {
		t.Errorf("after reopen search = %+v, %v; want the document", res, err)
	}
	if n, err := db.PendingJobs(t.Context()); err != nil || n != 1 {
		t.Errorf("after reopen PendingJobs = %d, %v; want 1", n, err)
	}
	// The crashed worker's job comes back once its lease ends, exactly once.
	var again []*app.Job
	for deadline := time.Now().Add(10 * time.Second); len(again) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if again, err = db.ClaimJobs(t.Context(), 10, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if len(again) != 1 || again[0].ID != jobs[0].ID || again[0].Attempts != 2 {
		t.Fatalf("after the lease ended, claimed %+v; want job %d with 2 attempts", again, jobs[0].ID)
	}
	if err := db.CompleteJob(t.Context(), again[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := db.CompleteJob(t.Context(), again[0].ID); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("second CompleteJob = %v, want ENOTFOUND", err)
	}
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	openPath(t, path).Close()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO schema_version (version) VALUES (999)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	_, err = sqlite.Open(t.Context(), path)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a database from a newer program = %v, want an error saying so", err)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, path := range []string{"", "a?b.db", filepath.Join(t.TempDir(), "no/such/dir/app.db")} {
		if db, err := sqlite.Open(t.Context(), path); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}

func TestWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	openPath(t, path).Close()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var mode string
	if err := raw.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}
