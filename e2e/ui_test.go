//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"selfhost.dev/edgeapp/app/apptest"
)

// TestBrowserUI drives the landing page in headless Chromium, through the
// edge, as a user would: type the key, send the contact form, upload a PDF
// and watch the progress reach 100%, search it, read the snippet, download
// it, and see a wrong key refused. Screenshots go to e2e-artifacts/ui-*.png.
func TestBrowserUI(t *testing.T) {
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	base, key := startAppBehindEdge(t)
	b := startBrowser(t, filepath.Join(artifacts, "ui-chromium.log"))
	p := b.newPage()
	problems := p.watchProblems()
	shot := func(name string) { p.screenshot(filepath.Join(artifacts, "ui-"+name+".png")) }

	p.navigate(base + "/")
	var iconWidth int
	p.eval(`document.querySelector("h1 img").naturalWidth`, &iconWidth)
	if iconWidth == 0 {
		t.Errorf("the favicon (h1 img) did not load")
	}
	shot("empty")

	t.Run("no key: each form says to enter one", func(t *testing.T) {
		p.click("#search-button")
		p.waitText("#search-status", "Enter your API key first")
	})

	t.Run("the key stays in sessionStorage only", func(t *testing.T) {
		p.fill("#key", key)
		var st struct {
			Session string
			Local   int
			Cookie  string
		}
		p.eval(`({Session: sessionStorage.getItem("apiKey"), Local: localStorage.length, Cookie: document.cookie})`, &st)
		if st.Session != key || st.Local != 0 || st.Cookie != "" {
			t.Errorf("sessionStorage %q, localStorage %d items, cookie %q: want the key in sessionStorage only", st.Session, st.Local, st.Cookie)
		}
		// A reload in the same tab keeps it; the page is not a form that
		// would put it in a URL.
		p.navigate(base + "/")
		var v string
		p.eval(`document.getElementById("key").value`, &v)
		if v != key {
			t.Errorf("after a reload the key box holds %q", v)
		}
	})

	t.Run("contact form", func(t *testing.T) {
		p.fill("#name", "Ada Lovelace")
		p.fill("#email", "not-an-email")
		p.fill("#message", "Hello from the browser test")
		p.click("#contact-button")
		got := p.waitText("#contact-result", "Error 422")
		if !strings.Contains(got, "email: must be a valid email address") {
			t.Errorf("a bad email shows %q, want the field's problem", got)
		}
		shot("contact-invalid")
		p.fill("#email", "ada@example.com")
		p.click("#contact-button")
		p.waitText("#contact-result", "Thank you: message #")
		if cls := p.class("#contact-result"); !strings.Contains(cls, "ok") {
			t.Errorf("success shown with class %q", cls)
		}
		shot("contact")
	})

	word := "zephyrquartz"
	pdf := apptest.PDF("Quarterly report for the browser test. Revenue grew in every region; the " + word + " project shipped on time.")
	pdfPath := filepath.Join(t.TempDir(), "quarterly-report.pdf")
	if err := os.WriteFile(pdfPath, pdf, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("upload a PDF with progress", func(t *testing.T) {
		p.fill("#doctype", "report")
		p.setFiles("#file", pdfPath)
		p.click("#upload-button")
		got := p.waitText("#upload-result", "Uploaded #")
		if !strings.Contains(got, "quarterly-report.pdf") || !strings.Contains(got, "report") {
			t.Errorf("upload result %q lacks the file's name and type", got)
		}
		if !strings.Contains(got, "Text: pending") {
			t.Errorf("upload result %q does not say the text is pending", got)
		}
		var prog struct {
			Value, Max float64
			Text       string
			Hidden     bool
		}
		p.eval(`(() => { const b = document.getElementById("upload-progress");
			return {Value: b.value, Max: b.max, Text: document.getElementById("upload-percent").textContent, Hidden: b.hidden}; })()`, &prog)
		if prog.Hidden || prog.Value != prog.Max || prog.Text != "100%" {
			t.Errorf("progress after the upload: %+v, want a visible bar at 100%%", prog)
		}
		shot("upload")
	})

	t.Run("upload progress moves on a slow link", func(t *testing.T) {
		// 600 KiB of text at 160 KiB/s: the bar is seen between 0 and 100
		// for about 4 s, many polls even on a busy machine.
		big := bytes.Repeat([]byte("slow upload line for the progress bar\n"), 600*1024/38)
		bigPath := filepath.Join(t.TempDir(), "big-notes.txt")
		if err := os.WriteFile(bigPath, big, 0o644); err != nil {
			t.Fatal(err)
		}
		p.call("Network.enable", nil, nil)
		p.call("Network.emulateNetworkConditions", map[string]any{"offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 160 * 1024}, nil)
		defer p.call("Network.emulateNetworkConditions", map[string]any{"offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}, nil)
		p.fill("#doctype", "notes")
		p.setFiles("#file", bigPath)
		p.click("#upload-button")
		seen := map[int]bool{}
		shotTaken := false
		stop := time.Now().Add(deadline)
		for !strings.Contains(p.text("#upload-result"), "Uploaded #") {
			var v float64
			p.eval(`document.getElementById("upload-progress").value`, &v)
			seen[int(v)] = true
			if v > 20 && v < 90 && !shotTaken {
				shot("upload-progress")
				shotTaken = true
			}
			if time.Now().After(stop) {
				t.Fatalf("the slow upload did not finish; progress seen %v, result %q", seen, p.text("#upload-result"))
			}
			time.Sleep(50 * time.Millisecond)
		}
		mid := 0
		for v := range seen {
			if v > 0 && v < 100 {
				mid++
			}
		}
		if mid < 2 {
			t.Errorf("progress values seen %v: want several between 0 and 100", seen)
		}
	})

	t.Run("cancel stops an upload in flight", func(t *testing.T) {
		big := bytes.Repeat([]byte("cancelled upload line, never stored\n"), 600*1024/36)
		bigPath := filepath.Join(t.TempDir(), "cancelled.txt")
		if err := os.WriteFile(bigPath, big, 0o644); err != nil {
			t.Fatal(err)
		}
		p.call("Network.emulateNetworkConditions", map[string]any{"offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 64 * 1024}, nil)
		defer p.call("Network.emulateNetworkConditions", map[string]any{"offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}, nil)
		p.fill("#doctype", "notes")
		p.setFiles("#file", bigPath)
		p.click("#upload-button")
		p.waitText("#upload-result", "Uploading cancelled.txt")
		p.click("#upload-cancel")
		p.waitText("#upload-result", "Upload cancelled.")
		if p.visible("#upload-progress") || p.visible("#upload-cancel") {
			t.Errorf("the progress bar or the cancel button still shows after cancelling")
		}
	})

	// Text is indexed by the app's outbox a moment after the upload.
	waitSearchable(t, base, key, word)

	t.Run("search shows the snippet and the type filter works", func(t *testing.T) {
		p.fill("#q", word)
		p.fill("#filter", "report")
		p.click("#search-button")
		p.waitText("#search-status", "1 document of type report matches")
		var res struct {
			Items int
			Name  string
			Mark  string
			Type  string
			Text  string
		}
		p.eval(`(() => { const li = document.querySelectorAll("#search-results li");
			const m = document.querySelector("#search-results .snippet mark");
			const ts = document.querySelector("#search-results .text-status");
			return {Items: li.length, Name: document.querySelector("#search-results a.download").textContent,
				Mark: m ? m.textContent : "", Type: document.querySelector("#search-results .type").textContent,
				Text: ts ? ts.textContent : ""}; })()`, &res)
		if res.Items != 1 || res.Name != "quarterly-report.pdf" || !strings.EqualFold(res.Mark, word) || res.Type != "report" {
			t.Errorf("results: %+v; want one quarterly-report.pdf of type report with %q marked", res, word)
		}
		if !strings.Contains(res.Text, "text: indexed") {
			t.Errorf("result's text status %q, want it to say the text is indexed", res.Text)
		}
		if p.visible("#pager") {
			t.Errorf("the pager shows for a single result")
		}
		shot("search")

		p.fill("#filter", "invoice")
		p.click("#search-button")
		p.waitText("#search-status", "No documents of type invoice match")
		var n int
		p.eval(`document.querySelectorAll("#search-results li").length`, &n)
		if n != 0 {
			t.Errorf("%d results under a filter nothing matches", n)
		}
		p.fill("#filter", "")
		p.click("#search-button")
		p.waitText("#search-status", "1 document matches")
	})

	t.Run("more than a page of results: Next and Previous", func(t *testing.T) {
		// 12 text documents sharing a word, uploaded through the API.
		for i := range 12 {
			uploadText(t, base, key, fmt.Sprintf("page-%02d.txt", i), "pagination marmalade number "+strconv.Itoa(i))
		}
		waitFor(t, "12 documents searchable", func() (bool, string) {
			n, _ := searchTotal(t, base, key, "marmalade")
			return n == 12, fmt.Sprintf("total %d", n)
		})
		p.fill("#q", "marmalade")
		p.fill("#filter", "")
		p.click("#search-button")
		p.waitText("#search-status", "12 documents match “marmalade”, showing 1–10")
		if !p.visible("#pager") {
			t.Fatalf("no pager for 12 results")
		}
		p.click("#next")
		p.waitText("#search-status", "showing 11–12")
		var n int
		p.eval(`document.querySelectorAll("#search-results li").length`, &n)
		if n != 2 {
			t.Errorf("page 2 lists %d results, want 2", n)
		}
		shot("search-page2")
		p.click("#prev")
		p.waitText("#search-status", "showing 1–10")
	})

	t.Run("the download link saves the same bytes", func(t *testing.T) {
		dir := t.TempDir()
		done := b.subscribe("Browser.downloadProgress")
		if err := b.call("", "Browser.setDownloadBehavior", map[string]any{"behavior": "allow", "downloadPath": dir, "eventsEnabled": true}, nil); err != nil {
			t.Fatal(err)
		}
		p.fill("#q", word)
		p.click("#search-button")
		p.waitText("#search-status", "1 document matches")
		p.click("#search-results a.download")
		stop := time.After(deadline)
	wait:
		for {
			select {
			case m := <-done:
				var ev struct{ State string }
				json.Unmarshal(m.Params, &ev)
				if ev.State == "completed" {
					break wait
				}
				if ev.State == "canceled" {
					t.Fatalf("the download was canceled")
				}
			case <-stop:
				t.Fatalf("no completed download; status: %q", p.text("#search-status"))
			}
		}
		got, err := os.ReadFile(filepath.Join(dir, "quarterly-report.pdf"))
		if err != nil {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("downloaded file: %v (dir holds %v)", err, entries)
		}
		if !bytes.Equal(got, pdf) {
			t.Errorf("downloaded %d bytes, not the %d uploaded", len(got), len(pdf))
		}
	})

	t.Run("a refused file type and a bad document type are explained", func(t *testing.T) {
		png := filepath.Join(t.TempDir(), "picture.png")
		if err := os.WriteFile(png, append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 64)...), 0o644); err != nil {
			t.Fatal(err)
		}
		p.fill("#doctype", "report")
		p.setFiles("#file", png)
		p.click("#upload-button")
		if got := p.waitText("#upload-result", "Error 415"); !strings.Contains(got, "image/png") {
			t.Errorf("a PNG upload shows %q, want the API's 415 naming the type", got)
		}
		p.fill("#doctype", "bad type!")
		p.setFiles("#file", pdfPath)
		p.click("#upload-button")
		p.waitText("#upload-result", "A document type is letters, digits, _ - . only")
	})

	t.Run("a wrong key shows the API's error", func(t *testing.T) {
		p.fill("#key", "wrong-key")
		p.click("#search-button")
		got := p.waitText("#search-status", "Error 401")
		if !strings.Contains(got, "invalid API key") || !strings.Contains(p.class("#search-status"), "error") {
			t.Errorf("search with a wrong key shows %q (class %q)", got, p.class("#search-status"))
		}
		var n int
		p.eval(`document.querySelectorAll("#search-results li").length`, &n)
		if n != 0 {
			t.Errorf("the old results stay under the error: %d", n)
		}
		p.fill("#doctype", "report")
		p.setFiles("#file", pdfPath)
		p.click("#upload-button")
		if got := p.waitText("#upload-result", "Error 401"); !strings.Contains(got, "invalid API key") {
			t.Errorf("upload with a wrong key shows %q", got)
		}
		if p.visible("#upload-progress") {
			t.Errorf("the progress bar still shows next to a refused upload")
		}
		shot("bad-key")
	})

	t.Run("a phone-sized window", func(t *testing.T) {
		p.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}, nil)
		var overflow bool
		p.eval(`document.documentElement.scrollWidth > document.documentElement.clientWidth`, &overflow)
		if overflow {
			t.Errorf("the page scrolls sideways at 390 px")
		}
		shot("phone")
	})

	for _, pr := range problems() {
		// The refusals this test provoked are logged by the browser as
		// failed loads; anything else (a CSP violation, a script error) is a bug.
		if strings.Contains(pr, "status of 401") || strings.Contains(pr, "status of 415") || strings.Contains(pr, "status of 422") {
			continue
		}
		t.Errorf("browser console: %s", pr)
	}

	t.Run("the CSP stops injected inline code, and the console shows it", func(t *testing.T) {
		// Proves both that the page's CSP holds in a real browser and that
		// the console watch above would have seen a violation.
		var ran bool
		p.eval(`(() => { const s = document.createElement("script"); s.textContent = "window.injected = true";
			document.body.appendChild(s); return window.injected === true; })()`, &ran)
		if ran {
			t.Errorf("an inline script ran despite the CSP")
		}
		stop := time.Now().Add(10 * time.Second)
		for {
			seen := strings.Join(problems(), "\n")
			if strings.Contains(seen, "Content Security Policy") {
				break
			}
			if time.Now().After(stop) {
				t.Fatalf("no CSP violation in the console after an inline script; saw %q", seen)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// visible says whether selector is rendered.
func (p *page) visible(selector string) bool {
	p.t.Helper()
	var v bool
	p.eval(fmt.Sprintf(`getComputedStyle(document.querySelector(%q)).display !== "none"`, selector), &v)
	return v
}

// class returns the element's class attribute.
func (p *page) class(selector string) string {
	p.t.Helper()
	var s string
	p.eval(fmt.Sprintf(`document.querySelector(%q).className`, selector), &s)
	return s
}

// watchProblems collects script exceptions and console errors (CSP
// violations among them) from now on; the returned func lists them.
func (p *page) watchProblems() func() []string {
	exc := p.b.subscribe("Runtime.exceptionThrown")
	logs := p.b.subscribe("Log.entryAdded")
	cons := p.b.subscribe("Runtime.consoleAPICalled")
	return func() []string {
		var out []string
		for {
			select {
			case m := <-exc:
				out = append(out, "exception: "+string(m.Params))
			case m := <-logs:
				var e struct {
					Entry struct{ Level, Source, Text, URL string } `json:"entry"`
				}
				json.Unmarshal(m.Params, &e)
				if e.Entry.Level == "error" || e.Entry.Level == "warning" {
					out = append(out, e.Entry.Source+": "+e.Entry.Text+" "+e.Entry.URL)
				}
			case m := <-cons:
				var c struct{ Type string }
				json.Unmarshal(m.Params, &c)
				if c.Type == "error" || c.Type == "warning" {
					out = append(out, "console."+c.Type+": "+string(m.Params))
				}
			default:
				return out
			}
		}
	}
}

// startAppBehindEdge runs the app on its embedded defaults behind the
// edge with the shipped security headers, and returns the edge's URL and
// the public API key.
func startAppBehindEdge(t *testing.T) (string, string) {
	t.Helper()
	bin := build(t)
	appAddr, metricsAddr := freeAddr(t), freeAddr(t)
	edgeAddr, adminAddr := freeAddr(t), freeAddr(t)
	key := randomHex(t, 16)
	appLog := filepath.Join(artifacts, "ui-app.log")
	start(t, appLog, []string{
		"APP_ADDR=" + appAddr,
		"METRICS_ADDR=" + metricsAddr,
		"DATA_DIR=" + t.TempDir(),
		"PUBLIC_API_KEY=" + key,
		"ADMIN_API_KEY=" + randomHex(t, 16),
	}, filepath.Join(bin, "app"))
	waitHTTP(t, "http://"+appAddr+"/health", appLog)
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	writeFile(t, routes, fmt.Sprintf(`listen: %q
admin: %q
headers:
  Strict-Transport-Security: "max-age=31536000"
  X-Content-Type-Options: nosniff
  X-Frame-Options: SAMEORIGIN
  Referrer-Policy: strict-origin-when-cross-origin
routes:
  - { path: /, to: "http://%s", max_body: 50MiB }
`, edgeAddr, adminAddr, appAddr))
	edgeLog := filepath.Join(artifacts, "ui-edge.log")
	start(t, edgeLog, nil, filepath.Join(bin, "edge"), "run", "-config", routes)
	waitHTTP(t, "http://"+adminAddr+"/healthz", edgeLog)
	return "http://" + edgeAddr, key
}

// waitSearchable waits until the API finds word and every hit's text
// status is settled: the outbox writes the index entry a moment before it.
func waitSearchable(t *testing.T, base, key, word string) {
	t.Helper()
	waitFor(t, word+" searchable", func() (bool, string) {
		n, pending := searchTotal(t, base, key, word)
		return n > 0 && pending == 0, fmt.Sprintf("total %d, %d pending", n, pending)
	})
}

// searchTotal asks the API how many documents match q, and how many of
// the first page's hits still say text_status pending.
func searchTotal(t *testing.T, base, key, q string) (total, pending int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/documents/search?q="+url.QueryEscape(q), nil)
	req.Header.Set("X-API-Key", key)
	resp := do(t, req)
	var r struct {
		Total   int
		Results []struct {
			TextStatus string `json:"text_status"`
		}
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&r) != nil {
		t.Fatalf("search %q: %s", q, resp.Status)
	}
	for _, h := range r.Results {
		if h.TextStatus == "pending" {
			pending++
		}
	}
	return r.Total, pending
}

// uploadText uploads a text document through the API, as curl -F does.
func uploadText(t *testing.T, base, key, name, text string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("document_type", "notes")
	fw, _ := mw.CreateFormFile("file", name)
	io.WriteString(fw, text)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, base+"/documents/upload", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-API-Key", key)
	if resp := do(t, req); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload %s: %s %s", name, resp.Status, readBody(t, resp))
	}
}
