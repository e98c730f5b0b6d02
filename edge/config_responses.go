package edge

import (
	"fmt"
	"html/template"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file parses what goes back to the client: encode, error_pages and
// a route's redirect.

// Encodings the edge can apply, in the order it prefers them when a client
// accepts several equally.
const (
	EncodingZstd = "zstd"
	EncodingGzip = "gzip"
)

// ErrorPages replaces the edge's built-in HTML error pages with the
// operator's files.
type ErrorPages struct {
	// Dir holds NNN.html (one status) or Nxx.html (a class) files, each an
	// html/template that may use {{.Status}}, {{.StatusText}},
	// {{.Message}} and {{.RequestID}}. Empty: the built-in pages.
	Dir string
	// pages maps "502" or "5xx" to its parsed template.
	pages map[string]*template.Template
}

// Redirect answers a route's requests with a redirect instead of forwarding
// them.
type Redirect struct {
	// To is the target: a path ("/docs") or an absolute http(s) URL.
	To string
	// Code is 301, 302, 307 or 308 (the default: permanent, method kept).
	Code int
	// Exact sends every request to To as it is; otherwise the part of the
	// path after the route's path is appended to To ("prefix kept"). The
	// query is kept either way.
	Exact bool
}

var (
	errorPageKeys = []string{"dir"}
	redirectKeys  = []string{"to", "code", "exact"}
)

// encodings parses an encode list: known names, no repeats. An empty list
// turns encoding off.
func (l *loader) encodings(n *yaml.Node, where string) []string {
	out := []string{}
	l.list(n, where, func(i int, item *yaml.Node) {
		w := fmt.Sprintf("%s[%d]", where, i)
		s, ok := l.str(item, w)
		if !ok {
			return
		}
		switch {
		case s != EncodingZstd && s != EncodingGzip:
			l.errorf(item, "%s: unknown encoding %q (want zstd or gzip)", w, s)
		case slices.Contains(out, s):
			l.errorf(item, "%s: %q repeated", w, s)
		default:
			out = append(out, s)
		}
	})
	return out
}

// errorPages parses error_pages and every page in its directory, so that a
// broken template is reported by `edge validate`, not met by a client.
func (l *loader) errorPages(n *yaml.Node, where string) ErrorPages {
	var ep ErrorPages
	var dirNode *yaml.Node
	l.fields(n, where, errorPageKeys, func(k string, v *yaml.Node) {
		if k == "dir" {
			dirNode = v
			ep.Dir, _ = l.str(v, where+".dir")
		}
	})
	if dirNode == nil || ep.Dir == "" {
		if dirNode != nil {
			l.errorf(dirNode, "%s.dir: empty (want a directory of NNN.html or Nxx.html files)", where)
		}
		return ep
	}
	entries, err := os.ReadDir(ep.Dir)
	if err != nil {
		l.errorf(dirNode, "%s.dir: %v", where, err)
		return ep
	}
	ep.pages = make(map[string]*template.Template)
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".html")
		if !ok || e.IsDir() {
			continue
		}
		if !errorPageName(name) {
			l.errorf(dirNode, "%s.dir: %s: want a name like 502.html or 5xx.html", where, e.Name())
			continue
		}
		file := filepath.Join(ep.Dir, e.Name())
		b, err := os.ReadFile(file)
		if err != nil {
			l.errorf(dirNode, "%s.dir: %v", where, err)
			continue
		}
		t, err := template.New(e.Name()).Option("missingkey=error").Parse(string(b))
		if err == nil {
			// Executed once now, so that a field that does not exist is
			// an error at load, not a blank page for a client later.
			err = t.Execute(discard{}, errorPageData{Status: 502, StatusText: "Bad Gateway", Message: "x", RequestID: "x"})
		}
		if err != nil {
			l.errorf(dirNode, "%s.dir: %s: %v", where, e.Name(), err)
			continue
		}
		ep.pages[name] = t
	}
	return ep
}

// errorPageName reports whether s is a status ("502") or a class ("5xx")
// the edge answers with: 4xx or 5xx.
func errorPageName(s string) bool {
	if len(s) != 3 || s[0] != '4' && s[0] != '5' {
		return false
	}
	if s[1:] == "xx" {
		return true
	}
	_, err := strconv.Atoi(s)
	return err == nil && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// redirect parses a route's redirect block.
func (l *loader) redirect(n *yaml.Node, where string) *Redirect {
	rd := &Redirect{Code: 308}
	var toNode *yaml.Node
	l.fields(n, where, redirectKeys, func(k string, v *yaml.Node) {
		w := where + "." + k
		switch k {
		case "to":
			toNode = v
			s, ok := l.str(v, w)
			if !ok {
				return
			}
			rd.To = s
			u, err := url.Parse(s)
			switch {
			case s == "":
				l.errorf(v, "%s: empty (want a path like /docs or an http(s) URL)", w)
			case err != nil:
				l.errorf(v, "%s: bad target %q: %v", w, s, err)
			case u.Scheme == "" && u.Host == "":
				if s[0] != '/' || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\ \t") {
					// "//evil.example" is a network-path reference: an
					// open redirect to another site.
					l.errorf(v, "%s: %q: a path must start with a single / (or give an http(s) URL)", w, s)
				}
			case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
				l.errorf(v, "%s: %q: want a path or an http(s) URL with a host", w, s)
			}
			if u != nil && u.Fragment != "" {
				l.errorf(v, "%s: %q: no fragment", w, s)
			}
			if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				l.errorf(v, "%s: control character in target", w)
			}
		case "code":
			c := l.count(v, w)
			switch c {
			case 301, 302, 303, 307, 308:
				rd.Code = c
			default:
				l.errorf(v, "%s: want 301, 302, 303, 307 or 308, got %d", w, c)
			}
		case "exact":
			rd.Exact = l.boolean(v, w)
		}
	})
	if toNode == nil {
		l.errorf(n, "%s: to is missing", where)
	}
	return rd
}

// checkRedirectLoops refuses a redirect whose target leads, through the
// routes of cfg, back to a redirect already followed: a browser would
// bounce between them until it gives up. Targets on other hosts are not
// followed.
func (l *loader) checkRedirectLoops(cfg *Config, nodes map[int]*yaml.Node) {
	byRoute := func(host, path string) int {
		best := -1
		for i, r := range cfg.Routes {
			if r.Host != "" && r.Host != host {
				continue
			}
			n := len(r.Path)
			if len(path) < n || !strings.EqualFold(path[:n], r.Path) || !(len(path) == n || r.Path == "/" || path[n] == '/') {
				continue
			}
			// Host routes win over those without; then the longest path.
			if best < 0 || r.Host != "" && cfg.Routes[best].Host == "" ||
				(r.Host == "") == (cfg.Routes[best].Host == "") && n > len(cfg.Routes[best].Path) {
				best = i
			}
		}
		return best
	}
	for i, r := range cfg.Routes {
		if r.Redirect == nil {
			continue
		}
		// Follow the route's own path (and one level below it, which a
		// prefix-keeping redirect carries along) for a few hops.
		for _, start := range []string{r.Path, strings.TrimSuffix(r.Path, "/") + "/x"} {
			host, path := r.Host, start
			seen := map[int]bool{}
			cur := i
			for hop := 0; hop < len(cfg.Routes)+1; hop++ {
				rr := cfg.Routes[cur]
				if rr.Redirect == nil {
					break
				}
				if seen[cur] {
					l.errorf(nodes[i], "routes[%d].redirect: %s loops back to route %s", i, hostPath(r.Host, start), hostPath(rr.Host, rr.Path))
					return
				}
				seen[cur] = true
				target, ok := redirectTarget(rr, path, "")
				if !ok {
					break
				}
				u, err := url.Parse(target)
				if err != nil {
					break
				}
				if u.Host != "" {
					if rr.Host == "" || !strings.EqualFold(u.Hostname(), rr.Host) {
						break // another site: not ours to follow
					}
					host = strings.ToLower(u.Hostname())
				}
				clean, err := normalizePath(u.EscapedPath())
				if err != nil {
					break
				}
				path = clean
				if cur = byRoute(host, path); cur < 0 {
					break
				}
			}
		}
	}
}
