package sqlite_test

import (
	"path/filepath"
	"testing"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/apptest"
	"selfhost.dev/edgeapp/app/sqlite"
)

// open opens a fresh database in t's temp dir, closed when t ends.
func open(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestStore(t *testing.T) {
	apptest.TestStore(t, func(t *testing.T) app.Store { return open(t) })
}

func TestSearchIndex(t *testing.T) {
	apptest.TestSearchIndex(t, func(t *testing.T) app.SearchIndex { return sqlite.NewIndex(open(t)) })
}
