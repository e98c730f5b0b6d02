package app_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/fsblob"
	"selfhost.dev/edgeapp/app/sqlite"
)

// TestSweepStagedUploads: a process killed between staging an upload's
// file and committing its row leaves the file without a row; the next
// start (Reclaim: alone on the store) removes it, and keeps every file a
// row references, every file staged since the start, and what is not a
// document.
func TestSweepStagedUploads(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blobDir := filepath.Join(dir, "blobs")
	blobs, err := fsblob.New(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	svc := &app.Service{Store: db, Blobs: blobs, Index: sqlite.NewIndex(db), Mailer: nil}
	stage := func(name, body string) string {
		t.Helper()
		u, err := svc.StageDocument(t.Context(), name, strings.NewReader(body))
		if err != nil {
			t.Fatalf("stage %s: %v", name, err)
		}
		return u.Key()
	}
	age := func(key string) { // as if written before the crash
		t.Helper()
		old := time.Now().Add(-2 * app.SweepStagedMargin)
		if err := os.Chtimes(filepath.Join(blobDir, filepath.FromSlash(key)), old, old); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(key string) bool {
		_, err := os.Stat(filepath.Join(blobDir, filepath.FromSlash(key)))
		return !errors.Is(err, fs.ErrNotExist)
	}

	// Committed before the crash: kept.
	u, err := svc.StageDocument(t.Context(), "kept.txt", strings.NewReader("a stored document"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := u.Commit(t.Context(), "notes")
	if err != nil {
		t.Fatal(err)
	}
	age(d.StoragePath)
	// Staged, then the process died: neither Commit nor Abort ran.
	orphans := []string{stage("cut1.txt", "cut by a crash"), stage("cut2.md", "# also cut")}
	for _, k := range orphans {
		age(k)
	}
	// Staged by this process after its start: an upload in flight.
	inFlight := stage("inflight.txt", "still arriving")
	// Not a document's: outside documents/.
	other := "exports/old.txt"
	if err := blobs.Put(t.Context(), other, strings.NewReader("x"), 1, "text/plain"); err != nil {
		t.Fatal(err)
	}
	age(other)

	w := newWorker(t, db, blobs, newDeliveries())
	w.Reclaim = true
	w.Start(context.Background())
	defer w.Stop(context.Background())
	waitFor(t, "orphaned staged files removed", func() error {
		for _, k := range orphans {
			if exists(k) {
				return errors.New(k + " still there")
			}
		}
		return nil
	})
	for what, k := range map[string]string{"committed document": d.StoragePath, "upload in flight": inFlight, "non-document blob": other} {
		if !exists(k) {
			t.Errorf("%s %s was removed", what, k)
		}
	}
	if got, err := db.Document(t.Context(), d.ID); err != nil || got.StoragePath != d.StoragePath {
		t.Errorf("document row after the sweep: %+v, %v", got, err)
	}
}

// TestNoSweepWithoutReclaim: a worker that may share the store with other
// processes (PostgreSQL, several instances) never removes staged files:
// they may be another instance's uploads in flight.
func TestNoSweepWithoutReclaim(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blobDir := filepath.Join(dir, "blobs")
	blobs, err := fsblob.New(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	key := "documents/other-instance.txt"
	if err := blobs.Put(t.Context(), key, strings.NewReader("x"), 1, "text/plain"); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(blobDir, "documents", "other-instance.txt"), old, old); err != nil {
		t.Fatal(err)
	}
	w := newWorker(t, db, blobs, newDeliveries())
	w.Start(context.Background())
	// A kicked empty batch shows the worker is past its start.
	w.Kick()
	time.Sleep(50 * time.Millisecond)
	w.Stop(context.Background())
	if _, err := os.Stat(filepath.Join(blobDir, "documents", "other-instance.txt")); err != nil {
		t.Errorf("a worker without Reclaim removed a staged file: %v", err)
	}
}
