// Package extract implements app.TextExtractor for PDF, plain text and
// Markdown. PDFs are parsed by github.com/ledongthuc/pdf (pure Go); the
// page content is interpreted here (pdfcontent.go) into positioned glyphs
// and laid out into words and lines (layout.go), within bounds that hold
// against hostile files (budget.go).
package extract

import (
	"context"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

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

	// The bounds on one PDF, which keep a hostile file (a decompression
	// bomb, a loop of objects, a million pages) from taking more than a
	// few seconds and a few MiB: crossing one fails the document with
	// EINVALID saying which.
	//
	// MaxPages caps the pages read. If zero, DefaultMaxPages.
	MaxPages int
	// MaxReadBytes caps the bytes read from the file, counting re-reads.
	// If zero, DefaultMaxReadBytes.
	MaxReadBytes int64
	// MaxStreamBytes caps the decompressed bytes of page content and font
	// maps. If zero, DefaultMaxStreamBytes.
	MaxStreamBytes int64
	// MaxMemory caps the growth of the heap while one PDF is read. If
	// zero, DefaultMaxMemory.
	MaxMemory int64
	// Timeout caps the time spent on one PDF. If zero, DefaultTimeout.
	Timeout time.Duration
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
		return e.pdfText(ctx, r, size, pdfLimits{
			text:      limit,
			pages:     intOr(e.MaxPages, DefaultMaxPages),
			readBytes: int64Or(e.MaxReadBytes, DefaultMaxReadBytes),
			streamMax: int64Or(e.MaxStreamBytes, DefaultMaxStreamBytes),
			memory:    int64Or(e.MaxMemory, DefaultMaxMemory),
		})
	default:
		return "", app.Errorf(app.EUNSUPPORTED, "cannot extract text from %s", mediaType)
	}
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

func intOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func int64Or(v, def int64) int64 {
	if v > 0 {
		return v
	}
	return def
}

func durationOr(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

var _ app.TextExtractor = (*Extractor)(nil)
