package app

import (
	"context"
	"io"
	"time"
)

// Document is an uploaded file's metadata. The bytes live in a BlobStore
// under StoragePath; the text extracted from them lives in the SearchIndex.
type Document struct {
	ID           int64     `json:"id"`
	Filename     string    `json:"filename"`
	DocumentType string    `json:"document_type"`
	ContentType  string    `json:"content_type"`
	Size         int64     `json:"size"`
	SHA256       string    `json:"sha256"`
	StoragePath  string    `json:"storage_path"`
	CreatedAt    time.Time `json:"created_at"`
	// TextStatus says whether the document's text can be searched: one of
	// the TextStatus constants. TextReason says why, for TextNoText and
	// TextFailed. The outbox sets both once it has extracted the text.
	TextStatus string `json:"text_status,omitempty"`
	TextReason string `json:"text_reason,omitempty"`
}

// The states of a document's text (Document.TextStatus).
const (
	// TextPending: not extracted yet (the outbox will, shortly).
	TextPending = "pending"
	// TextIndexed: extracted and indexed; its words can be searched.
	TextIndexed = "indexed"
	// TextNoText: the file has no text to extract (a scan, images only);
	// only its metadata is indexed.
	TextNoText = "no_text"
	// TextFailed: the text could not be extracted (a damaged or hostile
	// file); TextReason says why. Only its metadata is indexed.
	TextFailed = "failed"
	// TextUnknown: stored before text states were recorded.
	TextUnknown = "unknown"
)

// DocumentStore keeps document metadata. Writes take the outbox jobs that
// must follow them and store both in one transaction. CreateDocument sets
// d.ID and d.CreatedAt and fills a zero document_id in the jobs' payloads
// with the new id (see SetRowID).
type DocumentStore interface {
	CreateDocument(ctx context.Context, d *Document, jobs ...*Job) error
	// Document returns ENOTFOUND if there is no document with that id.
	Document(ctx context.Context, id int64) (*Document, error)
	// DocumentsByID returns the documents with the given ids in one query;
	// ids with no document are absent from the map.
	DocumentsByID(ctx context.Context, ids []int64) (map[int64]*Document, error)
	// DeleteDocument returns ENOTFOUND if there is no such document.
	DeleteDocument(ctx context.Context, id int64, jobs ...*Job) error
	// SetTextStatus records the state of a document's text and why
	// (Document.TextStatus, TextReason); ENOTFOUND if there is no such
	// document.
	SetTextStatus(ctx context.Context, id int64, status, reason string) error
}

// TextExtractor pulls the searchable text out of an uploaded file. The
// outbox worker calls it when indexing a document; app/extract implements
// it for PDF, plain text and Markdown.
type TextExtractor interface {
	ExtractText(ctx context.Context, r io.ReaderAt, size int64, contentType string) (string, error)
}
