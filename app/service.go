package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultMaxUploadBytes is the largest upload accepted when
// Service.MaxUploadBytes is zero: 50 MiB.
const DefaultMaxUploadBytes = 50 << 20

// DefaultAllowedTypes are the content types accepted for upload when
// Service.AllowedTypes is nil.
var DefaultAllowedTypes = []string{"application/pdf", "text/plain", "text/markdown"}

// Limits on upload metadata, counted in characters.
const (
	MaxFilename     = 255
	MaxDocumentType = 64
)

// sniffLen is how much of an upload http.DetectContentType looks at.
const sniffLen = 512

// Service is the API's use cases over the backends. The HTTP layer
// (app/http) calls it; it never sees HTTP. Its fields are set once before
// use and not changed afterwards.
type Service struct {
	// Store is the database. Required.
	Store Store
	// Blobs keeps uploaded files. Required.
	Blobs BlobStore
	// Index answers searches. Required.
	Index SearchIndex
	// Mailer is only pinged by Ready: mail is sent by the Worker. If nil,
	// Ready does not check mail.
	Mailer Mailer

	// MaxUploadBytes is the largest file UploadDocument accepts.
	// If zero, DefaultMaxUploadBytes is used.
	MaxUploadBytes int64
	// AllowedTypes are the content types UploadDocument accepts, without
	// parameters. If nil, DefaultAllowedTypes is used.
	AllowedTypes []string

	// Kick, if not nil, is called after a write that queued outbox jobs,
	// so that a Worker delivers them now instead of at its next poll.
	Kick func()
}

// UploadLimit returns the largest upload accepted: MaxUploadBytes or its default.
func (s *Service) UploadLimit() int64 {
	if s.MaxUploadBytes > 0 {
		return s.MaxUploadBytes
	}
	return DefaultMaxUploadBytes
}

func (s *Service) allowedTypes() []string {
	if s.AllowedTypes != nil {
		return s.AllowedTypes
	}
	return DefaultAllowedTypes
}

func (s *Service) kick() {
	if s.Kick != nil {
		s.Kick()
	}
}

// SubmitContact validates c and stores it together with the jobs that index
// it and send the notification, in one transaction. On success c.ID and
// c.CreatedAt are set.
func (s *Service) SubmitContact(ctx context.Context, c *Contact) error {
	if err := c.Validate(); err != nil {
		return err
	}
	// The payloads carry a zero id: the store fills in the new row's id,
	// which exists only inside its transaction.
	jobs := []*Job{NewJob(JobIndexContact, ContactPayload{}), NewJob(JobNotifyContact, ContactPayload{})}
	if err := s.Store.CreateContact(ctx, c, jobs...); err != nil {
		return fmt.Errorf("create contact: %w", err)
	}
	s.kick()
	return nil
}

// UploadDocument streams r into the blob store under a random key while
// counting and hashing it, then records the document and the job that
// indexes it. Nothing is kept if the metadata is invalid (EVALIDATION), r is
// larger than MaxUploadBytes (ETOOLARGE), its sniffed content type is not
// allowed (EUNSUPPORTED), or the database write fails. It is StageDocument
// followed by Commit, with the document type checked before any byte is
// stored.
func (s *Service) UploadDocument(ctx context.Context, filename, documentType string, r io.Reader) (*Document, error) {
	d := &Document{Filename: cleanFilename(filename), DocumentType: strings.TrimSpace(documentType)}
	if err := d.validateMeta(); err != nil {
		return nil, err
	}
	u, err := s.StageDocument(ctx, filename, r)
	if err != nil {
		return nil, err
	}
	return u.Commit(ctx, documentType)
}

// deleteBlob removes a blob that must not outlive a failed upload, even if
// ctx was cancelled by the client going away.
func (s *Service) deleteBlob(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = s.Blobs.Delete(ctx, key)
}

// readError reports a failure to read the upload itself: the client's
// problem, not ours.
func readError(err error) error {
	return &Error{Code: EINVALID, Message: "could not read the uploaded file", Err: err}
}

func (d *Document) validateMeta() error {
	fields := map[string]string{}
	switch n := utf8.RuneCountInString(d.Filename); {
	case n == 0:
		fields["filename"] = "is required"
	case n > MaxFilename:
		fields["filename"] = fmt.Sprintf("must be at most %d characters", MaxFilename)
	}
	switch n := utf8.RuneCountInString(d.DocumentType); {
	case n == 0:
		fields["document_type"] = "is required"
	case n > MaxDocumentType:
		fields["document_type"] = fmt.Sprintf("must be at most %d characters", MaxDocumentType)
	case strings.IndexFunc(d.DocumentType, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' && r != '-' && r != '.'
	}) >= 0:
		fields["document_type"] = "may contain only letters, digits, '_', '-' and '.'"
	}
	if len(fields) > 0 {
		return &Error{Code: EVALIDATION, Message: "validation failed", Fields: fields}
	}
	return nil
}

// cleanFilename keeps the last element of a client-supplied name (browsers
// on Windows send backslashes) and drops control characters, which have no
// business in a Content-Disposition header later.
func cleanFilename(name string) string {
	name = strings.ReplaceAll(name, `\`, "/")
	name = path.Base(strings.TrimSpace(name))
	if name == "." || name == "/" || name == ".." {
		return ""
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, name)
	return strings.TrimSpace(name)
}

// sniffContentType names the type of a file from its first bytes. Markdown
// cannot be told from plain text by content, so a text file named .md or
// .markdown is Markdown.
func sniffContentType(filename string, head []byte) string {
	ct, _, err := mime.ParseMediaType(http.DetectContentType(head))
	if err != nil {
		return "application/octet-stream"
	}
	if ct == "text/plain" {
		switch strings.ToLower(path.Ext(filename)) {
		case ".md", ".markdown":
			return "text/markdown"
		}
	}
	return ct
}

// newBlobKey returns a random storage key: never derived from the client's
// filename, so that names cannot collide or traverse.
func newBlobKey(contentType string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random key: %w", err)
	}
	ext := ""
	switch contentType {
	case "application/pdf":
		ext = ".pdf"
	case "text/plain":
		ext = ".txt"
	case "text/markdown":
		ext = ".md"
	}
	return "documents/" + hex.EncodeToString(b[:]) + ext, nil
}

// errTooLarge is what an uploadReader returns once it has seen more than
// its limit; Put returns it wrapped and leaves nothing stored.
var errTooLarge = errors.New("upload exceeds the size limit")

// uploadReader counts and hashes what passes through it and fails with
// errTooLarge past max bytes. It records why it failed, so that the caller
// need not trust the blob store to wrap errors faithfully.
type uploadReader struct {
	r        io.Reader
	h        hash.Hash
	n, max   int64
	tooLarge bool
	err      error // a read error of r (other than EOF)
}

func (u *uploadReader) Read(p []byte) (int, error) {
	if u.tooLarge {
		return 0, errTooLarge
	}
	n, err := u.r.Read(p)
	u.n += int64(n)
	u.h.Write(p[:n])
	if u.n > u.max {
		u.tooLarge = true
		return n, errTooLarge
	}
	if err != nil && err != io.EOF {
		u.err = err
	}
	return n, err
}

// DocumentHit is a search hit enriched with its document's metadata.
type DocumentHit struct {
	*Document
	Score   float64
	Snippet string
}

// DocumentSearch is one page of document search results.
type DocumentSearch struct {
	Hits  []DocumentHit
	Total int
	Took  time.Duration
}

// checkQuery validates the paging of a query, defaulting Limit to 10.
func checkQuery(q *SearchQuery) error {
	if q.Limit == 0 {
		q.Limit = 10
	}
	if q.Limit < 1 || q.Limit > 100 {
		return Errorf(EINVALID, "limit must be between 1 and 100")
	}
	if q.Offset < 0 {
		return Errorf(EINVALID, "offset must not be negative")
	}
	q.Q = strings.TrimSpace(q.Q)
	return nil
}

// SearchDocuments searches the index and enriches the hits with their
// metadata in one Store query. A hit whose document was deleted since it
// was indexed is dropped.
func (s *Service) SearchDocuments(ctx context.Context, q SearchQuery) (*DocumentSearch, error) {
	start := time.Now()
	if err := checkQuery(&q); err != nil {
		return nil, err
	}
	if q.Q == "" {
		return nil, Errorf(EINVALID, "query parameter q is required")
	}
	res, err := s.Index.SearchDocuments(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("search documents: %w", err)
	}
	out := &DocumentSearch{Hits: []DocumentHit{}, Total: res.Total}
	if len(res.Hits) > 0 {
		ids := make([]int64, len(res.Hits))
		for i, h := range res.Hits {
			ids[i] = h.ID
		}
		docs, err := s.Store.DocumentsByID(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("documents by id: %w", err)
		}
		for _, h := range res.Hits {
			d, ok := docs[h.ID]
			if !ok {
				out.Total--
				continue
			}
			out.Hits = append(out.Hits, DocumentHit{Document: d, Score: h.Score, Snippet: h.Snippet})
		}
	}
	out.Total = max(out.Total, len(out.Hits))
	out.Took = time.Since(start)
	return out, nil
}

// Document returns the metadata of one document, or ENOTFOUND.
func (s *Service) Document(ctx context.Context, id int64) (*Document, error) {
	return s.Store.Document(ctx, id)
}

// OpenDocument returns a document and its bytes; the caller closes them.
func (s *Service) OpenDocument(ctx context.Context, id int64) (*Document, io.ReadCloser, error) {
	d, err := s.Store.Document(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	rc, err := s.Blobs.Get(ctx, d.StoragePath)
	if err != nil {
		return nil, nil, fmt.Errorf("get blob of document %d: %w", id, err)
	}
	return d, rc, nil
}

// DeleteDocument deletes the document's row and queues the job that removes
// its index entry and then its blob, so that a backend that is down delays
// the cleanup instead of failing the request or leaving orphans.
func (s *Service) DeleteDocument(ctx context.Context, id int64) error {
	d, err := s.Store.Document(ctx, id)
	if err != nil {
		return err
	}
	job := NewJob(JobDeleteDocument, DocumentPayload{DocumentID: id, StoragePath: d.StoragePath})
	if err := s.Store.DeleteDocument(ctx, id, job); err != nil {
		return err
	}
	s.kick()
	return nil
}

// Contacts lists contacts newest first or, if q.Q is set, searches them,
// best first. It returns the page and the total number of matches.
func (s *Service) Contacts(ctx context.Context, q SearchQuery) ([]*Contact, int, error) {
	if err := checkQuery(&q); err != nil {
		return nil, 0, err
	}
	if q.Q == "" {
		cs, total, err := s.Store.Contacts(ctx, ContactFilter{Limit: q.Limit, Offset: q.Offset})
		if err != nil {
			return nil, 0, fmt.Errorf("list contacts: %w", err)
		}
		return cs, total, nil
	}
	res, err := s.Index.SearchContacts(ctx, q)
	if err != nil {
		return nil, 0, fmt.Errorf("search contacts: %w", err)
	}
	out := []*Contact{}
	if len(res.Hits) == 0 {
		return out, res.Total, nil
	}
	ids := make([]int64, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.ID
	}
	cs, _, err := s.Store.Contacts(ctx, ContactFilter{IDs: ids, Limit: len(ids)})
	if err != nil {
		return nil, 0, fmt.Errorf("contacts by id: %w", err)
	}
	byID := make(map[int64]*Contact, len(cs))
	for _, c := range cs {
		byID[c.ID] = c
	}
	total := res.Total
	for _, id := range ids {
		if c, ok := byID[id]; ok {
			out = append(out, c)
		} else {
			total--
		}
	}
	return out, max(total, len(out)), nil
}

// Ready pings every backend and returns an EUNAVAILABLE error naming the
// first one that fails.
func (s *Service) Ready(ctx context.Context) error {
	checks := []struct {
		name string
		p    Pinger
	}{
		{"database", s.Store},
		{"blob storage", s.Blobs},
		{"search", s.Index},
		{"mail", s.Mailer},
	}
	for _, c := range checks {
		if c.p == nil {
			continue
		}
		if err := c.p.Ping(ctx); err != nil {
			return Unavailable(c.name, err)
		}
	}
	return nil
}
