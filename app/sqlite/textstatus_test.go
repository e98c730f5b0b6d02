package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"selfhost.dev/edgeapp/app"
)

// TestTextStatusMigration opens a database as the version before
// migration 0005 left it, with a document in it: the migration marks that
// document's text unknown (nobody recorded it). It runs although no 0004
// exists on this branch: versions are file numbers, not places in a list.
func TestTextStatusMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	db := openPath(t, path)
	db.Close()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`ALTER TABLE documents DROP COLUMN text_status`,
		`ALTER TABLE documents DROP COLUMN text_reason`,
		`DELETE FROM schema_version WHERE version >= 5`,
		`INSERT INTO documents (filename, document_type, content_type, size, sha256, storage_path, created_at)
			VALUES ('old.pdf', 'report', 'application/pdf', 3, 'abc', 'k/old.pdf', 0)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()

	db = openPath(t, path)
	defer db.Close()
	got, err := db.Document(t.Context(), 1)
	if err != nil || got.TextStatus != app.TextUnknown {
		t.Errorf("old document after the migration = %+v, %v; want text_status unknown", got, err)
	}
	d := &app.Document{Filename: "new.pdf", DocumentType: "report", ContentType: "application/pdf", Size: 3, SHA256: "abc", StoragePath: "k/new.pdf"}
	if err := db.CreateDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Document(t.Context(), d.ID); err != nil || got.TextStatus != app.TextPending {
		t.Errorf("new document = %+v, %v; want text_status pending", got, err)
	}
}
