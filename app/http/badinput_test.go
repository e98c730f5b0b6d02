package http_test

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestBadInput sends every endpoint each kind of bad input and checks the
// status, that the error message says what is wrong, and that nothing
// stored before was lost (nor anything new kept).
func TestBadInput(t *testing.T) {
	e := newEnv(t, maxUpload(1024))
	if r := e.postContact("Ada", "ada@example.com", "Hello"); r.status != 201 {
		t.Fatalf("seed contact: %d %s", r.status, r.body)
	}
	seed := e.upload("notes.txt", "notes", []byte("seed document text"))
	if seed.status != 201 {
		t.Fatalf("seed upload: %d %s", seed.status, seed.body)
	}
	docPath := fmt.Sprintf("/documents/%v", seed.json["id"])

	json := func(s string) io.Reader { return strings.NewReader(s) }
	const ct = "application/json"
	upload := func(parts ...part) (io.Reader, string) { return multipartBody(t, parts...) }
	docType := part{name: "document_type", data: []byte("report")}
	textFile := part{name: "file", filename: "a.txt", data: []byte("some text")}
	pngFile := part{name: "file", filename: "a.png", data: []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")}
	zipFile := part{name: "file", filename: "a.pdf", data: []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00")}
	bigFile := part{name: "file", filename: "big.txt", data: bytes.Repeat([]byte("x"), 1025)}

	type tc struct {
		name       string
		req        request
		multipart  []part
		wantStatus int
		wantError  string
		wantField  string // a key that must be in "fields"
	}
	cases := []tc{
		// POST /contact
		{name: "contact no key", req: request{method: "POST", path: "/contact", body: json(`{}`), contentType: ct}, wantStatus: 401, wantError: "missing API key"},
		{name: "contact wrong key", req: request{method: "POST", path: "/contact", key: "nope-nope-nope-nope", body: json(`{}`), contentType: ct}, wantStatus: 401, wantError: "invalid API key"},
		{name: "contact malformed", req: request{method: "POST", path: "/contact", key: publicKey, body: json(`{"name": "a",, }`), contentType: ct}, wantStatus: 400, wantError: "invalid JSON at offset 14"},
		{name: "contact truncated", req: request{method: "POST", path: "/contact", key: publicKey, body: json(`{"name": "a"`), contentType: ct}, wantStatus: 400, wantError: "unexpected end"},
		{name: "contact empty body", req: request{method: "POST", path: "/contact", key: publicKey, body: json(``), contentType: ct}, wantStatus: 400, wantError: "request body is empty"},
		{name: "contact not an object", req: request{method: "POST", path: "/contact", key: publicKey, body: json(`[1,2]`), contentType: ct}, wantStatus: 400, wantError: "must be a JSON object"},
		{name: "contact unknown field", req: request{method: "POST", path: "/contact", key: publicKey, body: json(`{"name":"a","email":"a@b.co","message":"m","phone":"1"}`), contentType: ct}, wantStatus: 400, wantError: `unknown field "phone"`},
		{name: "contact two values", req: request{method: "POST", path: "/contact", key: publicKey, body: json(`{"name":"a","email":"a@b.co","message":"m"} {}`), contentType: ct}, wantStatus: 400, wantError: "single JSON value"},
		{name: "contact wrong type", req: request{method: "POST", path: "/contact", key: publicKey, body: json(`{"name":42,"email":"a@b.co","message":"m"}`), contentType: ct}, wantStatus: 400, wantError: `field "name" must be a string`},
		{name: "contact oversized", req: request{method: "POST", path: "/contact", key: publicKey, body: json(`{"name":"a","email":"a@b.co","message":"` + strings.Repeat("x", 70<<10) + `"}`), contentType: ct}, wantStatus: 413, wantError: "larger than the limit of 65536 bytes"},
		{name: "contact content type", req: request{method: "POST", path: "/contact", key: publicKey, body: json(`{}`), contentType: "text/plain"}, wantStatus: 415, wantError: "Content-Type must be application/json"},
		{name: "contact missing name", req: request{method: "POST", path: "/contact", key: publicKey, body: json(`{"email":"a@b.co","message":"m"}`), contentType: ct}, wantStatus: 422, wantError: "validation failed", wantField: "name"},
		{name: "contact blank name", req: request{method: "POST", path: "/contact", key: publicKey, body: json(`{"name":"   ","email":"a@b.co","message":"m"}`), contentType: ct}, wantStatus: 422, wantError: "validation failed", wantField: "name"},
		{name: "contact long name", req: request{method: "POST", path: "/contact", key: publicKey, body: json(`{"name":"` + strings.Repeat("n", 101) + `","email":"a@b.co","message":"m"}`), contentType: ct}, wantStatus: 422, wantError: "validation failed", wantField: "name"},
		{name: "contact missing email", req: request{method: "POST", path: "/contact", key: publicKey, body: json(`{"name":"a","message":"m"}`), contentType: ct}, wantStatus: 422, wantError: "validation failed", wantField: "email"},
		{name: "contact bad email", req: request{method: "POST", path: "/contact", key: publicKey, body: json(`{"name":"a","email":"not-an-email","message":"m"}`), contentType: ct}, wantStatus: 422, wantError: "validation failed", wantField: "email"},
		{name: "contact missing message", req: request{method: "POST", path: "/contact", key: publicKey, body: json(`{"name":"a","email":"a@b.co"}`), contentType: ct}, wantStatus: 422, wantError: "validation failed", wantField: "message"},
		{name: "contact long message", req: request{method: "POST", path: "/contact", key: publicKey, body: json(`{"name":"a","email":"a@b.co","message":"` + strings.Repeat("m", 1001) + `"}`), contentType: ct}, wantStatus: 422, wantError: "validation failed", wantField: "message"},
		{name: "contact wrong method", req: request{method: "GET", path: "/contact", key: publicKey}, wantStatus: 405, wantError: "method GET is not allowed"},

		// GET /contacts
		{name: "contacts no key", req: request{method: "GET", path: "/contacts"}, wantStatus: 401, wantError: "missing admin API key"},
		{name: "contacts public key", req: request{method: "GET", path: "/contacts", key: publicKey}, wantStatus: 401, wantError: "invalid admin API key"},
		{name: "contacts wrong admin key", req: request{method: "GET", path: "/contacts", key: adminKey + "x"}, wantStatus: 401, wantError: "invalid admin API key"},
		{name: "contacts limit 0", req: request{method: "GET", path: "/contacts?limit=0", key: adminKey}, wantStatus: 400, wantError: "limit must be an integer from 1 to 100"},
		{name: "contacts limit 101", req: request{method: "GET", path: "/contacts?limit=101", key: adminKey}, wantStatus: 400, wantError: "limit must be an integer from 1 to 100"},
		{name: "contacts limit text", req: request{method: "GET", path: "/contacts?limit=ten", key: adminKey}, wantStatus: 400, wantError: `not "ten"`},
		{name: "contacts offset negative", req: request{method: "GET", path: "/contacts?offset=-1", key: adminKey}, wantStatus: 400, wantError: "offset must be an integer"},

		// POST /documents/upload
		{name: "upload no key", req: request{method: "POST", path: "/documents/upload"}, multipart: []part{docType, textFile}, wantStatus: 401, wantError: "missing API key"},
		{name: "upload wrong key", req: request{method: "POST", path: "/documents/upload", key: "x"}, multipart: []part{docType, textFile}, wantStatus: 401, wantError: "invalid API key"},
		{name: "upload not multipart", req: request{method: "POST", path: "/documents/upload", key: publicKey, body: json(`{}`), contentType: ct}, wantStatus: 400, wantError: "expected a multipart/form-data body"},
		{name: "upload missing file", req: request{method: "POST", path: "/documents/upload", key: publicKey}, multipart: []part{docType}, wantStatus: 400, wantError: `missing "file" part`},
		{name: "upload missing document_type", req: request{method: "POST", path: "/documents/upload", key: publicKey}, multipart: []part{textFile}, wantStatus: 400, wantError: `missing "document_type" field`},
		{name: "upload bad document_type after file", req: request{method: "POST", path: "/documents/upload", key: publicKey}, multipart: []part{textFile, {name: "document_type", data: []byte("a/b")}}, wantStatus: 422, wantError: "validation failed", wantField: "document_type"},
		{name: "upload long document_type after file", req: request{method: "POST", path: "/documents/upload", key: publicKey}, multipart: []part{textFile, {name: "document_type", data: bytes.Repeat([]byte("t"), 1025)}}, wantStatus: 400, wantError: "document_type must be at most 1024 bytes"},
		{name: "upload body cut after file", req: request{method: "POST", path: "/documents/upload", key: publicKey, body: json("--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nsome text cut here"), contentType: "multipart/form-data; boundary=XyZ"}, wantStatus: 400, wantError: "could not read the uploaded file"},
		{name: "upload two files", req: request{method: "POST", path: "/documents/upload", key: publicKey}, multipart: []part{textFile, textFile, docType}, wantStatus: 400, wantError: `only one "file" part`},
		{name: "upload too large file first", req: request{method: "POST", path: "/documents/upload", key: publicKey}, multipart: []part{bigFile, docType}, wantStatus: 413, wantError: "larger than the limit of 1024 bytes"},
		{name: "upload empty document_type", req: request{method: "POST", path: "/documents/upload", key: publicKey}, multipart: []part{{name: "document_type"}, textFile}, wantStatus: 422, wantError: "validation failed", wantField: "document_type"},
		{name: "upload bad document_type", req: request{method: "POST", path: "/documents/upload", key: publicKey}, multipart: []part{{name: "document_type", data: []byte("a/b")}, textFile}, wantStatus: 422, wantError: "validation failed", wantField: "document_type"},
		{name: "upload empty file", req: request{method: "POST", path: "/documents/upload", key: publicKey}, multipart: []part{docType, {name: "file", filename: "a.txt"}}, wantStatus: 422, wantError: "validation failed", wantField: "file"},
		{name: "upload no filename", req: request{method: "POST", path: "/documents/upload", key: publicKey}, multipart: []part{docType, {name: "file", filename: "/", data: []byte("x")}}, wantStatus: 422, wantError: "validation failed", wantField: "filename"},
		{name: "upload png", req: request{method: "POST", path: "/documents/upload", key: publicKey}, multipart: []part{docType, pngFile}, wantStatus: 415, wantError: "unsupported file type image/png"},
		{name: "upload zip named pdf", req: request{method: "POST", path: "/documents/upload", key: publicKey}, multipart: []part{docType, zipFile}, wantStatus: 415, wantError: "unsupported file type application/zip"},
		{name: "upload too large", req: request{method: "POST", path: "/documents/upload", key: publicKey}, multipart: []part{docType, bigFile}, wantStatus: 413, wantError: "larger than the limit of 1024 bytes"},
		{name: "upload body too large", req: request{method: "POST", path: "/documents/upload", key: publicKey}, multipart: []part{{name: "padding", data: bytes.Repeat([]byte("p"), 1<<20+2048)}, docType, textFile}, wantStatus: 413, wantError: "larger than the limit"},

		// GET /documents/search
		{name: "search no key", req: request{method: "GET", path: "/documents/search?q=seed"}, wantStatus: 401, wantError: "missing API key"},
		{name: "search wrong key", req: request{method: "GET", path: "/documents/search?q=seed", key: "wrong"}, wantStatus: 401, wantError: "invalid API key"},
		{name: "search no q", req: request{method: "GET", path: "/documents/search", key: publicKey}, wantStatus: 400, wantError: "q is required"},
		{name: "search limit 0", req: request{method: "GET", path: "/documents/search?q=seed&limit=0", key: publicKey}, wantStatus: 400, wantError: "limit must be"},
		{name: "search limit 1000", req: request{method: "GET", path: "/documents/search?q=seed&limit=1000", key: publicKey}, wantStatus: 400, wantError: "limit must be"},
		{name: "search offset text", req: request{method: "GET", path: "/documents/search?q=seed&offset=x", key: publicKey}, wantStatus: 400, wantError: "offset must be"},

		// GET /documents/{id}
		{name: "document no key", req: request{method: "GET", path: docPath}, wantStatus: 401, wantError: "missing API key"},
		{name: "document bad id", req: request{method: "GET", path: "/documents/abc", key: publicKey}, wantStatus: 400, wantError: `positive integer, not "abc"`},
		{name: "document zero id", req: request{method: "GET", path: "/documents/0", key: publicKey}, wantStatus: 400, wantError: "positive integer"},
		{name: "document huge id", req: request{method: "GET", path: "/documents/99999999999999999999", key: publicKey}, wantStatus: 400, wantError: "positive integer"},
		{name: "document missing", req: request{method: "GET", path: "/documents/999", key: publicKey}, wantStatus: 404, wantError: "not found"},

		// GET /documents/{id}/download
		{name: "download no key", req: request{method: "GET", path: docPath + "/download"}, wantStatus: 401, wantError: "missing API key"},
		{name: "download bad id", req: request{method: "GET", path: "/documents/-1/download", key: publicKey}, wantStatus: 400, wantError: "positive integer"},
		{name: "download missing", req: request{method: "GET", path: "/documents/999/download", key: publicKey}, wantStatus: 404, wantError: "not found"},

		// DELETE /documents/{id}
		{name: "delete no key", req: request{method: "DELETE", path: docPath}, wantStatus: 401, wantError: "missing admin API key"},
		{name: "delete public key", req: request{method: "DELETE", path: docPath, key: publicKey}, wantStatus: 401, wantError: "invalid admin API key"},
		{name: "delete wrong admin key", req: request{method: "DELETE", path: docPath, key: "admin-key-0123456789aX"}, wantStatus: 401, wantError: "invalid admin API key"},
		{name: "delete bad id", req: request{method: "DELETE", path: "/documents/x1", key: adminKey}, wantStatus: 400, wantError: "positive integer"},
		{name: "delete missing", req: request{method: "DELETE", path: "/documents/999", key: adminKey}, wantStatus: 404, wantError: "not found"},

		// No such route.
		{name: "unknown path", req: request{method: "GET", path: "/nope"}, wantStatus: 404, wantError: "no such endpoint: GET /nope"},
		{name: "wrong method on documents", req: request{method: "PUT", path: docPath, key: adminKey}, wantStatus: 405, wantError: "method PUT is not allowed"},
	}

	contactsBefore := e.contactCount()
	blobsBefore := e.blobFiles()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := c.req
			if c.multipart != nil {
				req.body, req.contentType = upload(c.multipart...)
			}
			r := e.do(req)
			if r.status != c.wantStatus {
				t.Errorf("status %d, want %d (body %s)", r.status, c.wantStatus, r.body)
			}
			msg, _ := r.json["error"].(string)
			if !strings.Contains(msg, c.wantError) {
				t.Errorf("error %q, want it to contain %q (body %s)", msg, c.wantError, r.body)
			}
			if c.wantField != "" {
				fields, _ := r.json["fields"].(map[string]any)
				if _, ok := fields[c.wantField]; !ok {
					t.Errorf("fields %v lack %q", fields, c.wantField)
				}
			}
			if c.wantStatus == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if r.header.Get("X-Request-ID") == "" {
				t.Error("no X-Request-ID")
			}

			// Nothing lost, nothing new kept.
			if n := e.contactCount(); n != contactsBefore {
				t.Errorf("contacts: %d, want %d", n, contactsBefore)
			}
			if got := e.blobFiles(); !slices.Equal(got, blobsBefore) {
				t.Errorf("blob files: %v, want %v", got, blobsBefore)
			}
			if d := e.do(request{method: "GET", path: docPath, key: publicKey}); d.status != 200 {
				t.Errorf("seed document: status %d", d.status)
			}
			docs, err := e.db.DocumentsByID(t.Context(), []int64{1, 2, 3})
			if err != nil || len(docs) != 1 {
				t.Errorf("documents: %d (%v), want only the seed", len(docs), err)
			}
		})
	}
}
