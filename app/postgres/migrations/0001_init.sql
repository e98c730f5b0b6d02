-- The store: contacts, document metadata and the outbox, which share
-- transactions.
CREATE TABLE contacts (
	id         bigserial PRIMARY KEY,
	name       text NOT NULL,
	email      text NOT NULL,
	message    text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_newest ON contacts (created_at DESC, id DESC);

CREATE TABLE documents (
	id            bigserial PRIMARY KEY,
	filename      text NOT NULL,
	document_type text NOT NULL,
	content_type  text NOT NULL,
	size          bigint NOT NULL,
	sha256        text NOT NULL,
	storage_path  text NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT now()
);

-- jobs is the outbox. A job is due when run_at has passed and no lease
-- (leased_until) is running; done jobs keep their row (done_at) for a
-- while (DoneJobRetention) so that what the outbox did can be checked.
CREATE TABLE jobs (
	id           bigserial PRIMARY KEY,
	kind         text NOT NULL,
	payload      json NOT NULL,
	attempts     integer NOT NULL DEFAULT 0,
	run_at       timestamptz NOT NULL DEFAULT now(),
	leased_until timestamptz,
	last_error   text NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL DEFAULT now(),
	done_at      timestamptz
);
CREATE INDEX jobs_due ON jobs (run_at, id) WHERE done_at IS NULL;
CREATE INDEX jobs_done ON jobs (done_at) WHERE done_at IS NOT NULL;

-- The full-text index (postgres.Index), fed by the outbox like any other
-- search engine, so it has its own tables rather than columns on the
-- store's. Punctuation is turned into spaces before parsing so that
-- "quarterly-report.pdf" and "alice@example.com" are found by their parts;
-- queries go through the same translate (see search.go).
CREATE TABLE search_documents (
	id            bigint PRIMARY KEY,
	filename      text NOT NULL,
	document_type text NOT NULL,
	body          text NOT NULL,
	tsv           tsvector GENERATED ALWAYS AS (
		setweight(to_tsvector('simple', translate(filename, '@._-/:+#~=&?%\', '              ')), 'A') ||
		setweight(to_tsvector('simple', translate(body, '@._-/:+#~=&?%\', '              ')), 'B')
	) STORED
);
CREATE INDEX search_documents_tsv ON search_documents USING gin (tsv);
CREATE INDEX search_documents_type ON search_documents (document_type);

CREATE TABLE search_contacts (
	id      bigint PRIMARY KEY,
	name    text NOT NULL,
	email   text NOT NULL,
	message text NOT NULL,
	tsv     tsvector GENERATED ALWAYS AS (
		setweight(to_tsvector('simple', translate(name || ' ' || email, '@._-/:+#~=&?%\', '              ')), 'A') ||
		setweight(to_tsvector('simple', translate(message, '@._-/:+#~=&?%\', '              ')), 'B')
	) STORED
);
CREATE INDEX search_contacts_tsv ON search_contacts USING gin (tsv);
