package edge

import (
	"errors"
	"strings"
)

// The reasons a request path is refused with 400. They are shown to the
// client, so they say what is wrong and nothing more.
var (
	errPathRelative     = errors.New("path must start with /")
	errPathBadEscape    = errors.New("path holds a malformed %-escape")
	errPathEncodedSlash = errors.New("path holds an encoded slash")
	errPathBackslash    = errors.New("path holds a backslash")
	errPathControl      = errors.New("path holds a control character")
	errPathDelimiter    = errors.New("path holds an encoded ; % ? or #")
	errPathSemicolon    = errors.New("path holds a ;")
	errPathFragment     = errors.New("path holds a #")
	errPathQuery        = errors.New("path holds a ?")
	errPathEscapesRoot  = errors.New("path has a .. segment above the root")
)

// normalizePath returns the form of the escaped request path p that routes
// are matched on and that is forwarded: unreserved %XX decoded (and other
// escapes upper-cased), bytes that a URL path may not hold raw (non-ASCII,
// space, " < > [ ] ^ ` { | }) percent-encoded, dot segments resolved,
// repeated slashes merged. Each byte thus has one spelling, except the
// sub-delimiters ! $ & ' ( ) * + , = : @, which keep the spelling they came
// in (route paths may not hold them; see validRoutePath).
//
// It refuses, rather than guesses at, what different servers read
// differently: encoded / and \, literal \, NUL and other control characters,
// ; (path parameters), encoded ; % ? # (double decoding), and a .. above the
// root. A route matched on the result is what the upstream sees, whatever
// the upstream's own decoding.
//
// A path that is already normal is returned as is, without allocating.
func normalizePath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	if p[0] != '/' {
		return "", errPathRelative
	}
	if isNormal(p) {
		return p, nil
	}
	buf, err := decodeUnreserved(p)
	if err != nil {
		return "", err
	}
	out, err := resolveDots(buf)
	if err != nil {
		return "", err
	}
	if string(out) == p {
		return p, nil
	}
	return string(out), nil
}

// isNormal reports whether p needs no work: no escapes, no characters to
// refuse or to encode, no empty or dot segments.
func isNormal(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !pathRaw[c] {
			return false
		}
		if c == '/' && i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.') {
			return false
		}
	}
	return true
}

// pathRaw holds the bytes a normal path holds unencoded: the unreserved
// characters, '/', and the sub-delimiters other than ';' with ':' and '@'
// (RFC 3986 pchar). Every other byte is refused or percent-encoded.
var pathRaw = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = unreserved(byte(c))
	}
	for _, c := range []byte("/!$&'()*+,=:@") {
		t[c] = true
	}
	return t
}()

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// decodeUnreserved decodes the escapes of unreserved characters, upper-cases
// the others, percent-encodes the raw bytes a path may not hold (so the
// forwarded path is always well-formed and has no second spelling) and
// refuses the dangerous characters, raw or encoded.
func decodeUnreserved(p string) ([]byte, error) {
	const upperhex = "0123456789ABCDEF"
	buf := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) {
				return nil, errPathBadEscape
			}
			hi, ok1 := unhex(p[i+1])
			lo, ok2 := unhex(p[i+2])
			if !ok1 || !ok2 {
				return nil, errPathBadEscape
			}
			i += 2
			switch v := hi<<4 | lo; {
			case unreserved(v):
				buf = append(buf, v)
			case v == '/':
				return nil, errPathEncodedSlash
			case v == '\\':
				return nil, errPathBackslash
			case v < 0x20 || v == 0x7f:
				return nil, errPathControl
			case v == ';' || v == '%' || v == '?' || v == '#':
				return nil, errPathDelimiter
			default:
				buf = append(buf, '%', upperhex[hi], upperhex[lo])
			}
		case c == '\\':
			return nil, errPathBackslash
		case c < 0x20 || c == 0x7f:
			return nil, errPathControl
		case c == ';':
			return nil, errPathSemicolon
		case c == '#':
			return nil, errPathFragment
		case c == '?':
			return nil, errPathQuery
		case pathRaw[c]:
			buf = append(buf, c)
		default:
			buf = append(buf, '%', upperhex[c>>4], upperhex[c&0xf])
		}
	}
	return buf, nil
}

// resolveDots removes "." and ".." segments and empty segments in place
// (RFC 3986 5.2.4, but a ".." above the root is an error, not clamped). A
// trailing slash, or a trailing dot segment, leaves a trailing slash.
func resolveDots(p []byte) ([]byte, error) {
	out := p[:1] // the leading '/'; writes never overtake reads
	i := 1
	for i <= len(p) {
		j := i
		for j < len(p) && p[j] != '/' {
			j++
		}
		seg := p[i:j]
		last := j >= len(p)
		switch string(seg) {
		case "", ".":
			// Empty (//) and current-directory segments vanish.
		case "..":
			if len(out) == 1 {
				return nil, errPathEscapesRoot
			}
			// Drop the last segment of out, keeping its leading '/'.
			k := len(out) - 2
			for k >= 0 && out[k] != '/' {
				k--
			}
			out = out[:k+1]
		default:
			out = append(out, seg...)
			if !last {
				out = append(out, '/')
			}
		}
		i = j + 1
	}
	// A path that ended in a real segment has no trailing slash; one that
	// ended in /, /. or /.. keeps the slash that out already ends with.
	return out, nil
}

// hasPrefixFold reports whether s starts with prefix, ignoring ASCII case.
// Routes are matched this way so that /PROMETHEUS is as guarded as
// /prometheus whatever the upstream does with case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		a, b := s[i], prefix[i]
		if a == b {
			continue
		}
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// unescapePath decodes the escapes left in a normalized path, for
// url.URL.Path. None of them is a '/', so segments keep their meaning.
func unescapePath(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			hi, _ := unhex(p[i+1])
			lo, _ := unhex(p[i+2])
			b = append(b, hi<<4|lo)
			i += 2
			continue
		}
		b = append(b, p[i])
	}
	return string(b)
}
