package app

import "context"

// SearchIndex is the full-text index of documents and contacts. It is fed
// only by outbox jobs, so it may lag the Store by a moment and may be down
// without losing anything. The built-in index (app/sqlite), PostgreSQL
// full-text search (app/postgres) and Meilisearch (app/meili) implement it.
type SearchIndex interface {
	// IndexDocument adds or replaces the document's entry.
	IndexDocument(ctx context.Context, d *Document, text string) error
	// RemoveDocument deletes the entry; a missing entry is not an error.
	RemoveDocument(ctx context.Context, id int64) error
	// SearchDocuments matches q against filenames and text, with prefix
	// matching on the last word at least.
	SearchDocuments(ctx context.Context, q SearchQuery) (*SearchResult, error)
	// IndexContact adds or replaces the contact's entry.
	IndexContact(ctx context.Context, c *Contact) error
	// SearchContacts matches q against name, email and message.
	SearchContacts(ctx context.Context, q SearchQuery) (*SearchResult, error)
	Pinger
}

// SearchQuery is a full-text query.
type SearchQuery struct {
	Q            string
	DocumentType string // documents only: if set, only documents of this type
	Limit        int    // 1..100
	Offset       int
}

// SearchResult is one page of hits, best first, and the total number of matches.
type SearchResult struct {
	Hits  []SearchHit
	Total int
}

// SearchHit is one match: the id of the document or contact, its score
// (higher is better, in 0..1 where the engine allows) and a snippet of the
// matching text with the matched words marked.
type SearchHit struct {
	ID      int64
	Score   float64
	Snippet string
}
