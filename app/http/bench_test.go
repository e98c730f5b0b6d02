package http_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkSubmitContact measures POST /contact through the whole handler
// (middleware, JSON, validation, one SQLite transaction with its outbox
// jobs), without a network in between.
func BenchmarkSubmitContact(b *testing.B) {
	e := newEnv(b)
	e.worker.Stop(b.Context()) // measure the request, not the delivery
	h := e.api.Handler()
	body := []byte(`{"name":"Bench Mark","email":"bench@example.com","message":"A message of a typical length for a contact form."}`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/contact", bytes.NewReader(body))
		req.Header.Set("X-API-Key", publicKey)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusCreated {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkSearch measures GET /documents/search over 200 indexed
// documents: the index query plus the one query that enriches the hits.
func BenchmarkSearch(b *testing.B) {
	e := newEnv(b)
	for i := range 200 {
		text := fmt.Sprintf("Document %d about invoices, receipts and quarterly budget figures number %d.", i, i*7)
		if r := e.upload(fmt.Sprintf("doc%d.txt", i), "finance", []byte(text)); r.status != 201 {
			b.Fatalf("upload: %d %s", r.status, r.body)
		}
	}
	eventually(b, "all indexed", func() error {
		if n, _ := e.db.PendingJobs(b.Context()); n != 0 {
			return fmt.Errorf("%d pending", n)
		}
		return nil
	})
	h := e.api.Handler()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/documents/search?q=budg&limit=10", nil)
		req.Header.Set("X-API-Key", publicKey)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		io.Copy(io.Discard, w.Body)
	}
}
