package apptest

import (
	"testing"

	"selfhost.dev/edgeapp/app"
)

// testTextStatus: a new document's text is pending; SetTextStatus records
// a state and its reason for Document and DocumentsByID to return, on that
// document only; a missing document is ENOTFOUND.
func testTextStatus(t *testing.T, s app.Store) {
	d, other := newDocument(1), newDocument(2)
	mustCreateDocument(t, s, d)
	mustCreateDocument(t, s, other)
	if got, err := s.Document(t.Context(), d.ID); err != nil || got.TextStatus != app.TextPending || got.TextReason != "" {
		t.Fatalf("new document = %+v, %v; want text_status pending, no reason", got, err)
	}
	reason := "the PDF took too long to read — «ünïcode»"
	if err := s.SetTextStatus(t.Context(), d.ID, app.TextFailed, reason); err != nil {
		t.Fatalf("SetTextStatus: %v", err)
	}
	got, err := s.Document(t.Context(), d.ID)
	if err != nil || got.TextStatus != app.TextFailed || got.TextReason != reason {
		t.Errorf("after SetTextStatus, Document = %+v, %v; want failed with its reason", got, err)
	}
	docs, err := s.DocumentsByID(t.Context(), []int64{d.ID, other.ID})
	if err != nil {
		t.Fatalf("DocumentsByID: %v", err)
	}
	if g := docs[d.ID]; g == nil || g.TextStatus != app.TextFailed || g.TextReason != reason {
		t.Errorf("DocumentsByID()[%d] = %+v; want failed with its reason", d.ID, g)
	}
	if g := docs[other.ID]; g == nil || g.TextStatus != app.TextPending {
		t.Errorf("DocumentsByID()[%d] (the other) = %+v; want still pending", other.ID, g)
	}
	if err := s.SetTextStatus(t.Context(), d.ID, app.TextIndexed, ""); err != nil {
		t.Fatalf("SetTextStatus(indexed): %v", err)
	}
	if got, _ := s.Document(t.Context(), d.ID); got == nil || got.TextStatus != app.TextIndexed || got.TextReason != "" {
		t.Errorf("after SetTextStatus(indexed), Document = %+v; want indexed, no reason", got)
	}
	wantCode(t, "SetTextStatus(missing)", s.SetTextStatus(t.Context(), other.ID+1000, app.TextIndexed, ""), app.ENOTFOUND)
}
