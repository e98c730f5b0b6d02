package extract

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode"

	"github.com/ledongthuc/pdf"
)

// font is what layout needs of a PDF font: how many bytes a character code
// takes, each code's advance width (in thousandths of the font size) and
// its Unicode text.
type font struct {
	codeLen int
	// Simple fonts: widths[code-first]; CID fonts: cidWidths, else dw.
	first     int
	widths    []float64
	cidWidths map[int]float64
	dw        float64
	scale     float64 // Type 3 fonts' glyph space to thousandths
	enc       pdf.TextEncoding
	text      map[string]string // decoded codes: the library's maps are slow to search
}

// noFont stands in before any Tf, or for a font that is missing.
var noFont = &font{codeLen: 1, dw: 500, scale: 1, text: map[string]string{}}

func (f *font) width(code string) float64 {
	if f.codeLen == 1 {
		c := int(code[0]) - f.first
		if c >= 0 && c < len(f.widths) {
			return f.widths[c] * f.scale
		}
		return f.dw * f.scale
	}
	c := 0
	for i := 0; i < len(code); i++ {
		c = c<<8 | int(code[i])
	}
	if w, ok := f.cidWidths[c]; ok {
		return w
	}
	return f.dw
}

func (f *font) decode(code string) string {
	if t, ok := f.text[code]; ok {
		return t
	}
	t := ""
	if f.enc != nil {
		t = f.enc.Decode(code)
	} else if f.codeLen == 1 {
		t = string(rune(code[0])) // no encoding known: guess Latin-1
	}
	// Drop what the maps could not decode and control characters; a space
	// stays a space (a word break).
	t = strings.Map(func(r rune) rune {
		switch {
		case r == unicode.ReplacementChar || r == 0xFFFF:
			return -1
		case unicode.IsSpace(r):
			return ' '
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, t)
	if len(f.text) < 1<<16 {
		f.text[code] = t
	}
	return t
}

// fontCache holds a document's fonts, keyed by what identifies a font
// dictionary (the library hands out a fresh copy at every lookup, so there
// is no pointer to key by).
type fontCache struct {
	b     *budget
	fonts map[string]*font
}

func (c *fontCache) get(resources pdf.Value, resName string) *font {
	v := resources.Key("Font").Key(resName)
	if v.Kind() != pdf.Dict {
		return noFont
	}
	key, ok := objectID(v)
	if !ok {
		// A font dictionary written inline in the resources has no
		// object number: key it by the resource name and what tells
		// fonts apart.
		key = fmt.Sprintf("%s|%s|%s|%d|%d", resName, v.Key("BaseFont").Name(), v.Key("Subtype").Name(),
			v.Key("FirstChar").Int64(), v.Key("ToUnicode").Key("Length").Int64())
	}
	if f, ok := c.fonts[key]; ok {
		return f
	}
	f := c.load(v, v.Key("DescendantFonts").Index(0))
	if len(c.fonts) < 4096 {
		c.fonts[key] = f
	}
	return f
}

// objectID is the object number of an indirect object, read from the
// library's Value by reflection because the library does not export it.
// Without it every text run would re-read its font from the file (through
// an object stream's decompression: a 36-page manual took 1.5 s instead of
// a tenth of that). If a new library version renames the field, ok is false
// and fonts are keyed by their content instead.
func objectID(v pdf.Value) (string, bool) {
	p := reflect.ValueOf(v).FieldByName("ptr")
	if !p.IsValid() || p.Kind() != reflect.Struct || p.NumField() < 2 {
		return "", false
	}
	id, gen := p.Field(0), p.Field(1)
	if !id.CanUint() || !gen.CanUint() || id.Uint() == 0 {
		return "", false
	}
	return fmt.Sprintf("%d %d R", id.Uint(), gen.Uint()), true
}

func (c *fontCache) load(v, desc pdf.Value) *font {
	f := &font{codeLen: 1, scale: 1, text: map[string]string{}}
	if v.Key("Subtype").Name() == "Type0" {
		// Composite fonts in the wild use two-byte codes (Identity-H and
		// the like); one-byte CMaps are rare enough to read wrongly.
		f.codeLen = 2
		f.dw = 1000
		if dw := desc.Key("DW"); dw.Kind() == pdf.Integer || dw.Kind() == pdf.Real {
			f.dw = dw.Float64()
		}
		f.cidWidths = cidWidths(desc.Key("W"))
	} else {
		f.first = int(v.Key("FirstChar").Int64())
		ws := v.Key("Widths")
		for i := 0; i < ws.Len() && i < 256; i++ {
			f.widths = append(f.widths, ws.Index(i).Float64())
		}
		f.dw = v.Key("FontDescriptor").Key("MissingWidth").Float64()
		if f.dw == 0 {
			f.dw = 500
		}
		if v.Key("Subtype").Name() == "Type3" {
			if m := v.Key("FontMatrix"); m.Len() == 6 {
				f.scale = m.Index(0).Float64() * 1000
			}
		}
	}
	// The library parses a ToUnicode map whole into memory: measure it
	// first, through the budget, and do without it if it is absurd.
	if tu := v.Key("ToUnicode"); tu.Kind() == pdf.Stream {
		n, _ := io.Copy(io.Discard, io.LimitReader(&streamReader{r: tu.Reader(), b: c.b}, maxCMapBytes+1))
		if n > maxCMapBytes {
			return f
		}
	}
	lf := pdf.Font{V: v}
	f.enc = lf.Encoder()
	return f
}

// cidWidths reads a CID font's W array: "c [w1 w2 …]" or "c1 c2 w".
func cidWidths(w pdf.Value) map[int]float64 {
	m := map[int]float64{}
	for i := 0; i+1 < w.Len() && len(m) < 1<<16; {
		c := int(w.Index(i).Int64())
		if a := w.Index(i + 1); a.Kind() == pdf.Array {
			for j := 0; j < a.Len() && len(m) < 1<<16; j++ {
				m[c+j] = a.Index(j).Float64()
			}
			i += 2
			continue
		}
		if i+2 >= w.Len() {
			break
		}
		last := int(w.Index(i + 1).Int64())
		wd := w.Index(i + 2).Float64()
		for c2 := c; c2 <= last && c2-c < 1<<16; c2++ {
			m[c2] = wd
		}
		i += 3
	}
	return m
}
