package postgres

import (
	"context"
	"strings"
	"unicode/utf8"

	"selfhost.dev/edgeapp/app"
)

// Index is full-text search on PostgreSQL: tsvector columns with GIN
// indexes, for deployments without Meilisearch. It shares its DB's
// connections and migrations.
type Index struct {
	db *DB
}

var _ app.SearchIndex = (*Index)(nil)

// NewIndex returns the full-text index kept in db.
func NewIndex(db *DB) *Index { return &Index{db: db} }

// maxBodyBytes caps the text indexed per document: a tsvector holds at most
// 1 MiB, and the words past this are rarely what anyone searches for.
const maxBodyBytes = 512 << 10

// userQuery turns the user's words into a tsquery without ever handing
// their text to the tsquery parser: the text goes through the same
// punctuation-to-space translate and 'simple' parser as the indexed
// columns, and each resulting lexeme is quoted (quotes and backslashes
// doubled) and marked as a prefix, all ANDed. Operators, quotes and
// parentheses in q are thus just separators, never syntax errors, and a
// query with no words yields NULL, which matches nothing.
const userQuery = `q AS (
	SELECT string_agg('''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || ''':*', ' & ')::tsquery AS q
	FROM unnest(to_tsvector('simple', translate($1, '@._-/:+#~=&?%\', '              ')))
)`

// headlineOptions mark matches with <mark> and keep snippets short.
const headlineOptions = "StartSel=<mark>, StopSel=</mark>, MaxWords=30, MinWords=12, MaxFragments=2, FragmentDelimiter=\" … \""

// IndexDocument adds or replaces the document's entry.
func (x *Index) IndexDocument(ctx context.Context, d *app.Document, text string) error {
	if err := x.db.ready(ctx); err != nil {
		return err
	}
	_, err := x.db.pool.Exec(ctx, `INSERT INTO search_documents (id, filename, document_type, body)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET filename = excluded.filename,
			document_type = excluded.document_type, body = excluded.body`,
		d.ID, d.Filename, d.DocumentType, truncateUTF8(cleanText(text), maxBodyBytes))
	return dbError("index document", err)
}

// RemoveDocument deletes the document's entry, if any.
func (x *Index) RemoveDocument(ctx context.Context, id int64) error {
	if err := x.db.ready(ctx); err != nil {
		return err
	}
	_, err := x.db.pool.Exec(ctx, "DELETE FROM search_documents WHERE id = $1", id)
	return dbError("remove document from index", err)
}

// IndexContact adds or replaces the contact's entry.
func (x *Index) IndexContact(ctx context.Context, c *app.Contact) error {
	if err := x.db.ready(ctx); err != nil {
		return err
	}
	_, err := x.db.pool.Exec(ctx, `INSERT INTO search_contacts (id, name, email, message)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email, message = excluded.message`,
		c.ID, cleanText(c.Name), cleanText(c.Email), cleanText(c.Message))
	return dbError("index contact", err)
}

// SearchDocuments matches every word of q, as a prefix, against filenames
// (weighted above text) and text. Scores are ts_rank normalised to 0..1
// (rank/(rank+1)); snippets are ts_headline of the text.
func (x *Index) SearchDocuments(ctx context.Context, q app.SearchQuery) (*app.SearchResult, error) {
	return x.search(ctx, "search documents", `WITH `+userQuery+`,
		hits AS (
			SELECT d.id, ts_rank(d.tsv, q.q, 32) AS score, count(*) OVER () AS total,
				CASE WHEN d.body = '' THEN d.filename ELSE d.body END AS text
			FROM search_documents d, q
			WHERE d.tsv @@ q.q AND ($2 = '' OR d.document_type = $2)
			ORDER BY score DESC, d.id DESC
			LIMIT $3 OFFSET $4
		)
		SELECT hits.id, hits.score, hits.total, ts_headline('simple', hits.text, q.q, $5)
		FROM hits, q ORDER BY hits.score DESC, hits.id DESC`,
		`WITH `+userQuery+` SELECT count(*) FROM search_documents d, q
		WHERE d.tsv @@ q.q AND ($2 = '' OR d.document_type = $2)`,
		q, q.DocumentType)
}

// SearchContacts matches every word of q, as a prefix, against name and
// email (weighted above the message) and message.
func (x *Index) SearchContacts(ctx context.Context, q app.SearchQuery) (*app.SearchResult, error) {
	return x.search(ctx, "search contacts", `WITH `+userQuery+`,
		hits AS (
			SELECT c.id, ts_rank(c.tsv, q.q, 32) AS score, count(*) OVER () AS total, c.message AS text
			FROM search_contacts c, q
			WHERE c.tsv @@ q.q AND $2 = ''
			ORDER BY score DESC, c.id DESC
			LIMIT $3 OFFSET $4
		)
		SELECT hits.id, hits.score, hits.total, ts_headline('simple', hits.text, q.q, $5)
		FROM hits, q ORDER BY hits.score DESC, hits.id DESC`,
		`WITH `+userQuery+` SELECT count(*) FROM search_contacts c, q WHERE c.tsv @@ q.q AND $2 = ''`,
		q, "")
}

// search runs a page query (id, score, total, snippet) and, for a page past
// the last hit, where the window count has no row to ride on, the count
// query. Both take $1 the query text and $2 the document type.
func (x *Index) search(ctx context.Context, op, pageSQL, countSQL string, q app.SearchQuery, docType string) (*app.SearchResult, error) {
	if err := x.db.ready(ctx); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 10
	}
	text := cleanText(q.Q)
	rows, err := x.db.pool.Query(ctx, pageSQL, text, docType, limit, max(q.Offset, 0), headlineOptions)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	res := &app.SearchResult{Hits: []app.SearchHit{}}
	for rows.Next() {
		var h app.SearchHit
		var score float32
		if err := rows.Scan(&h.ID, &score, &res.Total, &h.Snippet); err != nil {
			return nil, dbError(op, err)
		}
		h.Score = float64(score)
		res.Hits = append(res.Hits, h)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(op, err)
	}
	if len(res.Hits) == 0 && q.Offset > 0 {
		if err := x.db.pool.QueryRow(ctx, countSQL, text, docType).Scan(&res.Total); err != nil {
			return nil, dbError(op, err)
		}
	}
	return res, nil
}

// Ping reports whether the database answers.
func (x *Index) Ping(ctx context.Context) error { return x.db.Ping(ctx) }

// cleanText makes s storable in a text column, which takes neither NUL
// bytes nor invalid UTF-8 (PDF extraction produces both).
func cleanText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "")
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
