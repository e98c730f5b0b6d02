package edge

import "net/netip"

// Host headers are checked as nginx does (ngx_http_validate_host), and
// stricter: a Host the edge cannot read exactly one way is refused with 400,
// so that no spelling of a host reaches a host route's upstream through the
// routes without a host, and none escapes a protected host route to an open
// one. Go's server has already refused bytes outside its Host set, several
// Host headers and a missing one on HTTP/1.1.

// validHost reports whether host, a request's Host (possibly empty, for
// HTTP/1.0), is one the edge routes: a name of letters, digits, '-', '_'
// and '.' without empty labels (one trailing dot allowed), or an IP literal
// in brackets, then optionally ':' and a port of 1 to 5 digits up to 65535.
// "admin.test:80:80", "a:", "a:+80", "a..test" and ":80" are not.
func validHost(host string) bool {
	if host == "" {
		return true
	}
	name, port := host, ""
	if host[0] == '[' {
		end := -1
		for i := 1; i < len(host); i++ {
			if host[i] == ']' {
				end = i
				break
			}
		}
		if end < 2 {
			return false
		}
		for i := 1; i < end; i++ {
			c := host[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
				return false
			}
		}
		if a, err := netip.ParseAddr(host[1:end]); err != nil || !a.Is6() {
			return false // "[:::::]", "[1.2.3.4]": no address
		}
		rest := host[end+1:]
		if rest == "" {
			return true
		}
		if rest[0] != ':' {
			return false
		}
		return validPort(rest[1:])
	}
	for i := 0; i < len(host); i++ {
		if host[i] == ':' {
			name, port = host[:i], host[i+1:]
			if !validPort(port) {
				return false
			}
			break
		}
	}
	if name == "" || name[0] == '.' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
			if i > 0 && name[i-1] == '.' {
				return false // an empty label: "a..test" is no spelling of "a.test"
			}
		default:
			return false
		}
	}
	return canonicalIPv4(name)
}

// canonicalIPv4 reports whether name, a valid name, is not an IPv4 address
// in another spelling than the dotted quad route hosts are written in: a
// name whose last label is all digits (no top-level domain is) must be one.
// "127.0.0.01", "2130706433", "0x7f.1" and "127.1" would otherwise reach the
// routes without a host while an upstream, or a resolver, may read them as
// 127.0.0.1.
func canonicalIPv4(name string) bool {
	ip := name
	if ip[len(ip)-1] == '.' {
		ip = ip[:len(ip)-1]
	}
	for i := len(ip) - 1; i >= 0 && ip[i] != '.'; i-- {
		if ip[i] < '0' || ip[i] > '9' {
			return true
		}
	}
	a, err := netip.ParseAddr(ip)
	return err == nil && a.Is4()
}

// validPort reports whether p is 1 to 5 digits of a value up to 65535.
func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}
