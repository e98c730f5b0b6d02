package app_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/apptest"
	"selfhost.dev/edgeapp/app/fsblob"
	"selfhost.dev/edgeapp/app/sqlite"
)

// TestWorkerTextStatus indexes documents whose text extracts, is absent,
// or cannot be read, and checks that each document's metadata says which
// (text_status, text_reason), and that words of a real TeX PDF are found.
func TestWorkerTextStatus(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blobs, err := fsblob.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	tex, err := os.ReadFile("extract/testdata/pdf/libtasn1-pdftex.pdf")
	if err != nil {
		t.Fatal(err)
	}
	// A page that draws nothing but a rectangle: what a scan without
	// OCR looks like to a text extractor.
	noText := pdfDrawing("0.5 g 72 72 468 648 re f")
	for _, tc := range []struct {
		name, status, reason string
		body                 []byte
	}{
		{"manual.pdf", app.TextIndexed, "", tex},
		{"scan.pdf", app.TextNoText, "the file has no text to extract (a scanned image?)", noText},
		{"broken.pdf", app.TextFailed, "the PDF could not be read", []byte("%PDF-1.4\nnot really\n%%EOF\n")},
	} {
		key := "documents/" + tc.name
		if err := blobs.Put(t.Context(), key, bytes.NewReader(tc.body), int64(len(tc.body)), "application/pdf"); err != nil {
			t.Fatal(err)
		}
		d := &app.Document{Filename: tc.name, DocumentType: "report", ContentType: "application/pdf", Size: int64(len(tc.body)), SHA256: "0", StoragePath: key}
		if err := db.CreateDocument(t.Context(), d, app.NewJob(app.JobIndexDocument, app.DocumentPayload{})); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.Document(t.Context(), d.ID); got == nil || got.TextStatus != app.TextPending {
			t.Errorf("%s before the outbox ran: %+v, want text_status pending", tc.name, got)
		}
		t.Run(tc.name, func(t *testing.T) {
			w := newWorker(t, db, blobs, newDeliveries())
			w.Start(context.Background())
			defer w.Stop(context.Background())
			waitFor(t, "text status", func() error {
				got, err := db.Document(t.Context(), d.ID)
				if err != nil {
					return err
				}
				if got.TextStatus != tc.status || got.TextReason != tc.reason {
					return fmt.Errorf("text_status %q (%q), want %q (%q)", got.TextStatus, got.TextReason, tc.status, tc.reason)
				}
				return nil
			})
		})
	}
	// The example: TeX's words, with ligatures, are found.
	for _, q := range []string{"Abstract Syntax Notation", "specification"} {
		res, err := sqlite.NewIndex(db).SearchDocuments(t.Context(), app.SearchQuery{Q: q, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != 1 {
			t.Errorf("search %q: %d hits, want the manual", q, res.Total)
		}
	}
	if err := db.SetTextStatus(t.Context(), 999, app.TextIndexed, ""); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("SetTextStatus(missing) = %v, want ENOTFOUND", err)
	}
}

// pdfDrawing is a one-page PDF whose page content is content.
func pdfDrawing(content string) []byte {
	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
	}
	return apptest.PDFObjects(objects...)
}

// TestWorkerTextStatusMissingFile: a document whose file is gone from the
// blob store says so (failed, "the stored file is missing") instead of
// staying pending for ever, and its job is settled.
func TestWorkerTextStatusMissingFile(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blobs, err := fsblob.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	d := &app.Document{Filename: "gone.txt", DocumentType: "notes", ContentType: "text/plain", Size: 4, SHA256: "0", StoragePath: "documents/gone.txt"}
	if err := db.CreateDocument(t.Context(), d, app.NewJob(app.JobIndexDocument, app.DocumentPayload{})); err != nil {
		t.Fatal(err)
	}
	w := newWorker(t, db, blobs, newDeliveries())
	w.Start(context.Background())
	defer w.Stop(context.Background())
	waitFor(t, "text status of a missing file", func() error {
		got, err := db.Document(t.Context(), d.ID)
		if err != nil {
			return err
		}
		if got.TextStatus != app.TextFailed || got.TextReason != "the stored file is missing" {
			return fmt.Errorf("text_status %q (%q)", got.TextStatus, got.TextReason)
		}
		if n, _ := db.PendingJobs(t.Context()); n != 0 {
			return fmt.Errorf("%d jobs pending", n)
		}
		return nil
	})
}
