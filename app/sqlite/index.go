package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"selfhost.dev/edgeapp/app"
)

// snippetTokens is how many words a snippet holds around the match.
const snippetTokens = 16

// Index is the built-in search index: FTS5 tables in the DB's file. It
// implements app.SearchIndex.
//
// Every word of a query must match, each as a prefix. Hits are ranked by
// bm25 (a filename match weighs ten times a text match), and the score is
// bm25 mapped onto 0..1 by x/(1+x), which keeps the order and does not
// depend on the other hits. Snippets mark matched words with <mark>..</mark>
// around up to 16 words of the best-matching column.
type Index struct {
	db *DB
}

// NewIndex returns the search index stored in db.
func NewIndex(db *DB) *Index { return &Index{db: db} }

// Ping checks the database.
func (x *Index) Ping(ctx context.Context) error { return x.db.Ping(ctx) }

// IndexDocument adds or replaces the document's entry.
func (x *Index) IndexDocument(ctx context.Context, d *app.Document, text string) error {
	err := x.db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM documents_fts WHERE rowid = ?`, d.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO documents_fts (rowid, filename, text, document_type) VALUES (?, ?, ?, ?)`,
			d.ID, d.Filename, text, d.DocumentType)
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

// SearchDocuments matches q against filenames and text.
func (x *Index) SearchDocuments(ctx context.Context, q app.SearchQuery) (*app.SearchResult, error) {
	match := matchQuery(q.Q)
	if match == "" {
		return &app.SearchResult{Hits: []app.SearchHit{}}, nil
	}
	res, err := x.search(ctx, "documents_fts",
		`documents_fts MATCH ?1 AND (?2 = '' OR document_type = ?2)`, []any{match, q.DocumentType}, q)
	if err != nil {
		return nil, fmt.Errorf("search documents: %w", err)
	}
	return res, nil
}

// SearchContacts matches q against names, emails and messages.
func (x *Index) SearchContacts(ctx context.Context, q app.SearchQuery) (*app.SearchResult, error) {
	match := matchQuery(q.Q)
	if match == "" {
		return &app.SearchResult{Hits: []app.SearchHit{}}, nil
	}
	res, err := x.search(ctx, "contacts_fts", `contacts_fts MATCH ?1`, []any{match}, q)
	if err != nil {
		return nil, fmt.Errorf("search contacts: %w", err)
	}
	return res, nil
}

// search runs one page of a ranked query on table and counts its matches.
// table and where are constants of this package; user input is in args.
func (x *Index) search(ctx context.Context, table, where string, args []any, q app.SearchQuery) (*app.SearchResult, error) {
	res := &app.SearchResult{Hits: []app.SearchHit{}}
	if err := x.db.read.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE `+where, args...).Scan(&res.Total); err != nil {
		return nil, err
	}
	if res.Total <= q.Offset {
		return res, nil
	}
	n := len(args)
	rows, err := x.db.read.QueryContext(ctx, fmt.Sprintf(
		`SELECT rowid, rank, snippet(%[1]s, -1, '<mark>', '</mark>', '…', %[2]d) FROM %[1]s WHERE %[3]s
		ORDER BY rank, rowid DESC LIMIT ?%[4]d OFFSET ?%[5]d`, table, snippetTokens, where, n+1, n+2),
		append(args, q.Limit, max(q.Offset, 0))...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var h app.SearchHit
		var rank float64
		if err := rows.Scan(&h.ID, &rank, &h.Snippet); err != nil {
			return nil, err
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
