package edge

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Errors the edge itself produces (404 no route, 401, 413, 502, ...) answer
// in the format the client prefers: JSON for API clients, an HTML page for
// browsers, and plain text otherwise (curl, scripts, anything that accepts
// */* alike). Responses of the upstreams are never touched here: the app's
// own errors pass through as the app wrote them.

// errorFormat is the body format of an edge-made error.
type errorFormat int

const (
	formatText errorFormat = iota
	formatJSON
	formatHTML
)

// negotiateError picks the error format from the Accept header. Each format
// gets the q of the most specific media range that names it; the highest q
// wins, then the more specific range, then the one listed first. A client
// that names none of them, or names them only through */*, gets text.
func negotiateError(accept []string) errorFormat {
	type score struct {
		q    float64
		spec int // 3: exact type, 2: type/*, 1: */*, 0: not matched
		pos  int
	}
	var s [3]score
	pos := 0
	for _, line := range accept {
		for part := range strings.SplitSeq(line, ",") {
			mt, params, _ := strings.Cut(part, ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
			if mt == "" {
				continue
			}
			q := qValue(params)
			for f, exact := range [3][]string{
				formatText: {"text/plain"},
				formatJSON: {"application/json", "application/problem+json"},
				formatHTML: {"text/html", "application/xhtml+xml"},
			} {
				spec := 0
				switch {
				case slices.Contains(exact, mt),
					errorFormat(f) == formatJSON && strings.HasSuffix(mt, "+json"): // application/vnd.github+json
					spec = 3
				case mt == strings.SplitN(exact[0], "/", 2)[0]+"/*":
					spec = 2
				case mt == "*/*":
					spec = 1
				}
				if spec > s[f].spec {
					s[f] = score{q: q, spec: spec, pos: pos}
				}
			}
			pos++
		}
	}
	best := formatText
	for f := formatJSON; f <= formatHTML; f++ {
		a, b := s[f], s[best]
		switch {
		case a.spec == 0 || a.q == 0:
		case b.spec == 0 || b.q == 0, a.q > b.q,
			a.q == b.q && a.spec > b.spec,
			a.q == b.q && a.spec == b.spec && a.spec > 1 && a.pos < b.pos:
			best = f
		}
	}
	if s[best].spec <= 1 {
		return formatText // only */*: the plain text of old
	}
	return best
}

// errorMessage returns what an edge error says, without the status line
// its text form starts with: "502 Bad Gateway: the upstream of route / is
// unreachable\n" says "the upstream of route / is unreachable".
func errorMessage(status int, text string) string {
	msg := strings.TrimSpace(text)
	if rest, ok := strings.CutPrefix(msg, strconv.Itoa(status)+" "); ok {
		msg = rest
		if st := http.StatusText(status); st != "" {
			if rest, ok := strings.CutPrefix(msg, st+": "); ok {
				msg = rest
			}
		}
	}
	return msg
}

// errorPageData is what an error page template sees.
type errorPageData struct {
	Status     int
	StatusText string
	Message    string
	RequestID  string
	// Retry is set for 502, 503 and 504 on a GET: the page reloads itself
	// after RetrySeconds, so a browser comes back on its own once an
	// upstream that was being updated is up again.
	Retry        bool
	RetrySeconds int
}

// errorRetrySeconds is how long a maintenance page waits before it reloads.
const errorRetrySeconds = 10

// builtinErrorPage is the page browsers get when the operator gave none.
var builtinErrorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if .Retry}}<meta http-equiv="refresh" content="{{.RetrySeconds}}">{{end}}
<title>{{.Status}} {{.StatusText}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f6f7f9;color:#1f2328;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:2rem 2.5rem;max-width:34rem;box-shadow:0 1px 3px rgba(0,0,0,.06)}
h1{font-size:1.4rem;margin:0 0 .75rem}p{line-height:1.5;margin:.5rem 0}
.id{color:#59636e;font-size:.85rem;margin-top:1.5rem}code{background:#f0f2f4;padding:.1rem .3rem;border-radius:4px}
</style></head>
<body><main>
<h1>{{.Status}} {{.StatusText}}</h1>
{{if .Retry}}<p>The site is being updated or restarted. This page will try again in {{.RetrySeconds}} seconds.</p>{{end}}
<p>{{.Message}}</p>
{{if .RequestID}}<p class="id">Request ID: <code>{{.RequestID}}</code> — quote it if you report this.</p>{{end}}
</main></body></html>
`))

// writeError writes the body of an edge-made error in the client's format,
// with the operator's page for HTML when error_pages has one for status.
// The caller has set the headers that do not depend on the format.
func writeError(w http.ResponseWriter, req *http.Request, pages *ErrorPages, status int, text string) {
	h := w.Header()
	var id string
	if v := req.Header["X-Request-Id"]; len(v) > 0 {
		id = v[0]
	}
	var body []byte
	switch negotiateError(req.Header["Accept"]) {
	case formatJSON:
		body, _ = json.Marshal(struct {
			Error     string `json:"error"`
			Status    int    `json:"status"`
			RequestID string `json:"request_id,omitempty"`
		}{errorMessage(status, text), status, id})
		body = append(body, '\n')
		h["Content-Type"] = []string{"application/json; charset=utf-8"}
	case formatHTML:
		d := errorPageData{
			Status:       status,
			StatusText:   http.StatusText(status),
			Message:      errorMessage(status, text),
			RequestID:    id,
			Retry:        (status == 502 || status == 503 || status == 504) && req.Method == http.MethodGet,
			RetrySeconds: errorRetrySeconds,
		}
		t := builtinErrorPage
		if pages != nil {
			if p := pages.pages[strconv.Itoa(status)]; p != nil {
				t = p
			} else if p := pages.pages[strconv.Itoa(status/100)+"xx"]; p != nil {
				t = p
			}
		}
		var b bytes.Buffer
		if err := t.Execute(&b, d); err != nil || t != builtinErrorPage && b.Len() == 0 {
			b.Reset()
			_ = builtinErrorPage.Execute(&b, d)
		}
		body = b.Bytes()
		h["Content-Type"] = []string{"text/html; charset=utf-8"}
		if d.Retry {
			h["Cache-Control"] = []string{"no-store"}
		}
	default:
		body = []byte(text)
		h["Content-Type"] = textPlain
	}
	addVary(h, "Accept")
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	if req.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
