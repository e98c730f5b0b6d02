package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/postgres"
	"selfhost.dev/edgeapp/internal/testserver"
)

// BenchmarkSearchDocuments searches 10,000 indexed documents of 100 words
// from a vocabulary of 5,000: the GIN index finds the matches, ts_rank
// scores every match (so a broad prefix like "w7", matching most
// documents, is the worst case), and ts_headline runs on the page only.
func BenchmarkSearchDocuments(b *testing.B) {
	url := testserver.Postgres(b)
	db, err := postgres.Open(b.Context(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	conn, err := pgx.Connect(b.Context(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(b.Context())
	_, err = conn.Exec(b.Context(), `INSERT INTO search_documents (id, filename, document_type, body)
		SELECT i, 'report-' || i || '.pdf', CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END,
			(SELECT string_agg('w' || ((i * 7919 + j * 104729) % 5000), ' ') FROM generate_series(1, 100) j)
		FROM generate_series(1, 10000) i`)
	if err != nil {
		b.Fatal(err)
	}
	conn.Exec(b.Context(), "ANALYZE search_documents")
	x := postgres.NewIndex(db)
	for _, q := range []app.SearchQuery{
		{Q: "w123 w456", Limit: 10},
		{Q: "w1234", DocumentType: "even", Limit: 10, Offset: 10},
		{Q: "w7", Limit: 10},
		{Q: "report-9999.pdf", Limit: 10},
	} {
		b.Run(fmt.Sprintf("%s/%s", q.Q, q.DocumentType), func(b *testing.B) {
			for b.Loop() {
				if _, err := x.SearchDocuments(b.Context(), q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOutbox measures a contact write with its two jobs, then
// claiming and completing jobs, as the worker does.
func BenchmarkOutbox(b *testing.B) {
	db, err := postgres.Open(b.Context(), testserver.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.Run("CreateContact", func(b *testing.B) {
		for b.Loop() {
			c := &app.Contact{Name: "n", Email: "e@example.com", Message: "m"}
			if err := db.CreateContact(b.Context(), c, app.NewJob(app.JobIndexContact, app.ContactPayload{}),
				app.NewJob(app.JobNotifyContact, app.ContactPayload{})); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ClaimComplete", func(b *testing.B) {
		for b.Loop() {
			jobs, err := db.ClaimJobs(b.Context(), 1, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			if len(jobs) == 0 {
				b.StopTimer()
				db.CreateContact(b.Context(), &app.Contact{Name: "n", Email: "e@example.com", Message: "m"},
					app.NewJob(app.JobIndexContact, app.ContactPayload{}))
				b.StartTimer()
				continue
			}
			if err := db.CompleteJob(b.Context(), jobs[0].ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
