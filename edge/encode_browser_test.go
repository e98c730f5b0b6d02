package edge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"selfhost.dev/edgeapp/internal/testserver"
)

// chromiumPath returns Debian's headless Chromium, or skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testserver.Skip(t, "chromium not found: apt-get install chromium")
	return ""
}

// dumpDOM loads url in headless Chromium and returns the DOM once the page
// is idle (its fetches done and its script finished).
func dumpDOM(t *testing.T, chromium, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=15000", "--dump-dom", url)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v", url, err)
	}
	return string(out)
}

// TestEncodeInBrowser has a real browser load a page and a script bundle
// through an encode route (both compressed, decoded and run by Chromium),
// and an SSE page that must receive its events one by one: the upstream
// sends an event only after the page has acknowledged the one before, so
// a proxy that held the stream back would leave the page waiting.
func TestEncodeInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	bundle := "const data = '" + strings.Repeat("abcdefghij", 500) + "';\n" +
		"document.getElementById('out').textContent = 'bundle ran ' + data.length;\n"
	acks := make(chan int, 10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/app/index.html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(`<!doctype html><html><head><title>encoded</title>
<!-- ` + strings.Repeat("padding so the page is worth compressing. ", 30) + ` -->
</head><body><p id="out">bundle did not run</p><script src="bundle.js"></script></body></html>`))
		case "/app/bundle.js":
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = w.Write([]byte(bundle))
		case "/app/sse.html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(`<!doctype html><html><body><pre id="out">waiting</pre><script>
const got = [];
const es = new EventSource('events');
es.onmessage = (ev) => {
  got.push(ev.data);
  document.getElementById('out').textContent = 'events: ' + got.join(',');
  fetch('ack?i=' + got.length).then(() => { if (got.length === 3) { es.close(); document.getElementById('out').textContent += ' done'; } });
};
</script>` + "<!-- " + strings.Repeat("padding ", 100) + " --></body></html>"))
		case "/app/events":
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			for i := 1; i <= 3; i++ {
				_, _ = w.Write([]byte("retry: 600000\ndata: e" + strconv.Itoa(i) + "\n\n"))
				http.NewResponseController(w).Flush()
				select {
				case n := <-acks:
					if n != i {
						return
					}
				case <-time.After(10 * time.Second):
					return // held back: the page never acknowledged
				case <-r.Context().Done():
					return
				}
			}
		case "/app/ack":
			n, _ := strconv.Atoi(r.URL.Query().Get("i"))
			acks <- n
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(up.Close)
	e := startEdge(t, `
encode: [zstd, gzip]
routes:
  - { path: /, to: "${UP}" }
`, map[string]string{"UP": up.URL})

	dom := dumpDOM(t, chromium, e.url+"/app/index.html")
	if !strings.Contains(dom, "bundle ran 5000") {
		t.Errorf("the encoded bundle did not run:\n%s", dom)
	}
	waitFor(t, func() bool {
		log := e.accessLg.String()
		return strings.Contains(log, `"path":"/app/bundle.js"`)
	})
	for _, line := range strings.Split(e.accessLg.String(), "\n") {
		if strings.Contains(line, `"path":"/app/bundle.js"`) || strings.Contains(line, `"path":"/app/index.html"`) {
			if !strings.Contains(line, `"encoding":"zstd"`) && !strings.Contains(line, `"encoding":"gzip"`) {
				t.Errorf("not compressed for the browser: %s", line)
			}
		}
	}

	dom = dumpDOM(t, chromium, e.url+"/app/sse.html")
	if !strings.Contains(dom, "events: e1,e2,e3 done") {
		t.Errorf("SSE through an encode route did not arrive event by event:\n%s", dom)
	}
}
