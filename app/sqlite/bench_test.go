package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"selfhost.dev/edgeapp/app"
)

// benchWords is the vocabulary of generated documents; benchmark queries
// pick words by rank, so word 0 is in most documents and word 1999 in few.
var benchWords = func() []string {
	syll := []string{"ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "po", "da", "fe", "gu", "hi", "ja"}
	var ws []string
	for len(ws) < 2000 {
		i := len(ws)
		w := syll[i%15] + syll[i/15%15] + syll[i/225%15]
		ws = append(ws, w+fmt.Sprint(i%7))
	}
	return ws
}()

// fill writes n documents and their index entries in one transaction:
// about 60 Zipf-distributed words each, five document types.
func fill(b *testing.B, db *DB, n int) {
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 2, uint64(len(benchWords)-1))
	err := db.tx(context.Background(), func(tx *sql.Tx) error {
		docs, err := tx.Prepare(`INSERT INTO documents (id, filename, document_type, content_type, size, sha256, storage_path, created_at)
			VALUES (?, ?, ?, 'application/pdf', 1000, '', ?, 0)`)
		if err != nil {
			return err
		}
		fts, err := tx.Prepare(`INSERT INTO documents_fts (rowid, filename, text, document_type) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		var text strings.Builder
		for id := 1; id <= n; id++ {
			text.Reset()
			for range 60 {
				text.WriteString(benchWords[zipf.Uint64()])
				text.WriteByte(' ')
			}
			name := fmt.Sprintf("%s-%d.pdf", benchWords[zipf.Uint64()], id)
			typ := fmt.Sprintf("type%d", id%5)
			if _, err := docs.Exec(id, name, typ, fmt.Sprintf("blobs/%d", id)); err != nil {
				return err
			}
			if _, err := fts.Exec(id, name, text.String(), typeToken(typ)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("fill: %v", err)
	}
}

// BenchmarkSearch100k measures what GET /documents/search does (a search,
// then one query for the hits' rows) on 100 000 indexed documents.
func BenchmarkSearch100k(b *testing.B) {
	db, err := Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fill(b, db, 100_000)
	x := NewIndex(db)
	for _, bc := range []struct {
		name string
		q    app.SearchQuery
	}{
		{"common", app.SearchQuery{Q: benchWords[0], Limit: 10}},
		{"medium", app.SearchQuery{Q: benchWords[50], Limit: 10}},
		{"rare", app.SearchQuery{Q: benchWords[1500], Limit: 10}},
		{"prefix", app.SearchQuery{Q: benchWords[50][:3], Limit: 10}},
		{"two-words", app.SearchQuery{Q: benchWords[3] + " " + benchWords[40], Limit: 10}},
		{"filter", app.SearchQuery{Q: benchWords[50], DocumentType: "type3", Limit: 10}},
		{"deep-page", app.SearchQuery{Q: benchWords[50], Limit: 100, Offset: 1000}},
		{"none", app.SearchQuery{Q: "xylophone", Limit: 10}},
		{"typo", app.SearchQuery{Q: typo(benchWords[50]), Limit: 10}},
	} {
		search := func(ctx context.Context) error {
			res, err := x.SearchDocuments(ctx, bc.q)
			if err != nil {
				return err
			}
			ids := make([]int64, len(res.Hits))
			for i, h := range res.Hits {
				ids[i] = h.ID
			}
			_, err = db.DocumentsByID(ctx, ids)
			return err
		}
		res, err := x.SearchDocuments(b.Context(), bc.q)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if err := search(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(res.Total), "matches")
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := search(context.Background()); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// typo swaps the fourth and fifth characters of w.
func typo(w string) string {
	b := []byte(w)
	b[3], b[4] = b[4], b[3]
	return string(b)
}

// BenchmarkCreateContact measures what POST /contact writes: a contact and
// its two outbox jobs in one durable transaction.
func BenchmarkCreateContact(b *testing.B) {
	db, err := Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	create := func(ctx context.Context) error {
		c := &app.Contact{Name: "Ada Lovelace", Email: "ada@example.com", Message: strings.Repeat("Hello there. ", 40)}
		return db.CreateContact(ctx, c,
			app.NewJob(app.JobIndexContact, app.ContactPayload{ContactID: 1}),
			app.NewJob(app.JobNotifyContact, app.ContactPayload{ContactID: 1}))
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := create(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := create(context.Background()); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
