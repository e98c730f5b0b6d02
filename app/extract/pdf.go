package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ledongthuc/pdf"

	"selfhost.dev/edgeapp/app"
)

// pdfLimits are the bounds on one PDF, resolved from the Extractor's fields.
type pdfLimits struct {
	text, pages                  int
	readBytes, streamMax, memory int64
}

// pdfText extracts the text of a PDF page by page, laying each page's
// glyphs out into words and lines (layout.go). Whatever the file holds, it
// returns within the budget's time and memory: a bound crossed, or a panic
// of the PDF library, is EINVALID with a message saying which.
func (e *Extractor) pdfText(ctx context.Context, r io.ReaderAt, size int64, lim pdfLimits) (text string, err error) {
	b := newBudget(ctx, durationOr(e.Timeout, DefaultTimeout), lim.readBytes, lim.streamMax, lim.memory)
	defer func() {
		if p := recover(); p != nil {
			text, err = "", pdfError(ctx, p)
		}
	}()
	rd, err := pdf.NewReader(&budgetReaderAt{r: r, b: b}, size)
	if err != nil {
		return "", pdfError(ctx, err)
	}
	var out strings.Builder
	fonts := &fontCache{b: b, fonts: map[string]*font{}}
	pages := 0
	var walk func(node pdf.Value, res pdf.Value, depth int)
	walk = func(node pdf.Value, res pdf.Value, depth int) {
		if out.Len() >= lim.text {
			return
		}
		if r := node.Key("Resources"); !r.IsNull() {
			res = r
		}
		kids := node.Key("Kids")
		if node.Key("Type").Name() == "Pages" || kids.Kind() == pdf.Array {
			// A page tree deeper than this is a loop (or hostile): real
			// trees are a few levels deep.
			if depth > 32 {
				panic(budgetError{"the PDF's page tree is too deep (a loop?)"})
			}
			for i := 0; i < kids.Len() && out.Len() < lim.text; i++ {
				walk(kids.Index(i), res, depth+1)
			}
			return
		}
		if pages++; pages > lim.pages {
			panic(budgetError{fmt.Sprintf("the PDF has more than %d pages", lim.pages)})
		}
		b.check()
		t := pageText(node, res, b, fonts, 2*(lim.text-out.Len())+1024)
		if t != "" {
			if out.Len() > 0 {
				out.WriteString("\n\n")
			}
			out.WriteString(t)
		}
	}
	walk(rd.Trailer().Key("Root").Key("Pages"), pdf.Value{}, 0)
	return clean(strings.TrimSpace(out.String()), lim.text), nil
}

// pageText is the laid-out text of one page. A page the library cannot
// read (an unknown filter, a broken stream) is skipped rather than failing
// the document; running out of budget still ends it.
func pageText(page, res pdf.Value, b *budget, fonts *fontCache, textLeft int) (text string) {
	p := &pageReader{b: b, fonts: fonts, textLeft: textLeft}
	func() {
		defer func() {
			if r := recover(); r != nil {
				switch r.(type) {
				case budgetError, ctxError:
					panic(r)
				}
				// Keep what was read before the page broke.
			}
		}()
		p.run(page.Key("Contents"), res, identity, 0)
	}()
	return layout(p.glyphs)
}

// pdfError turns what stopped the reading of a PDF into an error.
func pdfError(ctx context.Context, p any) error {
	var be budgetError
	var ce ctxError
	if err, ok := p.(error); ok {
		switch {
		case errors.As(err, &ce):
			p = ce
		case errors.As(err, &be):
			p = be
		}
	}
	switch p := p.(type) {
	case ctxError:
		return fmt.Errorf("extract pdf text: %w", p.err)
	case budgetError:
		return &app.Error{Code: app.EINVALID, Message: p.what}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("extract pdf text: %w", err)
	}
	err, ok := p.(error)
	if !ok {
		err = fmt.Errorf("%v", p)
	}
	return &app.Error{Code: app.EINVALID, Message: "the PDF could not be read", Err: fmt.Errorf("pdf: %w", err)}
}
