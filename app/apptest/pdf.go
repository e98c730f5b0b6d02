package apptest

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"strings"
)

// PDF returns a minimal one-page PDF 1.4 file that shows text in Helvetica,
// written object by object with a correct cross-reference table and a
// Flate-compressed content stream, so tests can upload a real PDF without
// committing a binary fixture.
//
// The text is wrapped into lines of at most 80 characters. Characters
// outside printable ASCII are replaced by '?', since the standard fonts'
// encoding cannot show them without an embedded font.
func PDF(text string) []byte {
	var content bytes.Buffer
	content.WriteString("BT\n/F1 12 Tf\n14 TL\n72 720 Td\n")
	for _, line := range wrapLines(text, 80) {
		fmt.Fprintf(&content, "(%s) Tj T*\n", pdfString(line))
	}
	content.WriteString("ET\n")
	var stream bytes.Buffer // Flate-compressed, as nearly every real PDF's streams are
	zw := zlib.NewWriter(&stream)
	zw.Write(content.Bytes()) // writes to a bytes.Buffer cannot fail
	zw.Close()

	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
		fmt.Sprintf("<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream", stream.Len(), stream.String()),
	}
	return PDFObjects(objects...)
}

// PDFObjects writes objects as a PDF file's objects 1..n, the first being
// the catalog, with a correct cross-reference table and trailer: the frame
// around hand-written objects, for tests of what a parser makes of them.
func PDFObjects(objects ...string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n") // a binary comment marks the file as binary to transfer tools
	offsets := make([]int, len(objects))
	for i, obj := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, obj)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off) // each entry is exactly 20 bytes
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}

// wrapLines splits text into lines of at most width characters at spaces.
func wrapLines(text string, width int) []string {
	var lines []string
	for _, para := range strings.Split(text, "\n") {
		line := ""
		for _, w := range strings.Fields(para) {
			if line != "" && len(line)+1+len(w) > width {
				lines = append(lines, line)
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += w
		}
		lines = append(lines, line)
	}
	return lines
}

// pdfString escapes s for a PDF literal string.
func pdfString(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
