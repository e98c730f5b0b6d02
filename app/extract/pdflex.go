package extract

import (
	"bufio"
	"io"
	"strconv"
)

// A content stream is tokenized here rather than by the PDF library's
// Interpret, which has no bound on the operands it collects: an array of a
// billion numbers inside a small compressed stream would fill memory
// before any operator ran.

// operand is a content-stream operand: float64, string (a PDF string's raw
// bytes), name (without the slash), []operand, or nil (dicts, booleans,
// null: no text operator needs them).
type operand any

type name string

// Bounds on operands; content streams in the wild use a handful per
// operator and TJ arrays of a few hundred elements.
const (
	maxOperands    = 64
	maxArrayLen    = 1 << 16
	maxNesting     = 32
	maxStringBytes = 1 << 16
)

type lexer struct {
	r *bufio.Reader
}

func newLexer(r io.Reader) *lexer { return &lexer{r: bufio.NewReaderSize(r, 8<<10)} }

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0
}

func isDelim(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

// next returns the next operand or, with op set, the next operator. At the
// end of the stream it returns ok false.
func (l *lexer) next(depth int) (v operand, op string, ok bool) {
	for {
		c, err := l.r.ReadByte()
		if err != nil {
			return nil, "", false
		}
		switch {
		case isSpace(c):
			continue
		case c == '%':
			for c != '\n' && c != '\r' {
				if c, err = l.r.ReadByte(); err != nil {
					return nil, "", false
				}
			}
			continue
		case c == '/':
			return name(l.word()), "", true
		case c == '(':
			return l.literal(), "", true
		case c == '<':
			if b, _ := l.r.Peek(1); len(b) == 1 && b[0] == '<' {
				l.r.ReadByte()
				l.skipDict(depth + 1)
				return nil, "", true
			}
			return l.hex(), "", true
		case c == '[':
			return l.array(depth + 1), "", true
		case c == ']' || c == '>' || c == ')' || c == '{' || c == '}':
			return nil, string(c), true // stray delimiter: an operator nobody knows
		}
		l.r.UnreadByte()
		w := l.word()
		if f, err := strconv.ParseFloat(w, 64); err == nil {
			return f, "", true
		}
		switch w {
		case "true", "false", "null":
			return nil, "", true
		}
		return nil, w, true
	}
}

// word reads a regular token (a name's or number's or operator's chars).
func (l *lexer) word() string {
	var b []byte
	for len(b) < 256 {
		c, err := l.r.ReadByte()
		if err != nil {
			break
		}
		if isSpace(c) || isDelim(c) {
			l.r.UnreadByte()
			break
		}
		b = append(b, c)
	}
	return string(b)
}

func (l *lexer) array(depth int) []operand {
	var a []operand
	for {
		if b, err := l.r.Peek(1); err == nil && b[0] == ']' {
			l.r.ReadByte()
			return a
		}
		if depth > maxNesting {
			l.skipTo(']')
			return a
		}
		v, op, ok := l.next(depth)
		if !ok {
			return a
		}
		if op == "" && len(a) < maxArrayLen {
			a = append(a, v)
		}
	}
}

// skipDict skips an inline dictionary (marked-content properties).
func (l *lexer) skipDict(depth int) {
	for {
		c, err := l.r.ReadByte()
		if err != nil {
			return
		}
		if isSpace(c) {
			continue
		}
		if c == '>' {
			if b, _ := l.r.Peek(1); len(b) == 1 && b[0] == '>' {
				l.r.ReadByte()
				return
			}
			continue
		}
		l.r.UnreadByte()
		if depth > maxNesting {
			l.skipTo('>')
			continue
		}
		l.next(depth)
	}
}

func (l *lexer) skipTo(end byte) {
	for {
		c, err := l.r.ReadByte()
		if err != nil || c == end {
			return
		}
	}
}

func (l *lexer) literal() string {
	var b []byte
	nest := 1
	add := func(c byte) {
		if len(b) < maxStringBytes {
			b = append(b, c)
		}
	}
	for {
		c, err := l.r.ReadByte()
		if err != nil {
			return string(b)
		}
		switch c {
		case '(':
			nest++
		case ')':
			if nest--; nest == 0 {
				return string(b)
			}
		case '\\':
			c, err = l.r.ReadByte()
			if err != nil {
				return string(b)
			}
			switch c {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case '\r':
				if b, _ := l.r.Peek(1); len(b) == 1 && b[0] == '\n' {
					l.r.ReadByte()
				}
				continue
			case '\n':
				continue
			case '0', '1', '2', '3', '4', '5', '6', '7':
				x := int(c - '0')
				for i := 0; i < 2; i++ {
					p, _ := l.r.Peek(1)
					if len(p) == 0 || p[0] < '0' || p[0] > '7' {
						break
					}
					l.r.ReadByte()
					x = x*8 + int(p[0]-'0')
				}
				c = byte(x)
			}
		}
		add(c)
	}
}

func (l *lexer) hex() string {
	var b []byte
	var hi byte
	half := false
	for {
		c, err := l.r.ReadByte()
		if err != nil || c == '>' {
			break
		}
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			continue
		}
		if half {
			if len(b) < maxStringBytes {
				b = append(b, hi<<4|d)
			}
		} else {
			hi = d
		}
		half = !half
	}
	if half && len(b) < maxStringBytes {
		b = append(b, hi<<4)
	}
	return string(b)
}

// skipInlineImage skips an inline image's data after its ID operator, up
// to the EI that ends it.
func (l *lexer) skipInlineImage() {
	l.r.ReadByte() // the single white-space after ID
	var prev [2]byte
	for {
		c, err := l.r.ReadByte()
		if err != nil {
			return
		}
		if isSpace(c) && prev[0] == 'E' && prev[1] == 'I' {
			return
		}
		prev[0], prev[1] = prev[1], c
	}
}
