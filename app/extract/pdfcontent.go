package extract

import (
	"io"
	"math"

	"github.com/ledongthuc/pdf"
)

// glyph is one character drawn on a page, in user space (points, y up).
type glyph struct {
	x, y float64 // origin on the baseline
	w    float64 // advance width
	size float64 // font size as drawn
	s    string  // its Unicode text; " " for a space
}

type matrix [6]float64 // a b c d e f

var identity = matrix{1, 0, 0, 1, 0, 0}

// mul returns m × n (m applied first).
func (m matrix) mul(n matrix) matrix {
	return matrix{
		m[0]*n[0] + m[1]*n[2], m[0]*n[1] + m[1]*n[3],
		m[2]*n[0] + m[3]*n[2], m[2]*n[1] + m[3]*n[3],
		m[4]*n[0] + m[5]*n[2] + n[4], m[4]*n[1] + m[5]*n[3] + n[5],
	}
}

type gstate struct {
	ctm                   matrix
	tc, tw, th, tl, trise float64
	font                  *font
	size                  float64
}

// maxFormDepth bounds forms drawn inside forms; with maxOps it keeps a form
// that draws itself from running away.
const maxFormDepth = 8

// pageReader interprets a page's content streams and collects its glyphs.
type pageReader struct {
	b      *budget
	fonts  *fontCache
	glyphs []glyph
	// textLeft is how many more bytes of glyph text are worth keeping: the
	// text cap's worth, with room for what layout drops.
	textLeft int
	full     bool // maxGlyphs or textLeft reached
}

func (p *pageReader) run(content, resources pdf.Value, ctm matrix, depth int) {
	var rd io.Reader
	if content.Kind() == pdf.Array {
		var rs []io.Reader
		for i := 0; i < content.Len() && i < 1024; i++ {
			rs = append(rs, content.Index(i).Reader())
		}
		rd = io.MultiReader(rs...)
	} else {
		rd = content.Reader()
	}
	lx := newLexer(&streamReader{r: rd, b: p.b})
	g := gstate{ctm: ctm, th: 1}
	var stack []gstate
	var tm, tlm matrix
	var args []operand
	runFonts := map[name]*font{} // resources are fixed within one stream
	num := func(i int) float64 {
		if i < len(args) {
			if f, ok := args[i].(float64); ok {
				return f
			}
		}
		return 0
	}
	for !p.full {
		v, op, ok := lx.next(0)
		if !ok {
			return
		}
		if op == "" {
			if len(args) < maxOperands {
				args = append(args, v)
			}
			continue
		}
		p.b.op()
		switch op {
		case "q":
			if len(stack) < 256 {
				stack = append(stack, g)
			}
		case "Q":
			if n := len(stack); n > 0 {
				g, stack = stack[n-1], stack[:n-1]
			}
		case "cm":
			if len(args) == 6 {
				g.ctm = matrix{num(0), num(1), num(2), num(3), num(4), num(5)}.mul(g.ctm)
			}
		case "BT":
			tm, tlm = identity, identity
		case "Tc":
			g.tc = num(0)
		case "Tw":
			g.tw = num(0)
		case "Tz":
			g.th = num(0) / 100
		case "TL":
			g.tl = num(0)
		case "Ts":
			g.trise = num(0)
		case "Tf":
			if len(args) == 2 {
				n, _ := args[0].(name)
				f, ok := runFonts[n]
				if !ok {
					f = p.fonts.get(resources, string(n))
					runFonts[n] = f
				}
				g.font = f
				g.size = num(1)
			}
		case "Td", "TD":
			if op == "TD" {
				g.tl = -num(1)
			}
			tlm = matrix{1, 0, 0, 1, num(0), num(1)}.mul(tlm)
			tm = tlm
		case "Tm":
			if len(args) == 6 {
				tlm = matrix{num(0), num(1), num(2), num(3), num(4), num(5)}
				tm = tlm
			}
		case "T*":
			tlm = matrix{1, 0, 0, 1, 0, -g.tl}.mul(tlm)
			tm = tlm
		case "Tj", "'", "\"":
			if op != "Tj" {
				if op == "\"" && len(args) == 3 {
					g.tw, g.tc = num(0), num(1)
				}
				tlm = matrix{1, 0, 0, 1, 0, -g.tl}.mul(tlm)
				tm = tlm
			}
			if len(args) > 0 {
				if s, ok := args[len(args)-1].(string); ok {
					p.show(&g, &tm, s)
				}
			}
		case "TJ":
			if len(args) == 1 {
				a, _ := args[0].([]operand)
				for _, e := range a {
					switch e := e.(type) {
					case string:
						p.show(&g, &tm, e)
					case float64:
						tm = matrix{1, 0, 0, 1, -e / 1000 * g.size * g.th, 0}.mul(tm)
					}
				}
			}
		case "Do":
			if len(args) == 1 && depth < maxFormDepth && p.b.formsLeft > 0 {
				p.b.formsLeft--
				n, _ := args[0].(name)
				x := resources.Key("XObject").Key(string(n))
				if x.Key("Subtype").Name() == "Form" {
					m := identity
					if a := x.Key("Matrix"); a.Len() == 6 {
						m = matrix{a.Index(0).Float64(), a.Index(1).Float64(), a.Index(2).Float64(), a.Index(3).Float64(), a.Index(4).Float64(), a.Index(5).Float64()}
					}
					res := x.Key("Resources")
					if res.IsNull() {
						res = resources
					}
					p.run(x, res, m.mul(g.ctm), depth+1)
				}
			}
		case "ID":
			lx.skipInlineImage()
		}
		args = args[:0]
	}
}

// show places the glyphs of one string, advancing the text matrix.
func (p *pageReader) show(g *gstate, tm *matrix, s string) {
	f := g.font
	if f == nil {
		f = noFont
	}
	for len(s) > 0 && !p.full {
		n := f.codeLen
		if n > len(s) {
			n = len(s)
		}
		code := s[:n]
		s = s[n:]
		w := f.width(code)
		trm := matrix{g.size * g.th, 0, 0, g.size, 0, g.trise}.mul(*tm).mul(g.ctm)
		text := f.decode(code)
		size := math.Hypot(trm[2], trm[3])
		adv := w / 1000 * math.Hypot(trm[0], trm[1])
		if trm[0] < 0 { // mirrored text still reads left to right in user space
			adv = -adv
		}
		if text != "" {
			p.glyphs = append(p.glyphs, glyph{x: trm[4], y: trm[5], w: adv, size: size, s: text})
			p.textLeft -= len(text)
			if len(p.glyphs) >= maxGlyphs || p.textLeft < 0 {
				p.full = true
			}
		}
		tx := w/1000*g.size + g.tc
		if n == 1 && code == " " {
			tx += g.tw
		}
		*tm = matrix{1, 0, 0, 1, tx * g.th, 0}.mul(*tm)
	}
}
