package http

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"selfhost.dev/edgeapp/app"
)

// multipartSlack is what an upload's body may hold beyond the file itself:
// part headers, boundaries and the document_type field.
const multipartSlack = 1 << 20

// maxFieldBytes bounds the document_type field.
const maxFieldBytes = 1 << 10

// uploadResponse is the answer to POST /documents/upload.
type uploadResponse struct {
	ID           int64  `json:"id"`
	Filename     string `json:"filename"`
	DocumentType string `json:"document_type"`
	Status       string `json:"status"`
	StoragePath  string `json:"storage_path"`
	Size         int64  `json:"size"`
	SHA256       string `json:"sha256"`
	// TextStatus is always "pending" here: the outbox extracts the text
	// after the answer; GET /documents/{id} shows what became of it.
	TextStatus string `json:"text_status"`
}

// handleUpload streams the "file" part of a multipart body straight into
// the blob store: the file is never held in memory or spooled by us. The
// "document_type" field may come before the file part (as it does when
// listed first in an HTML form or with curl -F), and is then checked before
// any byte is stored, or after it: the file is then staged under a
// provisional key and the document committed when the type arrives. Every
// failure, including a body that ends without a type, removes the staged
// file.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	limit := s.Service.UploadLimit() + multipartSlack
	if r.ContentLength > limit {
		// Refused on its headers: a client that sent Expect: 100-continue
		// gets this answer without sending the body.
		s.writeError(w, r, &http.MaxBytesError{Limit: limit})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	mr, err := r.MultipartReader()
	if err != nil {
		s.writeError(w, r, app.Errorf(app.EINVALID, "expected a multipart/form-data body with a \"file\" part and a \"document_type\" field"))
		return
	}
	var (
		docType  string
		haveType bool
		staged   *app.StagedUpload
	)
	defer func() {
		if staged != nil {
			staged.Abort(r.Context()) // a no-op once committed
		}
	}()
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				s.writeError(w, r, err)
				return
			}
			s.writeError(w, r, &app.Error{Code: app.EINVALID, Message: "malformed multipart body", Err: err})
			return
		}
		switch p.FormName() {
		case "document_type":
			b, err := io.ReadAll(io.LimitReader(p, maxFieldBytes+1))
			if err != nil {
				s.writeError(w, r, &app.Error{Code: app.EINVALID, Message: "malformed multipart body", Err: err})
				return
			}
			if len(b) > maxFieldBytes {
				s.writeError(w, r, app.Errorf(app.EINVALID, "document_type must be at most %d bytes", maxFieldBytes))
				return
			}
			docType, haveType = string(b), true
			if staged != nil {
				s.commitUpload(w, r, staged, docType)
				return
			}
			if err := app.CheckDocumentType(docType); err != nil {
				s.writeError(w, r, err)
				return
			}
		case "file":
			if staged != nil {
				s.writeError(w, r, app.Errorf(app.EINVALID, "only one \"file\" part is allowed"))
				return
			}
			staged, err = s.Service.StageDocument(r.Context(), p.FileName(), p)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			if haveType {
				s.commitUpload(w, r, staged, docType)
				return
			}
		default:
			// Other fields are ignored, as forms often carry a submit button's.
		}
	}
	if staged != nil {
		s.writeError(w, r, app.Errorf(app.EINVALID, "missing \"document_type\" field"))
		return
	}
	s.writeError(w, r, app.Errorf(app.EINVALID, "missing \"file\" part"))
}

// commitUpload records a staged file as a document of type docType and
// answers 201; on failure Commit has already removed the file.
func (s *Server) commitUpload(w http.ResponseWriter, r *http.Request, staged *app.StagedUpload, docType string) {
	d, err := staged.Commit(r.Context(), docType)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.Metrics != nil {
		s.Metrics.uploads.Inc()
	}
	writeJSON(w, http.StatusCreated, uploadResponse{
		ID: d.ID, Filename: d.Filename, DocumentType: d.DocumentType, Status: "uploaded",
		StoragePath: d.StoragePath, Size: d.Size, SHA256: d.SHA256, TextStatus: d.TextStatus,
	})
}

// searchResponse is the answer to GET /documents/search.
type searchResponse struct {
	Results          []searchResult `json:"results"`
	Query            string         `json:"query"`
	Total            int            `json:"total"`
	ProcessingTimeMS int64          `json:"processing_time_ms"`
}

type searchResult struct {
	ID           int64     `json:"id"`
	Filename     string    `json:"filename"`
	DocumentType string    `json:"document_type"`
	StoragePath  string    `json:"storage_path"`
	Size         int64     `json:"size"`
	CreatedAt    time.Time `json:"created_at"`
	RankingScore float64   `json:"ranking_score"`
	Snippet      string    `json:"snippet"`
	TextStatus   string    `json:"text_status"`
	TextReason   string    `json:"text_reason,omitempty"`
}

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	q, err := searchQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q.DocumentType = r.URL.Query().Get("document_type")
	res, err := s.Service.SearchDocuments(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := searchResponse{Results: make([]searchResult, len(res.Hits)), Query: q.Q, Total: res.Total, ProcessingTimeMS: res.Took.Milliseconds()}
	for i, h := range res.Hits {
		out.Results[i] = searchResult{
			ID: h.ID, Filename: h.Filename, DocumentType: h.DocumentType, StoragePath: h.StoragePath,
			Size: h.Size, CreatedAt: h.CreatedAt, RankingScore: h.Score, Snippet: h.Snippet,
			TextStatus: h.TextStatus, TextReason: h.TextReason,
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// documentID reads the {id} path segment.
func documentID(r *http.Request) (int64, error) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return 0, app.Errorf(app.EINVALID, "document id must be a positive integer, not %q", s)
	}
	return id, nil
}

func (s *Server) handleDocument(w http.ResponseWriter, r *http.Request) {
	id, err := documentID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d, err := s.Service.Document(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// handleDownload streams the file. Served with http.ServeContent when the
// blob can seek (local files), so that ranges and If-Modified-Since work.
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	id, err := documentID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d, rc, err := s.Service.OpenDocument(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", d.ContentType)
	h.Set("Content-Disposition", contentDisposition(d.Filename))
	h.Set("X-Content-Type-Options", "nosniff")
	// Uploaded content must never run as a page of this origin.
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if rs, ok := rc.(io.ReadSeeker); ok {
		http.ServeContent(w, r, "", d.CreatedAt, rs)
		return
	}
	h.Set("Content-Length", strconv.FormatInt(d.Size, 10))
	w.WriteHeader(http.StatusOK)
	io.Copy(w, rc)
}

// contentDisposition makes an attachment header for a client-chosen name.
// mime.FormatMediaType quotes and escapes it, switching to RFC 2231
// (a filename* parameter) for non-ASCII names; those also get a plain
// ASCII filename first, for clients that know only that form.
func contentDisposition(name string) string {
	cd := mime.FormatMediaType("attachment", map[string]string{"filename": name})
	if cd == "" {
		return "attachment"
	}
	if !strings.Contains(cd, "filename*=") {
		return cd
	}
	ascii := strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f {
			return '_'
		}
		return r
	}, name)
	return mime.FormatMediaType("attachment", map[string]string{"filename": ascii}) + strings.TrimPrefix(cd, "attachment")
}

// deleteResponse is the answer to DELETE /documents/{id}.
type deleteResponse struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	id, err := documentID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Service.DeleteDocument(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, deleteResponse{ID: id, Status: "deleted"})
}
