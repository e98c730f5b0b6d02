package apptest

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"testing"
)

func TestPDFCrossReferences(t *testing.T) {
	b := PDF("Hello (world) \\ with a long line that has to be wrapped because it goes on and on beyond eighty characters. Ünïcode.")
	if !bytes.HasPrefix(b, []byte("%PDF-1.4\n")) || !bytes.HasSuffix(b, []byte("%%EOF\n")) {
		t.Fatalf("not framed as a PDF:\n%s", b)
	}
	m := regexp.MustCompile(`startxref\n(\d+)\n`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no startxref")
	}
	xref, _ := strconv.Atoi(string(m[1]))
	if !bytes.HasPrefix(b[xref:], []byte("xref\n0 6\n")) {
		t.Fatalf("startxref %d does not point at the xref table", xref)
	}
	entries := regexp.MustCompile(`(\d{10}) 00000 n \n`).FindAllSubmatch(b[xref:], -1)
	if len(entries) != 5 {
		t.Fatalf("%d in-use xref entries, want 5", len(entries))
	}
	for i, e := range entries {
		off, _ := strconv.Atoi(string(e[1]))
		if want := fmt.Sprintf("%d 0 obj\n", i+1); !bytes.HasPrefix(b[off:], []byte(want)) {
			t.Errorf("xref entry %d points at %q, want %q", i+1, b[off:off+10], want)
		}
	}
	length := regexp.MustCompile(`/Length (\d+) /Filter /FlateDecode >>\nstream\n`).FindSubmatchIndex(b)
	if length == nil {
		t.Fatal("no compressed content stream")
	}
	n, _ := strconv.Atoi(string(b[length[2]:length[3]]))
	if !bytes.HasPrefix(b[length[1]+n:], []byte("\nendstream")) {
		t.Errorf("stream /Length %d does not end at endstream", n)
	}
	zr, err := zlib.NewReader(bytes.NewReader(b[length[1] : length[1]+n]))
	if err != nil {
		t.Fatal(err)
	}
	content, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`(Hello \(world\) \\ with a long line`, `Tj T*`, `?n?code.`} {
		if !bytes.Contains(content, []byte(want)) {
			t.Errorf("content %q lacks %q", content, want)
		}
	}
}
