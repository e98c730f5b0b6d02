// Package extract implements app.TextExtractor for PDF (with
// github.com/ledongthuc/pdf, pure Go), plain text and Markdown.
package extract

import (
	"context"
	"fmt"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/ledongthuc/pdf"

	"selfhost.dev/edgeapp/app"
)

// DefaultMaxText is the default cap on extracted text: 1 MiB of UTF-8 is
// several hundred pages, more than anyone searches, and it bounds the
// memory and index space one upload can take.
const DefaultMaxText = 1 << 20

// Extractor pulls searchable text out of uploaded files. It implements
// app.TextExtractor.
//
// The text is valid UTF-8 (invalid bytes become U+FFFD), has no control
// characters other than tab and newline (NUL cannot be stored in
// PostgreSQL text), and is cut at MaxText bytes on a character boundary.
type Extractor struct {
	// MaxText caps the extracted text in bytes. If zero, DefaultMaxText is used.
	MaxText int
}

// New returns an Extractor with the default cap.
func New() *Extractor { return &Extractor{} }

// ExtractText returns the text of the size bytes in r, read according to
// contentType: application/pdf, text/plain or text/markdown (parameters such
// as charset are ignored; text is read as UTF-8). Other types are
// EUNSUPPORTED; a PDF that cannot be read is EINVALID.
func (e *Extractor) ExtractText(ctx context.Context, r io.ReaderAt, size int64, contentType string) (string, error) {
	limit := e.MaxText
	if limit <= 0 {
		limit = DefaultMaxText
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", app.Errorf(app.EUNSUPPORTED, "cannot extract text from content type %q", contentType)
	}
	switch mediaType {
	case "text/plain", "text/markdown", "text/x-markdown":
		b, err := io.ReadAll(io.NewSectionReader(r, 0, min(size, int64(limit))))
		if err != nil {
			return "", fmt.Errorf("extract text: %w", err)
		}
		return clean(string(b), limit), nil
	case "application/pdf":
		return pdfText(ctx, r, size, limit)
	default:
		return "", app.Errorf(app.EUNSUPPORTED, "cannot extract text from %s", mediaType)
	}
}

// pdfText extracts the text of every page until limit bytes, turning the
// panics the PDF reader raises on malformed files into EINVALID.
func pdfText(ctx context.Context, r io.ReaderAt, size int64, limit int) (text string, err error) {
	defer func() {
		if p := recover(); p != nil {
			text, err = "", &app.Error{Code: app.EINVALID, Message: "the PDF could not be read", Err: fmt.Errorf("pdf: %v", p)}
		}
	}()
	rd, err := pdf.NewReader(r, size)
	if err != nil {
		return "", &app.Error{Code: app.EINVALID, Message: "the PDF could not be read", Err: err}
	}
	var b strings.Builder
	for i := 1; i <= rd.NumPage() && b.Len() < limit; i++ {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("extract pdf text: %w", err)
		}
		page := rd.Page(i)
		if page.V.IsNull() {
			continue
		}
		t, err := page.GetPlainText(nil)
		if err != nil {
			return "", &app.Error{Code: app.EINVALID, Message: "the PDF could not be read", Err: fmt.Errorf("page %d: %w", i, err)}
		}
		if b.Len() > 0 && t != "" {
			b.WriteByte('\n')
		}
		b.WriteString(t)
	}
	return clean(strings.TrimSpace(b.String()), limit), nil
}

// clean makes s valid UTF-8 without control characters other than tab and
// newline, and at most limit bytes long.
func clean(s string, limit int) string {
	if len(s) > limit {
		s = s[:limit]
		// Drop a character the cut split, rather than mark it invalid.
		for i := 0; i < utf8.UTFMax && len(s) > 0; i++ {
			if r, n := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || n != 1 {
				break
			}
			s = s[:len(s)-1]
		}
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n':
			return r
		case r == '\r':
			return -1
		case r < 0x20 || r == 0x7f:
			return ' '
		}
		return r
	}, s)
}

var _ app.TextExtractor = (*Extractor)(nil)
