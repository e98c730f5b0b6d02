package http

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"

	"selfhost.dev/edgeapp/app"
)

//go:embed landing.html
var landingPage []byte

// staticFiles are the landing page's script, style sheet and icon. They are
// separate files, not inline, so that the page's CSP can allow scripts and
// styles from this origin only.
//
//go:embed static
var staticFiles embed.FS

// landingCSP allows the page's own script, style, icon and API calls and
// nothing else: no inline code (an injected <script> or onclick does not
// run), no framing by other sites, and forms cannot post anywhere natively,
// so a page whose script failed to load cannot leak what was typed into a
// URL.
const landingCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"

// staticTypes are the content types of the embedded files, fixed here
// rather than taken from mime.TypeByExtension, which reads the system's
// mime.types and so could differ between machines.
var staticTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
}

// staticFile is one embedded file, ready to serve.
type staticFile struct {
	data        []byte
	contentType string
	etag        string
}

// static holds the embedded files by name, read once at start.
var static = func() map[string]staticFile {
	m := map[string]staticFile{}
	entries, err := fs.ReadDir(staticFiles, "static")
	if err != nil {
		panic(err) // the directory is embedded: it cannot be missing
	}
	for _, e := range entries {
		b, err := staticFiles.ReadFile("static/" + e.Name())
		if err != nil {
			panic(err)
		}
		ct, ok := staticTypes[path.Ext(e.Name())]
		if !ok {
			panic("static/" + e.Name() + ": no content type for its extension in staticTypes")
		}
		sum := sha256.Sum256(b)
		m[e.Name()] = staticFile{
			data:        b,
			contentType: ct,
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
	}
	return m
}()

// handleLanding serves the page: what this is, upload, search and a
// contact form, all posting through the API with a key the user types.
func (s *Server) handleLanding(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", landingCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	// The page is small and changes with each release: always revalidate.
	h.Set("Cache-Control", "no-cache")
	w.Write(landingPage)
}

// handleStatic serves the page's files from /static/{name}.
func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) {
	s.serveStatic(w, r, r.PathValue("name"))
}

// handleFavicon serves the SVG icon at the path browsers ask for unprompted.
func (s *Server) handleFavicon(w http.ResponseWriter, r *http.Request) {
	s.serveStatic(w, r, "favicon.svg")
}

func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := static[name]
	if !ok {
		s.writeError(w, r, app.Errorf(app.ENOTFOUND, "no such file: %s", r.URL.Path))
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	// Revalidated every time, answered 304 by ETag: a new release's script
	// is never mixed with an old page.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}
