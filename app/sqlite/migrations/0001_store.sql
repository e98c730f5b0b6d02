-- Times are INTEGER unix nanoseconds (UTC), so they sort and compare as numbers.

CREATE TABLE contacts (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	name       TEXT    NOT NULL,
	email      TEXT    NOT NULL,
	message    TEXT    NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX contacts_newest ON contacts (created_at DESC, id DESC);

CREATE TABLE documents (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	filename      TEXT    NOT NULL,
	document_type TEXT    NOT NULL,
	content_type  TEXT    NOT NULL,
	size          INTEGER NOT NULL,
	sha256        TEXT    NOT NULL,
	storage_path  TEXT    NOT NULL,
	created_at    INTEGER NOT NULL
);

-- The outbox. A job is claimable when it is not done, its run_at has passed
-- and it is not leased (locked_until is NULL or past). Done jobs are kept,
-- with done_at set, so that a late CompleteJob can tell "already done".
CREATE TABLE jobs (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	kind         TEXT    NOT NULL,
	payload      TEXT    NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	run_at       INTEGER NOT NULL,
	locked_until INTEGER,
	last_error   TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	done_at      INTEGER
);
CREATE INDEX jobs_due ON jobs (run_at, id) WHERE done_at IS NULL;
