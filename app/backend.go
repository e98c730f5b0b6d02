package app

import (
	"context"
	"io"
)

// Store is the database: contacts, documents and the outbox, which share
// transactions. SQLite (app/sqlite) and PostgreSQL (app/postgres) implement it.
type Store interface {
	ContactStore
	DocumentStore
	JobStore
	Pinger
	io.Closer
}

// Pinger is a backend that can say whether it is reachable; /health/ready
// asks every backend.
type Pinger interface {
	Ping(ctx context.Context) error
}

// BlobStore keeps uploaded files. Local files (app/fsblob) and S3/MinIO
// (app/s3) implement it.
type BlobStore interface {
	// Put streams r to key. size is the length of r, or -1 if unknown; r is
	// read to EOF and never buffered whole. If r returns an error, Put
	// returns it (wrapped) and leaves nothing stored under key.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Get opens key for reading. It returns ENOTFOUND if there is no such key.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	Pinger
}

// Mailer sends email. A logger (app/logmail), SMTP (app/smtp) and SES
// (app/ses) implement it.
type Mailer interface {
	Send(ctx context.Context, m *Message) error
	Pinger
}

// Message is an email in plain text.
type Message struct {
	From    string
	To      []string
	Subject string
	Text    string
	// ID, if set, identifies the message the same way on every attempt to
	// send it: an RFC 5322 msg-id without its angle brackets
	// ("left@domain", printable ASCII, no spaces). The outbox derives it
	// from the job, so that a notification sent twice (at-least-once
	// delivery) carries one Message-ID twice and receivers can collapse the
	// repeat. SMTP sends it as Message-ID; SES replaces Message-ID with its
	// own and cannot use it. If empty, the mailer makes up a fresh one.
	ID string
}
