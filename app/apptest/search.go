package apptest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"selfhost.dev/edgeapp/app"
)

// TestSearchIndex runs the app.SearchIndex contract against the indexes
// open returns; each call must return a fresh, empty index (for a shared
// server, under names no other test uses).
//
// The contract, beyond the interface's doc comments:
//   - A query is just words: every word must match (AND), the last one as a
//     prefix at least; quotes, operators and punctuation (-, *, :, NEAR,
//     OR, &, |, !, <->, parentheses ...) are never syntax and never errors.
//   - Hits come best first with Score in 0..1 (non-increasing); a match in
//     the filename ranks above a single passing mention in the text.
//   - Snippet is a short excerpt of the text (or filename) with each matched
//     word wrapped in <mark>...</mark>. The text inside is not HTML-escaped:
//     clients must escape it and then restore the marks.
//   - Total counts all matches, ignoring Limit and Offset.
//   - An empty query returns no error (what it returns is up to the engine).
//
// Writes may become visible asynchronously (Meilisearch applies tasks in the
// background), so every search assertion is polled for up to ten seconds
// rather than checked once; synchronous indexes pass at the first poll.
func TestSearchIndex(t *testing.T, open func(t *testing.T) app.SearchIndex) {
	t.Run("Ping", func(t *testing.T) {
		if err := open(t).Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("Documents", func(t *testing.T) { testSearchDocuments(t, open(t)) })
	t.Run("Paging", func(t *testing.T) { testSearchPaging(t, open(t)) })
	t.Run("Ranking", func(t *testing.T) { testSearchRanking(t, open(t)) })
	t.Run("Reindex", func(t *testing.T) { testSearchReindex(t, open(t)) })
	t.Run("Remove", func(t *testing.T) { testSearchRemove(t, open(t)) })
	t.Run("Contacts", func(t *testing.T) { testSearchContacts(t, open(t)) })
	t.Run("QuerySyntax", func(t *testing.T) { testSearchSyntax(t, open(t)) })
}

func indexDoc(t *testing.T, x app.SearchIndex, id int64, filename, typ, text string) *app.Document {
	t.Helper()
	d := &app.Document{ID: id, Filename: filename, DocumentType: typ, ContentType: "text/plain",
		Size: int64(len(text)), StoragePath: fmt.Sprintf("blobs/%d", id)}
	if err := x.IndexDocument(t.Context(), d, text); err != nil {
		t.Fatalf("IndexDocument(%d): %v", id, err)
	}
	return d
}

// sampleDocs indexes three small documents: 1 invoice, 2 contract, 3 note.
func sampleDocs(t *testing.T, x app.SearchIndex) {
	indexDoc(t, x, 1, "invoice-2024.pdf", "invoice", "Payment received for the quarterly hosting invoice. Thank you for your business.")
	indexDoc(t, x, 2, "contract.pdf", "contract", "This service agreement covers hosting, backups and monitoring of the platform.")
	indexDoc(t, x, 3, "notes.md", "note", "Meeting notes: discuss the hosting migration and nightly backups with the team.")
}

// search is one search expectation: the hit ids, in order unless anyOrder.
type search struct {
	q        app.SearchQuery
	want     []int64
	total    int // if 0, len(want)
	anyOrder bool
}

func (s search) check(t *testing.T, res *app.SearchResult, err error) error {
	t.Helper()
	if err != nil {
		t.Fatalf("search %+v: %v", s.q, err) // errors are never eventual
	}
	if res == nil {
		t.Fatalf("search %+v: nil result without error", s.q)
	}
	ids := hitIDs(res)
	want := s.want
	if s.anyOrder {
		ids, want = slices.Sorted(slices.Values(ids)), slices.Sorted(slices.Values(want))
	}
	total := s.total
	if total == 0 {
		total = len(s.want)
	}
	if !slices.Equal(ids, want) || res.Total != total {
		return fmt.Errorf("search %+v = ids %v total %d, want %v total %d", s.q, hitIDs(res), res.Total, s.want, total)
	}
	for i, h := range res.Hits {
		if h.Score < 0 || h.Score > 1 {
			return fmt.Errorf("search %+v: hit %d score %v, want 0..1", s.q, h.ID, h.Score)
		}
		if i > 0 && h.Score > res.Hits[i-1].Score {
			return fmt.Errorf("search %+v: hit %d score %v after %v, want best first", s.q, h.ID, h.Score, res.Hits[i-1].Score)
		}
	}
	return nil
}

func (s search) documents(t *testing.T, x app.SearchIndex) *app.SearchResult {
	t.Helper()
	var res *app.SearchResult
	eventually(t, func() error {
		var err error
		res, err = x.SearchDocuments(t.Context(), s.q)
		return s.check(t, res, err)
	})
	return res
}

func (s search) contacts(t *testing.T, x app.SearchIndex) *app.SearchResult {
	t.Helper()
	var res *app.SearchResult
	eventually(t, func() error {
		var err error
		res, err = x.SearchContacts(t.Context(), s.q)
		return s.check(t, res, err)
	})
	return res
}

func hitIDs(res *app.SearchResult) []int64 {
	ids := []int64{}
	for _, h := range res.Hits {
		ids = append(ids, h.ID)
	}
	return ids
}

func q(words string) app.SearchQuery { return app.SearchQuery{Q: words, Limit: 10} }

func testSearchDocuments(t *testing.T, x app.SearchIndex) {
	sampleDocs(t, x)
	res := search{q: q("agreement"), want: []int64{2}}.documents(t, x)
	if s := res.Hits[0].Snippet; !strings.Contains(strings.ToLower(s), "<mark>agreement</mark>") {
		t.Errorf("snippet %q does not mark the matched word as <mark>agreement</mark>", s)
	}
	for _, tc := range []search{
		{q: q("Agreement"), want: []int64{2}},                          // case
		{q: q("agree"), want: []int64{2}},                              // prefix
		{q: q("hosting"), want: []int64{1, 2, 3}, anyOrder: true},      // several hits
		{q: q("hosting back"), want: []int64{2, 3}, anyOrder: true},    // every word, last as prefix
		{q: q("backups hosting"), want: []int64{2, 3}, anyOrder: true}, // word order does not matter
		{q: q("hosting xylophone"), want: []int64{}},                   // every word must match
		{q: q("invoice"), want: []int64{1}},                            // filename and text
		{q: q("notes"), want: []int64{3}},
		{q: q("xylophone"), want: []int64{}}, // nothing found is not an error
		{q: app.SearchQuery{Q: "hosting", DocumentType: "note", Limit: 10}, want: []int64{3}},
		{q: app.SearchQuery{Q: "hosting", DocumentType: "contract", Limit: 10}, want: []int64{2}},
		{q: app.SearchQuery{Q: "hosting", DocumentType: "nosuchtype", Limit: 10}, want: []int64{}},
		{q: app.SearchQuery{Q: "agreement", DocumentType: "note", Limit: 10}, want: []int64{}},
	} {
		tc.documents(t, x)
	}
}

func testSearchPaging(t *testing.T, x app.SearchIndex) {
	const n = 25
	for i := range int64(n) {
		indexDoc(t, x, 100+i, fmt.Sprintf("zebra-%d.txt", i), "animal", fmt.Sprintf("Zebra sighting number %d in the savannah.", i))
	}
	indexDoc(t, x, 1, "other.txt", "animal", "A lion, not the striped one.")
	seen := map[int64]bool{}
	for _, page := range []struct{ limit, offset, want int }{{10, 0, 10}, {10, 10, 10}, {10, 20, 5}, {10, 30, 0}} {
		var res *app.SearchResult
		eventually(t, func() error {
			var err error
			res, err = x.SearchDocuments(t.Context(), app.SearchQuery{Q: "zebra", Limit: page.limit, Offset: page.offset})
			if err != nil {
				t.Fatalf("search zebra: %v", err)
			}
			if len(res.Hits) != page.want || res.Total != n {
				return fmt.Errorf("search zebra limit %d offset %d: %d hits, total %d; want %d hits, total %d",
					page.limit, page.offset, len(res.Hits), res.Total, page.want, n)
			}
			return nil
		})
		for _, h := range res.Hits {
			if seen[h.ID] || h.ID < 100 || h.ID >= 100+n {
				t.Errorf("page at offset %d: hit %d repeated or not a zebra", page.offset, h.ID)
			}
			seen[h.ID] = true
		}
	}
	if len(seen) != n {
		t.Errorf("pages together held %d distinct hits, want %d", len(seen), n)
	}
}

func testSearchRanking(t *testing.T, x app.SearchIndex) {
	indexDoc(t, x, 1, "zoo-guide.txt", "guide", "The zoo has lions, tigers, elephants, giraffes, penguins, "+
		"flamingos, a small aquarium, a reptile house and, near the exit, one kangaroo. "+
		"Opening hours are nine to five; tickets are sold at the gate and online.")
	indexDoc(t, x, 2, "kangaroo-facts.txt", "guide", "Kangaroo facts: a kangaroo hops; every kangaroo carries its joey in a pouch.")
	res := search{q: q("kangaroo"), want: []int64{2, 1}}.documents(t, x)
	if res.Hits[0].Score <= 0 {
		t.Errorf("best hit score %v, want > 0", res.Hits[0].Score)
	}
}

func testSearchReindex(t *testing.T, x app.SearchIndex) {
	sampleDocs(t, x)
	search{q: q("agreement"), want: []int64{2}}.documents(t, x)
	indexDoc(t, x, 2, "contract-v2.pdf", "legal", "Replaced text about giraffes.")
	search{q: q("agreement"), want: []int64{}}.documents(t, x)
	search{q: q("giraffes"), want: []int64{2}}.documents(t, x)
	search{q: q("contract"), want: []int64{2}}.documents(t, x) // new filename
	search{q: app.SearchQuery{Q: "giraffes", DocumentType: "legal", Limit: 10}, want: []int64{2}}.documents(t, x)
	search{q: app.SearchQuery{Q: "giraffes", DocumentType: "contract", Limit: 10}, want: []int64{}}.documents(t, x)
}

func testSearchRemove(t *testing.T, x app.SearchIndex) {
	sampleDocs(t, x)
	search{q: q("notes"), want: []int64{3}}.documents(t, x)
	for range 2 { // idempotent
		if err := x.RemoveDocument(t.Context(), 3); err != nil {
			t.Fatalf("RemoveDocument: %v", err)
		}
	}
	if err := x.RemoveDocument(t.Context(), 999); err != nil {
		t.Errorf("RemoveDocument(missing) = %v, want nil", err)
	}
	search{q: q("notes"), want: []int64{}}.documents(t, x)
	search{q: q("hosting"), want: []int64{1, 2}, anyOrder: true}.documents(t, x)
}

func testSearchContacts(t *testing.T, x app.SearchIndex) {
	for _, c := range []*app.Contact{
		{ID: 1, Name: "Ada Lovelace", Email: "ada@example.com", Message: "A question about analytical engines."},
		{ID: 2, Name: "Charles Babbage", Email: "charles@example.org", Message: "Difference engine parts for sale."},
		{ID: 3, Name: "Grace Hopper", Email: "grace@navy.example", Message: "Found a moth in the relay."},
	} {
		if err := x.IndexContact(t.Context(), c); err != nil {
			t.Fatalf("IndexContact(%d): %v", c.ID, err)
		}
	}
	// Documents and contacts are separate: the same id in each does not clash.
	indexDoc(t, x, 1, "manual.txt", "manual", "Relay maintenance manual.")

	search{q: q("lovelace"), want: []int64{1}}.contacts(t, x)
	search{q: q("engine"), want: []int64{1, 2}, anyOrder: true}.contacts(t, x)
	search{q: q("ada@example.com"), want: []int64{1}}.contacts(t, x)
	search{q: q("grace"), want: []int64{3}}.contacts(t, x)
	search{q: q("relay"), want: []int64{3}}.contacts(t, x)
	search{q: q("relay"), want: []int64{1}}.documents(t, x)
	search{q: q("manual"), want: []int64{}}.contacts(t, x)
	search{q: q("lovelace"), want: []int64{}}.documents(t, x)

	if err := x.IndexContact(t.Context(), &app.Contact{ID: 3, Name: "Grace Hopper", Email: "grace@navy.example", Message: "Compilers!"}); err != nil {
		t.Fatalf("IndexContact(re-index): %v", err)
	}
	search{q: q("relay"), want: []int64{}}.contacts(t, x)
	search{q: q("compilers"), want: []int64{3}}.contacts(t, x)
}

func testSearchSyntax(t *testing.T, x app.SearchIndex) {
	sampleDocs(t, x)
	search{q: q("agreement"), want: []int64{2}}.documents(t, x) // indexed
	for _, s := range []string{
		`"hosting`, `hosting"`, `"""`, `'`, `NEAR(hosting backups)`, `NEAR`, `hosting OR`, `AND`, `NOT`,
		`-`, `--`, `*`, `***`, `hosting*`, `^hosting`, `:`, `title:hosting`, `filename:`, `(`, `)`, `((hosting`,
		`{hosting}`, `[x]`, `hosting & backups`, `!hosting`, `hosting | x`, `a <-> b`, `<2>`, `+`, `~`,
		`\`, `\"`, `%`, `_`, `%_%`, `'; DROP TABLE documents; --`, `$1`, `?`, `@`, `#`, "\x00", "\xff\xfe", "\t\n",
		"😀", `…`, ``, `   `, `document_type = invoice`, `id > 0`, `_rankingScore`, strings.Repeat("x", 1000),
		strings.Repeat("a ", 200),
	} {
		for _, qq := range []app.SearchQuery{{Q: s, Limit: 10}, {Q: s, Limit: 10, DocumentType: `a" OR 1=1 --`}} {
			res, err := x.SearchDocuments(t.Context(), qq)
			if err != nil {
				t.Errorf("SearchDocuments(%q) = %v, want no error: a query is just words", qq.Q, err)
			} else if res == nil {
				t.Errorf("SearchDocuments(%q) = nil result without error", qq.Q)
			}
		}
		if _, err := x.SearchContacts(t.Context(), q(s)); err != nil {
			t.Errorf("SearchContacts(%q) = %v, want no error: a query is just words", s, err)
		}
	}
	// Syntax around a word is ignored, not an error and not an operator.
	for _, s := range []string{`"hosting"`, `hosting*`, `(hosting)`, `-hosting`, `hosting:`, `hosting.`, `hosting,`} {
		res, err := x.SearchDocuments(t.Context(), q(s))
		if err != nil {
			t.Fatalf("SearchDocuments(%q): %v", s, err)
		}
		if !slices.Contains(hitIDs(res), 3) {
			t.Errorf("SearchDocuments(%q) = ids %v, want the documents about hosting", s, hitIDs(res))
		}
	}
}
