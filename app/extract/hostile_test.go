package extract_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/apptest"
	"selfhost.dev/edgeapp/app/extract"
)

// flateStream is a stream object holding data compressed.
func flateStream(dict string, data []byte) string {
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestSpeed)
	zw.Write(data)
	zw.Close()
	return fmt.Sprintf("<< %s /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream", dict, z.Len(), z.String())
}

const (
	catalog  = "<< /Type /Catalog /Pages 2 0 R >>"
	onePage  = "<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
	pageWith = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> /XObject << /X1 6 0 R >> >> /Contents 4 0 R >>"
	helv     = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
)

// TestHostile feeds crafted PDFs that would take unbounded time or memory
// from a naive reader: each must end within its bound with EINVALID saying
// why, or with the text it could read.
func TestHostile(t *testing.T) {
	// 4 MiB of operands without an operator, compressed to ~20 KiB: a
	// reader that collects operands until an operator comes holds them all.
	arrayBomb := flateStream("", append([]byte("BT /F1 12 Tf 72 720 Td [("), bytes.Repeat([]byte("0 "), 2<<20)...))
	// A well-formed stream drawing 300 000 words.
	textBomb := flateStream("", append([]byte("BT /F1 12 Tf 72 720 Td "), bytes.Repeat([]byte("(word ) Tj "), 300_000)...))
	selfForm := "<< /Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << /XObject << /X1 6 0 R >> >> /Length 40 >>\nstream\n/X1 Do /X1 Do /X1 Do /X1 Do /X1 Do /X1 Do\nendstream"
	manyKids := "<< /Type /Pages /Count 10000 /Kids [" + strings.Repeat("3 0 R ", 10_000) + "] >>"
	for _, tc := range []struct {
		name string
		e    *extract.Extractor
		pdf  []byte
		want string // in the error's message; "" for success
		text string // in the text, on success
	}{
		{"decompression bomb over the stream cap", &extract.Extractor{MaxStreamBytes: 1 << 20},
			apptest.PDFObjects(catalog, onePage, pageWith, arrayBomb, helv), "decompresses to more than", ""},
		{"operands without an operator, within the cap", extract.New(),
			apptest.PDFObjects(catalog, onePage, pageWith, arrayBomb, helv), "", ""},
		{"text over the output cap", &extract.Extractor{MaxText: 1000},
			apptest.PDFObjects(catalog, onePage, pageWith, textBomb, helv), "", ""},
		{"page tree loop", extract.New(),
			apptest.PDFObjects(catalog, "<< /Type /Pages /Kids [2 0 R] /Count 1 >>"), "page tree is too deep", ""},
		{"page tree through a child back to its parent", extract.New(),
			apptest.PDFObjects(catalog, "<< /Type /Pages /Kids [3 0 R] /Count 2 >>", "<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>"), "page tree is too deep", ""},
		{"one page referenced 10000 times", &extract.Extractor{MaxPages: 100},
			apptest.PDFObjects(catalog, manyKids, pageWith, flateStream("", []byte("BT /F1 12 Tf (x) Tj ET")), helv), "more than 100 pages", ""},
		{"a form that draws itself six times", extract.New(),
			apptest.PDFObjects(catalog, onePage, pageWith, flateStream("", []byte("/X1 Do BT /F1 12 Tf 72 720 Td (after) Tj ET")), helv, selfForm), "", "after"},
		{"a page that takes too long", &extract.Extractor{Timeout: 10 * time.Millisecond},
			apptest.PDFObjects(catalog, onePage, pageWith, textBomb, helv), "took too long", ""},
		{"object stream that extends itself", &extract.Extractor{MaxReadBytes: 1 << 20},
			buildObjStmLoop(), "read too much", ""},
		{"object stream bomb", &extract.Extractor{MaxMemory: 8 << 20},
			buildObjStmBomb(), "too much memory", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			text, err := tc.e.ExtractText(t.Context(), bytes.NewReader(tc.pdf), int64(len(tc.pdf)), "application/pdf")
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("took %v", took)
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ExtractText: %v", err)
				}
				if max := tc.e.MaxText; max > 0 && len(text) > max {
					t.Errorf("text is %d bytes, cap %d", len(text), max)
				}
				if !strings.Contains(text, tc.text) {
					t.Errorf("text %.100q lacks %q", text, tc.text)
				}
				return
			}
			if app.ErrorCode(err) != app.EINVALID || !strings.Contains(app.ErrorMessage(err), tc.want) {
				t.Fatalf("ExtractText = %v; want EINVALID saying %q", err, tc.want)
			}
		})
	}
}

// buildObjStmLoop makes a PDF whose catalog lives in an object stream that
// "Extends" itself and does not hold it: the PDF library searches the chain
// of streams without end.
func buildObjStmLoop() []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.5\n")
	off2 := b.Len()
	body := "9 0 << >>"
	fmt.Fprintf(&b, "2 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Extends 2 0 R /Length %d >>\nstream\n%s\nendstream\nendobj\n", len(body), body)
	// A cross-reference stream saying object 1 is in object stream 2.
	xrefOff := b.Len()
	rows := []byte{
		0, 0, 0, 0, // 0: free
		2, 0, 2, 0, // 1: in stream 2, index 0
		1, byte(off2 >> 8), byte(off2), 0, // 2: at off2
		1, byte(xrefOff >> 8), byte(xrefOff), 0, // 3: this stream
	}
	fmt.Fprintf(&b, "3 0 obj\n<< /Type /XRef /Size 4 /W [1 2 1] /Root 1 0 R /Length %d >>\nstream\n%s\nendstream\nendobj\n", len(rows), rows)
	fmt.Fprintf(&b, "startxref\n%d\n%%%%EOF\n", xrefOff)
	return b.Bytes()
}

// buildObjStmBomb makes a PDF whose catalog, in a compressed object
// stream, is an array of a million numbers: the PDF library parses it
// whole, into some 40 MiB. The numbers are random so that the stream
// stays a few MiB and the heap is checked many times while it is read.
func buildObjStmBomb() []byte {
	var data bytes.Buffer
	data.WriteString("1 0\n[")
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 1 << 20 {
		data.WriteString(strconv.Itoa(rnd.IntN(1e6)))
		data.WriteByte(' ')
	}
	data.WriteString("]")
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestSpeed)
	zw.Write(data.Bytes())
	zw.Close()
	var b bytes.Buffer
	b.WriteString("%PDF-1.5\n")
	off2 := b.Len()
	fmt.Fprintf(&b, "2 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream\nendobj\n", z.Len(), z.Bytes())
	xrefOff := b.Len()
	rows := []byte{
		0, 0, 0, 0, 0,
		2, 0, 0, 2, 0,
		1, byte(off2 >> 16), byte(off2 >> 8), byte(off2), 0,
		1, byte(xrefOff >> 16), byte(xrefOff >> 8), byte(xrefOff), 0,
	}
	fmt.Fprintf(&b, "3 0 obj\n<< /Type /XRef /Size 4 /W [1 3 1] /Root 1 0 R /Length %d >>\nstream\n%s\nendstream\nendobj\n", len(rows), rows)
	fmt.Fprintf(&b, "startxref\n%d\n%%%%EOF\n", xrefOff)
	return b.Bytes()
}

// TestCancel checks that a cancelled extraction says so (the outbox
// retries it) rather than calling the PDF bad.
func TestCancel(t *testing.T) {
	b, err := readCorpus("libtasn1-pdftex.pdf")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = extract.New().ExtractText(ctx, bytes.NewReader(b), int64(len(b)), "application/pdf")
	if !errors.Is(err, context.Canceled) || app.ErrorCode(err) == app.EINVALID {
		t.Fatalf("ExtractText with a cancelled context = %v; want context.Canceled, not EINVALID", err)
	}
}
