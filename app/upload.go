package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// StagedUpload is a file already streamed to the blob store whose document
// row is not written yet: its key is provisional until Commit succeeds.
// Exactly one of Commit or Abort must follow; every failure of Commit
// removes the blob itself, so that a blob never outlives a failed upload.
//
// It lets a multipart upload put its file part before the document_type
// field without the file being held in memory or spooled to local disk: the
// bytes go to the blob store as they arrive and the type is checked when it
// arrives.
type StagedUpload struct {
	s    *Service
	doc  Document // everything but DocumentType, ID and CreatedAt
	done bool
}

// StageDocument streams r into the blob store under a new random key while
// counting, hashing and sniffing it, as UploadDocument does, but leaves the
// document type for Commit. Nothing is kept if it fails: r larger than
// MaxUploadBytes (ETOOLARGE), a content type not allowed (EUNSUPPORTED), an
// empty file or a bad filename (EVALIDATION), r failing (EINVALID) or the
// blob store failing.
func (s *Service) StageDocument(ctx context.Context, filename string, r io.Reader) (*StagedUpload, error) {
	u := &StagedUpload{s: s, doc: Document{Filename: cleanFilename(filename)}}
	if err := checkFilename(u.doc.Filename); err != nil {
		return nil, err
	}

	// Sniff from the first bytes, then put them back in front of the rest.
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(r, head)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		err = nil
	case err != nil:
		return nil, readError(err)
	}
	head = head[:n]
	if n == 0 {
		return nil, &Error{Code: EVALIDATION, Message: "validation failed", Fields: map[string]string{"file": "is empty"}}
	}
	u.doc.ContentType = sniffContentType(u.doc.Filename, head)
	if !slices.Contains(s.allowedTypes(), u.doc.ContentType) {
		return nil, Errorf(EUNSUPPORTED, "unsupported file type %s: allowed are %s", u.doc.ContentType, strings.Join(s.allowedTypes(), ", "))
	}

	key, err := newBlobKey(u.doc.ContentType)
	if err != nil {
		return nil, err
	}
	body := &uploadReader{r: io.MultiReader(bytes.NewReader(head), r), h: sha256.New(), max: s.UploadLimit()}
	if err := s.Blobs.Put(ctx, key, body, -1, u.doc.ContentType); err != nil {
		// Put promises to keep nothing when it fails; delete anyway in
		// case the failure came after the object was committed.
		s.deleteBlob(ctx, key)
		switch {
		case body.tooLarge:
			return nil, Errorf(ETOOLARGE, "file is larger than the limit of %d bytes", body.max)
		case body.err != nil:
			return nil, readError(body.err)
		}
		return nil, fmt.Errorf("put blob: %w", err)
	}
	u.doc.Size = body.n
	u.doc.SHA256 = hex.EncodeToString(body.h.Sum(nil))
	u.doc.StoragePath = key
	return u, nil
}

// Commit validates documentType and records the document and the job that
// indexes it in one transaction. On any failure the staged blob is removed
// and nothing is kept; the StagedUpload is spent either way.
func (u *StagedUpload) Commit(ctx context.Context, documentType string) (*Document, error) {
	if u.done {
		return nil, Errorf(EINTERNAL, "staged upload already settled")
	}
	u.done = true
	d := u.doc
	d.DocumentType = strings.TrimSpace(documentType)
	if err := d.validateMeta(); err != nil {
		u.s.deleteBlob(ctx, d.StoragePath)
		return nil, err
	}
	if err := u.s.Store.CreateDocument(ctx, &d, NewJob(JobIndexDocument, DocumentPayload{})); err != nil {
		// A commit whose answer was lost (the connection or ctx cut during
		// COMMIT) may have stored the row after all: removing the file then
		// would leave a document that cannot be downloaded. An orphan file
		// is the lesser harm.
		if !u.s.referenced(ctx, d.StoragePath) {
			u.s.deleteBlob(ctx, d.StoragePath)
		}
		return nil, fmt.Errorf("create document: %w", err)
	}
	// The row is stored with its text not extracted yet: the outbox job
	// just committed will set indexed, no_text or failed.
	d.TextStatus, d.TextReason = TextPending, ""
	u.s.kick()
	return &d, nil
}

// referenced reports whether a document row is known to hold key, asked
// even if ctx was cancelled. A store that cannot tell (no
// StoragePathStore) or fails to answer counts as no: the usual reason for
// a failed CreateDocument is that nothing was written.
func (s *Service) referenced(ctx context.Context, key string) bool {
	ps, ok := s.Store.(StoragePathStore)
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	found, err := ps.DocumentStoragePaths(ctx, []string{key})
	return err == nil && found[key]
}

// Abort removes the staged blob, even if ctx is already cancelled (the
// client went away). It does nothing after Commit or a previous Abort.
func (u *StagedUpload) Abort(ctx context.Context) {
	if u.done {
		return
	}
	u.done = true
	u.s.deleteBlob(ctx, u.doc.StoragePath)
}

// Key returns the staged blob's key, for logs and tests.
func (u *StagedUpload) Key() string { return u.doc.StoragePath }

// CheckDocumentType validates a document type on its own, so that a type
// sent before the file is refused before any byte is stored.
func CheckDocumentType(documentType string) error {
	d := Document{Filename: "x", DocumentType: strings.TrimSpace(documentType)}
	return d.validateMeta()
}

func checkFilename(name string) error {
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return &Error{Code: EVALIDATION, Message: "validation failed", Fields: map[string]string{"filename": "is required"}}
	case n > MaxFilename:
		return &Error{Code: EVALIDATION, Message: "validation failed", Fields: map[string]string{"filename": fmt.Sprintf("must be at most %d characters", MaxFilename)}}
	}
	return nil
}
