-- The built-in search index (app/sqlite Index): FTS5 tables whose rowid is
-- the document or contact id. unicode61 with remove_diacritics folds case
-- and accents; prefix indexes keep short prefix queries ("ag*") fast.

-- document_type holds one token naming the type (see typeToken in
-- index.go), so that the type filter is part of the MATCH: FTS5 intersects
-- it with the words instead of reading every matching row to compare types.
CREATE VIRTUAL TABLE documents_fts USING fts5(
	filename, text, document_type,
	tokenize = 'unicode61 remove_diacritics 2',
	prefix = '2 3'
);
-- A match in the filename weighs ten times one in the text; the type token
-- does not count.
INSERT INTO documents_fts (documents_fts, rank) VALUES ('rank', 'bm25(10.0, 1.0, 0.0)');

CREATE VIRTUAL TABLE contacts_fts USING fts5(
	name, email, message,
	tokenize = 'unicode61 remove_diacritics 2',
	prefix = '2 3'
);
INSERT INTO contacts_fts (contacts_fts, rank) VALUES ('rank', 'bm25(5.0, 5.0, 1.0)');
