package extract

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Layout thresholds, in units of the font size. Word spaces in justified
// TeX text shrink to about 0.22 em; kerning between letters stays under
// about 0.1 em. PDFs rarely draw the spaces themselves, so the gap between
// glyphs is all there is to tell words apart.
const (
	wordGap     = 0.15 // a gap wider than this is a word break
	lineShift   = 0.5  // a baseline moved by more than this starts a new line
	overlapBack = 0.5  // a glyph this far left of the previous one's end starts a new line
	fakeBold    = 0.1  // the same glyph redrawn this close is one glyph
	// A gap wider than this ends a line's segment: it may be the gutter
	// between two columns drawn line by line across the page.
	segmentGap = 1.0
)

// line is a run of glyphs on one baseline, in drawing order, without a
// gap wide enough to be a gutter.
type line struct {
	y, xmin, xmax float64
	words         []string
}

// layout turns a page's glyphs, in the order the page draws them, into
// text: words from the gaps between glyphs, lines from baselines, words
// hyphenated at line ends joined, and compatibility characters (ligatures
// such as ﬁ, ﬂ; full-width forms) normalized by NFKC. Most producers draw
// text in reading order (TeX, LibreOffice and Chromium draw a column after
// the other), so drawing order is kept, unless the page has two columns
// drawn line by line across both (columns.go).
func layout(gs []glyph) string {
	if len(gs) == 0 {
		return ""
	}
	var lines []line
	var word strings.Builder
	var cur *line
	flushWord := func() {
		if word.Len() > 0 && cur != nil {
			cur.words = append(cur.words, word.String())
		}
		word.Reset()
	}
	var prev *glyph
	for i := range gs {
		g := &gs[i]
		size := g.size
		if size <= 0 || math.IsNaN(size) || math.IsInf(size, 0) {
			size = 10
		}
		if prev != nil && g.s == prev.s && math.Abs(g.x-prev.x) < fakeBold*size && math.Abs(g.y-prev.y) < fakeBold*size {
			continue
		}
		newLine := prev == nil || math.Abs(g.y-prev.y) > lineShift*size || g.x < prev.x+prev.w-overlapBack*size ||
			g.x-(prev.x+prev.w) > segmentGap*size
		switch {
		case newLine:
			flushWord()
			lines = append(lines, line{y: g.y, xmin: g.x, xmax: g.x})
			cur = &lines[len(lines)-1]
		case g.s == " " || g.x-(prev.x+prev.w) > wordGap*size:
			flushWord()
		}
		if g.s != " " {
			word.WriteString(g.s)
			if strings.Contains(g.s, " ") { // a map that decodes a code to several words
				w := word.String()
				word.Reset()
				f := strings.Fields(w)
				if len(f) > 0 {
					cur.words = append(cur.words, f[:len(f)-1]...)
					if !strings.HasSuffix(w, " ") {
						word.WriteString(f[len(f)-1])
					} else {
						cur.words = append(cur.words, f[len(f)-1])
					}
				}
			}
		}
		cur.xmin, cur.xmax = min(cur.xmin, g.x, g.x+g.w), max(cur.xmax, g.x, g.x+g.w)
		prev = g
	}
	flushWord()
	return joinLines(columns(lines))
}

// joinLines writes lines one per line, joining a word hyphenated at a
// line's end with the first word of the next line as pdftotext does.
func joinLines(lines []line) string {
	var b strings.Builder
	for i := 0; i < len(lines); i++ {
		ws := lines[i].words
		if len(ws) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		for j, w := range ws {
			if j == len(ws)-1 && i+1 < len(lines) && len(lines[i+1].words) > 0 && hyphenated(w) {
				_, n := utf8.DecodeLastRuneInString(w)
				next := lines[i+1].words
				lines[i+1].words = append([]string{w[:len(w)-n] + next[0]}, next[1:]...)
				ws = ws[:j]
				break
			}
		}
		b.WriteString(strings.Join(ws, " "))
	}
	return norm.NFKC.String(b.String())
}

// hyphenated reports whether w ends in a hyphen after a letter.
func hyphenated(w string) bool {
	r, n := utf8.DecodeLastRuneInString(w)
	if r != '-' && r != '\u00ad' && r != '\u2010' {
		return false
	}
	p, _ := utf8.DecodeLastRuneInString(w[:len(w)-n])
	return unicode.IsLetter(p)
}
