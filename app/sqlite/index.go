package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"

	"selfhost.dev/edgeapp/app"
)

const (
	// snippetTokens is how many words a snippet holds around the match.
	snippetTokens = 16
	// rankWindow is how many of the newest matches a broad query ranks.
	rankWindow = 10_000
)

// Index is the built-in search index: FTS5 tables in the DB's file. It
// implements app.SearchIndex.
//
// Every word of a query must match, each as a prefix. Hits are ranked by
// bm25 (a filename match weighs ten times a text match), and the score is
// bm25 mapped onto 0..1 by x/(1+x), which keeps the order and does not
// depend on the other hits. Snippets mark matched words with <mark>..</mark>
// around up to 16 words of the text, or of the filename if only it matched.
//
// A query that matches nothing is retried with typo tolerance: each word
// that starts no indexed term is replaced by the terms one edit away (two
// for words of nine characters or more), keeping its first two characters.
type Index struct {
	db         *DB
	rankWindow int
}

// NewIndex returns the search index stored in db.
func NewIndex(db *DB) *Index { return &Index{db: db, rankWindow: rankWindow} }

// Ping checks the database.
func (x *Index) Ping(ctx context.Context) error { return x.db.Ping(ctx) }

// IndexDocument adds or replaces the document's entry.
func (x *Index) IndexDocument(ctx context.Context, d *app.Document, text string) error {
	err := x.db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM documents_fts WHERE rowid = ?`, d.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO documents_fts (rowid, filename, text, document_type) VALUES (?, ?, ?, ?)`,
			d.ID, d.Filename, text, typeToken(d.DocumentType))
		return err
	})
	if err != nil {
		return fmt.Errorf("index document %d: %w", d.ID, err)
	}
	return nil
}

// RemoveDocument deletes the document's entry, if any.
func (x *Index) RemoveDocument(ctx context.Context, id int64) error {
	if _, err := x.db.write.ExecContext(ctx, `DELETE FROM documents_fts WHERE rowid = ?`, id); err != nil {
		return fmt.Errorf("remove document %d from index: %w", id, err)
	}
	return nil
}

// IndexContact adds or replaces the contact's entry.
func (x *Index) IndexContact(ctx context.Context, c *app.Contact) error {
	err := x.db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM contacts_fts WHERE rowid = ?`, c.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO contacts_fts (rowid, name, email, message) VALUES (?, ?, ?, ?)`,
			c.ID, c.Name, c.Email, c.Message)
		return err
	})
	if err != nil {
		return fmt.Errorf("index contact %d: %w", c.ID, err)
	}
	return nil
}

// typeToken encodes a document type as one FTS token that no other type
// shares and no query word can reach (queries are confined to the filename
// and text columns).
func typeToken(documentType string) string {
	return "t" + hex.EncodeToString([]byte(documentType))
}

// SearchDocuments matches q against filenames and text.
func (x *Index) SearchDocuments(ctx context.Context, q app.SearchQuery) (*app.SearchResult, error) {
	snippets := fmt.Sprintf(`snippet(documents_fts, 1, '<mark>', '</mark>', '…', %[1]d), `+
		`snippet(documents_fts, 0, '<mark>', '</mark>', '…', %[1]d)`, snippetTokens)
	match := func(words string) string {
		m := `{filename text} : (` + words + `)`
		if q.DocumentType != "" {
			m += ` AND document_type : "` + typeToken(q.DocumentType) + `"`
		}
		return m
	}
	res, err := x.searchFuzzy(ctx, "documents_fts", "documents_vocab", match, snippets, q)
	if err != nil {
		return nil, fmt.Errorf("search documents: %w", err)
	}
	return res, nil
}

// SearchContacts matches q against names, emails and messages.
func (x *Index) SearchContacts(ctx context.Context, q app.SearchQuery) (*app.SearchResult, error) {
	snippets := fmt.Sprintf(`snippet(contacts_fts, -1, '<mark>', '</mark>', '…', %d), ''`, snippetTokens)
	match := func(words string) string { return words }
	res, err := x.searchFuzzy(ctx, "contacts_fts", "contacts_vocab", match, snippets, q)
	if err != nil {
		return nil, fmt.Errorf("search contacts: %w", err)
	}
	return res, nil
}

// searchFuzzy searches for q's words and, if nothing matches, for the
// indexed terms a typo away from them. match wraps the words' MATCH
// expression with the table's column filters.
func (x *Index) searchFuzzy(ctx context.Context, table, vocab string, match func(string) string, snippets string, q app.SearchQuery) (*app.SearchResult, error) {
	words := matchQuery(q.Q)
	if words == "" {
		return &app.SearchResult{Hits: []app.SearchHit{}}, nil
	}
	res, err := x.search(ctx, table, match(words), snippets, q)
	if err != nil || res.Total > 0 {
		return res, err
	}
	fuzzy, err := x.fuzzyQuery(ctx, vocab, q.Q)
	if err != nil || fuzzy == "" {
		return res, err
	}
	return x.search(ctx, table, match(fuzzy), snippets, q)
}

// search runs one page of the ranked query match on table and counts its
// matches. table and snippets (two snippet expressions: the preferred one,
// then a fallback if the first marks nothing) are constants of this package.
//
// Ranking costs a few microseconds per match, so a query matching more
// than rankWindow rows (a word in nearly every document) ranks only the
// newest rankWindow of them, or as many as the page needs; Total still
// counts them all. FTS5 sorts by rank itself and computes snippets only for
// the rows returned.
func (x *Index) search(ctx context.Context, table, match, snippets string, q app.SearchQuery) (*app.SearchResult, error) {
	res := &app.SearchResult{Hits: []app.SearchHit{}}
	where := table + ` MATCH ?1`
	if err := x.db.read.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE `+where, match).Scan(&res.Total); err != nil {
		return nil, err
	}
	offset := max(q.Offset, 0)
	if res.Total <= offset {
		return res, nil
	}
	var oldest int64
	if window := max(x.rankWindow, offset+q.Limit); res.Total > window {
		err := x.db.read.QueryRowContext(ctx, `SELECT rowid FROM `+table+` WHERE `+where+` ORDER BY rowid DESC LIMIT 1 OFFSET ?2`,
			match, window-1).Scan(&oldest)
		if err != nil {
			return nil, fmt.Errorf("rank window: %w", err)
		}
	}
	rows, err := x.db.read.QueryContext(ctx, `SELECT rowid, rank, `+snippets+` FROM `+table+` WHERE `+where+
		` AND rowid >= ?2 ORDER BY rank LIMIT ?3 OFFSET ?4`, match, oldest, q.Limit, offset)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var h app.SearchHit
		var rank float64
		var fallback string
		if err := rows.Scan(&h.ID, &rank, &h.Snippet, &fallback); err != nil {
			return nil, err
		}
		if !strings.Contains(h.Snippet, "<mark>") && strings.Contains(fallback, "<mark>") {
			h.Snippet = fallback
		}
		h.Score = score(rank)
		res.Hits = append(res.Hits, h)
	}
	return res, rows.Err()
}

// score maps an FTS5 bm25 rank (negative; lower is better) onto 0..1,
// higher is better, keeping the order.
func score(rank float64) float64 {
	x := -rank
	if x <= 0 {
		return 0
	}
	return x / (1 + x)
}

var _ app.SearchIndex = (*Index)(nil)
