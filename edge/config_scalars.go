package edge

// This file holds the loader's readers of single values (strings with
// ${VAR}, booleans, durations, counts, sizes, addresses, header names) that
// every section's parser uses.

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// str returns the expanded value of a scalar.
func (l *loader) str(n *yaml.Node, where string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		l.errorf(n, "%s: want a string, got %s", where, describe(n))
		return "", false
	}
	if n.Tag == "!!null" {
		return "", true
	}
	return l.expand(n, where)
}

// expand replaces ${NAME} with its environment value. Other $ are kept, so a
// literal bcrypt hash ($2a$...) needs no escaping.
func (l *loader) expand(n *yaml.Node, where string) (string, bool) {
	s := n.Value
	if !strings.Contains(s, "${") {
		return s, true
	}
	var b strings.Builder
	ok := true
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			l.errorf(n, "%s: unterminated ${ in %q", where, n.Value)
			return "", false
		}
		name := s[i+2 : i+end]
		if !validEnvName(name) {
			l.errorf(n, "%s: bad variable name %q", where, name)
			ok = false
		} else if v, set := l.env(name); !set {
			l.errorf(n, "%s: environment variable %s is not set", where, name)
			ok = false
		} else {
			b.WriteString(v)
		}
		s = s[i+end+1:]
	}
	return b.String(), ok
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

func (l *loader) boolean(n *yaml.Node, where string) bool {
	s, ok := l.str(n, where)
	if !ok {
		return false
	}
	switch s {
	case "true":
		return true
	case "false", "":
		return false
	}
	l.errorf(n, "%s: want true or false, got %q", where, s)
	return false
}

func (l *loader) duration(n *yaml.Node, where string) time.Duration {
	s, ok := l.str(n, where)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		l.errorf(n, "%s: bad duration %q (want e.g. 10s, 2m, 500ms)", where, s)
		return 0
	}
	return d
}

func (l *loader) count(n *yaml.Node, where string) int {
	s, ok := l.str(n, where)
	if !ok {
		return 0
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		l.errorf(n, "%s: want a whole number ≥ 0, got %q", where, s)
		return 0
	}
	return v
}

func (l *loader) size(n *yaml.Node, where string) int64 {
	s, ok := l.str(n, where)
	if !ok {
		return 0
	}
	v, err := ParseSize(s)
	if err != nil {
		l.errorf(n, "%s: %v", where, err)
	}
	return v
}

// ParseSize parses a byte count: a whole number with an optional unit, B,
// KB/MB/GB (powers of 1000) or KiB/MiB/GiB (powers of 1024).
func ParseSize(s string) (int64, error) {
	num := strings.TrimRight(s, "KMGTiBb ")
	unit := strings.TrimSpace(s[len(num):])
	mult := int64(1)
	switch unit {
	case "", "B":
	case "KB":
		mult = 1000
	case "MB":
		mult = 1000 * 1000
	case "GB":
		mult = 1000 * 1000 * 1000
	case "KiB":
		mult = 1 << 10
	case "MiB":
		mult = 1 << 20
	case "GiB":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("bad size %q (want e.g. 64KiB, 50MiB, 1048576)", s)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q (want e.g. 64KiB, 50MiB, 1048576)", s)
	}
	return v * mult, nil
}

// formatSize is ParseSize's inverse for messages ("50 MiB").
func formatSize(n int64) string {
	for _, u := range []struct {
		div  int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.div && n%u.div == 0 {
			return strconv.FormatInt(n/u.div, 10) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

func (l *loader) addr(n *yaml.Node, where string, allowOff bool) string {
	s, ok := l.str(n, where)
	if !ok {
		return ""
	}
	if allowOff && s == "off" {
		return s
	}
	if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
		l.errorf(n, "%s: bad address %q (want host:port or :port)", where, s)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		l.errorf(n, "%s: bad port in %q", where, s)
	}
	return s
}

func (l *loader) list(n *yaml.Node, where string, fn func(i int, item *yaml.Node)) {
	if n.Kind != yaml.SequenceNode {
		if n.Tag == "!!null" {
			return
		}
		l.errorf(n, "%s: want a list, got %s", where, describe(n))
		return
	}
	for i, item := range n.Content {
		fn(i, resolve(item))
	}
}

func (l *loader) headerName(n *yaml.Node, where, name string) string {
	if !validHeaderName(name) {
		l.errorf(n, "%s: bad header name %q", where, name)
		return ""
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func (l *loader) headers(n *yaml.Node, where string) []Header {
	hs := []Header{}
	l.fields(n, where, nil, func(k string, v *yaml.Node) {
		name := l.headerName(v, where, k)
		val, ok := l.str(v, where+"."+k)
		if !ok || name == "" {
			return
		}
		if strings.ContainsFunc(val, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			l.errorf(v, "%s.%s: control character in header value", where, k)
			return
		}
		hs = append(hs, Header{Name: name, Value: val})
	})
	return hs
}

// caFile reads the PEM file of CA certificates named by v. It returns a nil
// pool when v is empty, or when the file cannot be read or holds no
// certificate (an error then, with v's line).
func (l *loader) caFile(v *yaml.Node, where string) (path string, pem []byte, pool *x509.CertPool) {
	path, ok := l.str(v, where)
	if !ok || path == "" {
		return "", nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		l.errorf(v, "%s: %v", where, err)
		return "", nil, nil
	}
	pool = x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		l.errorf(v, "%s: no PEM certificate in %s", where, path)
		return "", nil, nil
	}
	return path, pem, pool
}
