package extract_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"selfhost.dev/edgeapp/app/apptest"
	"selfhost.dev/edgeapp/app/extract"
)

// twoColumns is a page with a title across it and two columns of n lines,
// drawn line by line across both columns (interleaved) or a column after
// the other; each line is drawn a glyph at a time with explicit
// positions and no spaces, as Skia and pdfTeX do.
func twoColumns(n int, interleaved bool) []byte {
	var c strings.Builder
	show := func(x, y float64, text string) {
		// Helvetica is not embedded and has no Widths: every glyph is 0.5
		// em wide to the extractor; place glyphs on that grid, and put
		// 0.3 em between words.
		fmt.Fprintf(&c, "BT /F1 10 Tf %g %g Td [", x, y)
		for i, w := range strings.Fields(text) {
			if i > 0 {
				c.WriteString(" -300 ")
			}
			fmt.Fprintf(&c, "(%s)", w)
		}
		c.WriteString("] TJ ET\n")
	}
	show(72, 760, "A title that runs across both columns of the page")
	left := func(i int) { show(72, 740-float64(i)*12, fmt.Sprintf("left%d alpha beta", i)) }
	right := func(i int) { show(320, 740-float64(i)*12, fmt.Sprintf("right%d gamma delta", i)) }
	if interleaved {
		for i := range n {
			left(i)
			right(i)
		}
	} else {
		for i := range n {
			left(i)
		}
		for i := range n {
			right(i)
		}
	}
	show(72, 740-float64(n+2)*12, "A footer that runs across both columns of the page")
	return apptest.PDFObjects(catalog, onePage, pageWith, flateStream("", []byte(c.String())), helv)
}

func TestTwoColumns(t *testing.T) {
	for _, interleaved := range []bool{false, true} {
		b := twoColumns(20, interleaved)
		got, err := extract.New().ExtractText(t.Context(), bytes.NewReader(b), int64(len(b)), "application/pdf")
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		want = append(want, "A title that runs across both columns of the page")
		for i := range 20 {
			want = append(want, fmt.Sprintf("left%d alpha beta", i))
		}
		for i := range 20 {
			want = append(want, fmt.Sprintf("right%d gamma delta", i))
		}
		want = append(want, "A footer that runs across both columns of the page")
		if w := strings.Join(want, "\n"); got != w {
			t.Errorf("interleaved=%v: got\n%s\nwant\n%s", interleaved, got, w)
		}
	}
}

// TestWords checks word breaks, ligatures and hyphenation on a page drawn
// as TeX draws it: no space glyphs, words apart by positioning alone.
func TestWords(t *testing.T) {
	content := "BT /F1 10 Tf 72 700 Td [(The)-300(speci)(\xfc)-10(cation)-300(is)-300(hy-)] TJ 0 -12 Td [(phenated)-300(here.)] TJ ET"
	b := apptest.PDFObjects(catalog, onePage, pageWith, flateStream("", []byte(content)),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding << /Differences [252 /fi] >> >>")
	got, err := extract.New().ExtractText(t.Context(), bytes.NewReader(b), int64(len(b)), "application/pdf")
	if err != nil {
		t.Fatal(err)
	}
	if want := "The specification is\nhyphenated here."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
