package apptest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"selfhost.dev/edgeapp/app"
)

// The Store contract for documents: rows, lookups by id, deletion with its job.

func newDocument(i int) *app.Document {
	return &app.Document{
		Filename:     fmt.Sprintf("report-%d.pdf", i),
		DocumentType: "report",
		ContentType:  "application/pdf",
		Size:         int64(1000 + i),
		SHA256:       fmt.Sprintf("%064x", i),
		StoragePath:  fmt.Sprintf("documents/%d.pdf", i),
	}
}

func mustCreateDocument(t *testing.T, s app.Store, d *app.Document, jobs ...*app.Job) {
	t.Helper()
	if err := s.CreateDocument(t.Context(), d, jobs...); err != nil {
		t.Fatalf("CreateDocument: %v", err)
	}
	if d.ID == 0 {
		t.Fatal("CreateDocument did not set ID")
	}
	if d.CreatedAt.IsZero() {
		t.Fatal("CreateDocument did not set CreatedAt")
	}
}

func sameDocument(a, b *app.Document) bool {
	return a.ID == b.ID && a.Filename == b.Filename && a.DocumentType == b.DocumentType &&
		a.ContentType == b.ContentType && a.Size == b.Size && a.SHA256 == b.SHA256 &&
		a.StoragePath == b.StoragePath && sameTime(a.CreatedAt, b.CreatedAt)
}

func testDocuments(t *testing.T, s app.Store) {
	d := newDocument(1)
	d.Filename = "Ünïcode naïve résumé (final).pdf"
	mustCreateDocument(t, s, d, app.NewJob(app.JobIndexDocument, app.DocumentPayload{}))
	got, err := s.Document(t.Context(), d.ID)
	if err != nil {
		t.Fatalf("Document(%d): %v", d.ID, err)
	}
	if !sameDocument(got, d) {
		t.Errorf("Document(%d) = %+v, want %+v", d.ID, got, d)
	}
	_, err = s.Document(t.Context(), d.ID+1000)
	wantCode(t, "Document(missing)", err, app.ENOTFOUND)
	if n := pending(t, s); n != 1 {
		t.Errorf("PendingJobs = %d, want 1", n)
	}
	for _, j := range claim(t, s, 10, time.Minute) {
		var p app.DocumentPayload
		if err := json.Unmarshal(j.Payload, &p); err != nil || p.DocumentID != d.ID {
			t.Errorf("%s job payload %s (%v): want the new document's id %d (app.SetRowID)", j.Kind, j.Payload, err, d.ID)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.CreateDocument(ctx, newDocument(2), app.NewJob(app.JobIndexDocument, app.DocumentPayload{})); err == nil {
		t.Fatal("CreateDocument with a cancelled context succeeded")
	}
	if n := pending(t, s); n != 1 {
		t.Errorf("after a failed CreateDocument, PendingJobs = %d, want 1", n)
	}
}

func testDocumentsByID(t *testing.T, s app.Store) {
	var ds []*app.Document
	for i := range 5 {
		d := newDocument(i)
		mustCreateDocument(t, s, d)
		ds = append(ds, d)
	}
	got, err := s.DocumentsByID(t.Context(), []int64{ds[4].ID, ds[1].ID, ds[4].ID + 1000, ds[1].ID})
	if err != nil {
		t.Fatalf("DocumentsByID: %v", err)
	}
	if len(got) != 2 {
		t.Errorf("DocumentsByID returned %d documents, want 2", len(got))
	}
	for _, d := range []*app.Document{ds[4], ds[1]} {
		if g := got[d.ID]; g == nil || !sameDocument(g, d) {
			t.Errorf("DocumentsByID()[%d] = %+v, want %+v", d.ID, g, d)
		}
	}
	for _, ids := range [][]int64{nil, {}, {ds[4].ID + 1000}} {
		got, err := s.DocumentsByID(t.Context(), ids)
		if err != nil {
			t.Fatalf("DocumentsByID(%v): %v", ids, err)
		}
		if len(got) != 0 {
			t.Errorf("DocumentsByID(%v) = %v, want none", ids, got)
		}
	}
	many := make([]int64, 0, 1000)
	for i := range 1000 {
		many = append(many, ds[0].ID+int64(i))
	}
	got, err = s.DocumentsByID(t.Context(), many)
	if err != nil {
		t.Fatalf("DocumentsByID(1000 ids): %v", err)
	}
	if len(got) != 5 {
		t.Errorf("DocumentsByID(1000 ids) returned %d documents, want 5", len(got))
	}
}

func testDeleteDocument(t *testing.T, s app.Store) {
	d, keep := newDocument(1), newDocument(2)
	mustCreateDocument(t, s, d)
	mustCreateDocument(t, s, keep)
	del := app.NewJob(app.JobDeleteDocument, app.DocumentPayload{DocumentID: d.ID, StoragePath: d.StoragePath})
	if err := s.DeleteDocument(t.Context(), d.ID, del); err != nil {
		t.Fatalf("DeleteDocument: %v", err)
	}
	_, err := s.Document(t.Context(), d.ID)
	wantCode(t, "Document(deleted)", err, app.ENOTFOUND)
	if _, err := s.Document(t.Context(), keep.ID); err != nil {
		t.Errorf("Document(other): %v", err)
	}
	jobs := claim(t, s, 10, time.Minute)
	if len(jobs) != 1 || jobs[0].Kind != app.JobDeleteDocument {
		t.Fatalf("after DeleteDocument, claimed %d jobs (%v), want the delete job", len(jobs), jobs)
	}
	var p app.DocumentPayload
	if err := json.Unmarshal(jobs[0].Payload, &p); err != nil || p.DocumentID != d.ID || p.StoragePath != d.StoragePath {
		t.Errorf("delete job payload %s (%v), want document %d at %q", jobs[0].Payload, err, d.ID, d.StoragePath)
	}

	again := app.NewJob(app.JobDeleteDocument, app.DocumentPayload{DocumentID: d.ID})
	err = s.DeleteDocument(t.Context(), d.ID, again)
	wantCode(t, "DeleteDocument(deleted)", err, app.ENOTFOUND)
	if n := pending(t, s); n != 1 {
		t.Errorf("a failed DeleteDocument stored its job: PendingJobs = %d, want 1", n)
	}
}
