package edge

import (
	"net/http"
	"strings"
)

// redirectTarget returns where a request for the normalized path (and raw
// query) of route r goes: r.Redirect.To, followed by the rest of the path
// after r.Path unless the redirect is exact, followed by the query. It
// reports false when the route does not redirect.
func redirectTarget(r Route, path, rawQuery string) (string, bool) {
	rd := r.Redirect
	if rd == nil {
		return "", false
	}
	target, toQuery, _ := strings.Cut(rd.To, "?")
	if !rd.Exact {
		rest := path
		if r.Path != "/" {
			rest = path[min(len(r.Path), len(path)):]
		}
		// rest is "" or starts with '/': the normalized path has no
		// repeated slash, so it cannot make "//host", an open redirect.
		// The route's own path goes to the target as the operator wrote it
		// ("/moved" to "https://example.com/new/", slash kept); what
		// follows it is joined without doubling the slash.
		if rest != "" {
			target = strings.TrimSuffix(target, "/") + rest
		}
	}
	switch {
	case toQuery != "" && rawQuery != "":
		target += "?" + toQuery + "&" + rawQuery
	case toQuery != "":
		target += "?" + toQuery
	case rawQuery != "":
		target += "?" + rawQuery
	}
	return target, true
}

// serveRedirect answers a request of a redirect route. The body is a short
// line for clients that do not follow Location.
func serveRedirect(w http.ResponseWriter, req *http.Request, r *route, path string) {
	target, _ := redirectTarget(r.Route, path, req.URL.RawQuery)
	h := w.Header()
	applyHeaders(h, r.headers)
	h["Location"] = []string{target}
	if id := req.Header["X-Request-Id"]; id != nil {
		h["X-Request-Id"] = id
	}
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		h["Content-Type"] = textPlain
	}
	w.WriteHeader(r.Redirect.Code)
	if req.Method == http.MethodGet {
		_, _ = w.Write([]byte(http.StatusText(r.Redirect.Code) + ": " + target + "\n"))
	}
}
