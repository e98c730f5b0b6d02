package extract_test

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/apptest"
	"selfhost.dev/edgeapp/app/extract"
)

func extractText(t *testing.T, e *extract.Extractor, b []byte, contentType string) (string, error) {
	t.Helper()
	return e.ExtractText(t.Context(), bytes.NewReader(b), int64(len(b)), contentType)
}

func TestPDF(t *testing.T) {
	sentence := "The quick brown fox (really) jumps over the lazy dog."
	long := strings.Repeat("Lorem ipsum dolor sit amet. ", 10)
	got, err := extractText(t, extract.New(), apptest.PDF(sentence+"\n"+long), "application/pdf")
	if err != nil {
		t.Fatalf("ExtractText: %v", err)
	}
	if !strings.Contains(got, sentence) {
		t.Errorf("PDF text %q lacks %q", got, sentence)
	}
	if words := strings.Fields(got); strings.Count(strings.Join(words, " "), "Lorem ipsum") != 10 {
		t.Errorf("PDF text %q lacks the wrapped lines", got)
	}
}

func TestText(t *testing.T) {
	e := extract.New()
	for _, tc := range []struct{ in, contentType, want string }{
		{"hello\nworld", "text/plain", "hello\nworld"},
		{"# Title\n\n*émphasis*", "text/markdown; charset=utf-8", "# Title\n\n*émphasis*"},
		{"bad \xff\xfe bytes", "text/plain", "bad \uFFFD bytes"},
		{"nul\x00and\x07bell\r\n", "text/plain; charset=UTF-8", "nul and bell\n"},
	} {
		got, err := extractText(t, e, []byte(tc.in), tc.contentType)
		if err != nil || got != tc.want {
			t.Errorf("ExtractText(%q, %s) = %q, %v; want %q", tc.in, tc.contentType, got, err, tc.want)
		}
	}
}

func TestCap(t *testing.T) {
	e := &extract.Extractor{MaxText: 10}
	got, err := extractText(t, e, []byte("ééééééééé"), "text/plain") // 18 bytes
	if err != nil || got != "ééééé" || !utf8.ValidString(got) {
		t.Errorf("capped text = %q, %v; want 5 whole characters", got, err)
	}
	got, err = extractText(t, e, apptest.PDF("0123456789 0123456789 0123456789"), "application/pdf")
	if err != nil || len(got) > 10 {
		t.Errorf("capped PDF text = %q (%d bytes), %v; want at most 10 bytes", got, len(got), err)
	}
	big := bytes.Repeat([]byte("a"), extract.DefaultMaxText+100)
	got, err = extractText(t, extract.New(), big, "text/plain")
	if err != nil || len(got) != extract.DefaultMaxText {
		t.Errorf("default cap: got %d bytes, %v; want %d", len(got), err, extract.DefaultMaxText)
	}
}

func TestBadInput(t *testing.T) {
	e := extract.New()
	for _, tc := range []struct {
		in          []byte
		contentType string
		code        app.Code
	}{
		{[]byte("GIF89a"), "image/gif", app.EUNSUPPORTED},
		{[]byte("x"), "", app.EUNSUPPORTED},
		{[]byte("x"), "not a / type;;", app.EUNSUPPORTED},
		{[]byte("not a pdf at all"), "application/pdf", app.EINVALID},
		{[]byte("%PDF-1.4\n"), "application/pdf", app.EINVALID},
		{apptest.PDF("cut short")[:200], "application/pdf", app.EINVALID},
	} {
		_, err := extractText(t, e, tc.in, tc.contentType)
		if app.ErrorCode(err) != tc.code {
			t.Errorf("ExtractText(%.20q, %q) = %v, want code %s", tc.in, tc.contentType, err, tc.code)
		}
	}
}
