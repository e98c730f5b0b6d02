-- The terms of each search table, for typo tolerance: a query word that
-- matches nothing is replaced by the indexed terms within one or two edits.
CREATE VIRTUAL TABLE documents_vocab USING fts5vocab(documents_fts, 'row');
CREATE VIRTUAL TABLE contacts_vocab USING fts5vocab(contacts_fts, 'row');
