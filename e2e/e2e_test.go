//go:build e2e

// Package e2e runs the edge in front of the real app, Prometheus and
// Alertmanager, all on loopback, and checks what an admin and an API
// client see through it, down to a Chromium screenshot of the Prometheus UI.
//
//	make e2e   # go test -tags e2e -count=1 ./e2e/
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"selfhost.dev/edgeapp/internal/testserver"
)

// artifacts is where the screenshot and the servers' logs are kept
// (gitignored), relative to this package's directory.
const artifacts = "../e2e-artifacts"

// deadline bounds every wait for something to become true: scrapes every
// second, rules evaluated every second, so seconds suffice on a busy machine.
const deadline = 90 * time.Second

// stack is everything running for the test, with the addresses to reach it.
type stack struct {
	edgeURL  string // http://127.0.0.1:port, the public listener
	user     string
	password string
	apiKey   string
	edgeLog  string
	appLog   string
}

func TestStackThroughEdge(t *testing.T) {
	s := startStack(t)

	t.Run("dashboards demand credentials", func(t *testing.T) {
		for _, p := range []string{"/prometheus", "/prometheus/", "/prometheus/api/v1/query?query=up", "/alertmanager/", "/alertmanager/api/v2/alerts"} {
			resp := s.get(t, p, false)
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("GET %s without credentials: %s, WWW-Authenticate %q; want 401 with a Basic challenge", p, resp.Status, resp.Header.Get("WWW-Authenticate"))
			}
		}
		req := s.request(t, http.MethodGet, "/prometheus/graph", nil, false)
		req.SetBasicAuth(s.user, "wrong-"+s.password)
		if resp := do(t, req); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /prometheus/graph with a wrong password: %s, want 401", resp.Status)
		}
	})

	t.Run("Prometheus UI and API under /prometheus", func(t *testing.T) {
		resp := s.get(t, "/prometheus/graph", true)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Prometheus") {
			t.Fatalf("GET /prometheus/graph: %s\n%.500s", resp.Status, body)
		}
		// The bare prefix redirects within the prefix (--web.external-url).
		resp = s.get(t, "/prometheus", true)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/prometheus/") {
			t.Errorf("GET /prometheus ended at %s with %s, want a page under /prometheus/", resp.Request.URL.Path, resp.Status)
		}
		waitFor(t, "the edge and app targets up in Prometheus", func() (bool, string) {
			up := s.query(t, "up")
			return up["edge"] == 1 && up["app"] == 1, fmt.Sprintf("up by job: %v", up)
		})
	})

	t.Run("Alertmanager under /alertmanager shows the firing test alert", func(t *testing.T) {
		resp := s.get(t, "/alertmanager/", true)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Alertmanager") {
			t.Fatalf("GET /alertmanager/: %s\n%.500s", resp.Status, body)
		}
		waitFor(t, "E2EAlwaysFiring in Alertmanager's API", func() (bool, string) {
			resp := s.get(t, "/alertmanager/api/v2/alerts", true)
			body := readBody(t, resp)
			var alerts []struct {
				Labels map[string]string `json:"labels"`
				Status struct {
					State string `json:"state"`
				} `json:"status"`
			}
			if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &alerts) != nil {
				return false, resp.Status + " " + body
			}
			for _, a := range alerts {
				if a.Labels["alertname"] == "E2EAlwaysFiring" && a.Status.State == "active" {
					return true, ""
				}
			}
			return false, body
		})
	})

	t.Run("a contact through the edge is counted in Prometheus", func(t *testing.T) {
		payload := `{"name":"E2E","email":"e2e@example.org","message":"hello through the edge"}`
		req := s.request(t, http.MethodPost, "/contact", strings.NewReader(payload), false)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", s.apiKey)
		resp := do(t, req)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /contact: %s\n%s", resp.Status, body)
		}
		if resp.Header.Get("X-Request-ID") == "" {
			t.Errorf("POST /contact: no X-Request-ID in the response")
		}
		waitFor(t, "contact_submissions_total >= 1 in Prometheus", func() (bool, string) {
			v := s.query(t, "sum(contact_submissions_total)")
			return v[""] >= 1, fmt.Sprintf("%v", v)
		})
		// The edge counted the request on its app route.
		waitFor(t, "edge_requests_total for the POST in Prometheus", func() (bool, string) {
			v := s.query(t, `sum(edge_requests_total{method="POST",code="201"})`)
			return v[""] >= 1, fmt.Sprintf("%v", v)
		})
	})

	t.Run("the shipped SLO rules record from the real edge's metrics", func(t *testing.T) {
		// No 5xx and nothing slow so far: both ratios are defined and zero.
		for _, rec := range []string{"slo:edge_availability:error_ratio_rate5m", "slo:edge_latency:slow_ratio_rate5m"} {
			waitFor(t, rec+" recorded", func() (bool, string) {
				v, ok := s.query(t, rec)[""]
				return ok && v == 0, fmt.Sprintf("%s = %v (present %v)", rec, v, ok)
			})
		}
	})

	t.Run("Chromium renders the Prometheus UI through Basic Auth", func(t *testing.T) {
		s.screenshot(t)
	})
}

// startStack builds the binaries and starts Alertmanager, Prometheus, the
// app and the edge, each on its own free loopback port.
func startStack(t *testing.T) *stack {
	t.Helper()
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := build(t)
	edgeAddr, adminAddr := freeAddr(t), freeAddr(t)
	appAddr, appMetricsAddr := freeAddr(t), freeAddr(t)
	edgeURL := "http://" + edgeAddr

	am := testserver.StartAlertmanager(t, testserver.AlertmanagerConfig{
		// No receiver integration: the test reads the alert from the API.
		Config:      "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
		ExternalURL: edgeURL + "/alertmanager/",
	})
	prom := testserver.StartPrometheus(t, testserver.PrometheusConfig{
		Config: fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [e2e-rules.yml, alert-rules.yml, slo-rules.yml]
alerting:
  alertmanagers:
    - path_prefix: /alertmanager
      static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: edge
    static_configs:
      - targets: [%q]
  - job_name: app
    static_configs:
      - targets: [%q]
`, am.Addr, adminAddr, appMetricsAddr),
		Files: map[string]string{"e2e-rules.yml": `groups:
  - name: e2e
    rules:
      - alert: E2EAlwaysFiring
        expr: vector(1)
        labels: { severity: warning, service: e2e }
        annotations: { summary: "Always firing, to prove the alert path" }
`,
			// The shipped rules, evaluated against the real edge and app.
			"alert-rules.yml": readFile(t, "../deploy/prometheus/alert-rules.yml"),
			"slo-rules.yml":   readFile(t, "../deploy/prometheus/slo-rules.yml"),
		},
		ExternalURL: edgeURL + "/prometheus/",
		// Alerts go out at the next evaluation, not up to a minute later
		// when the first send raced Alertmanager's discovery.
		Args: []string{"--rules.alert.resend-delay=1s"},
	})

	s := &stack{
		edgeURL:  edgeURL,
		user:     "admin",
		password: randomHex(t, 12),
		apiKey:   randomHex(t, 16),
	}

	// The app on its embedded defaults: SQLite, files and search in a temp dir.
	s.appLog = filepath.Join(artifacts, "app.log")
	start(t, s.appLog, []string{
		"APP_ADDR=" + appAddr,
		"METRICS_ADDR=" + appMetricsAddr,
		"DATA_DIR=" + t.TempDir(),
		"PUBLIC_API_KEY=" + s.apiKey,
		"ADMIN_API_KEY=" + randomHex(t, 16),
	}, filepath.Join(bin, "app"))
	waitHTTP(t, "http://"+appAddr+"/health", s.appLog)

	// The edge, with routes like the shipped routes.yaml. Grafana and the
	// MinIO console are not running: their routes only have to load.
	// The hash as the README makes it: the password on edge hash-password's stdin.
	hashCmd := exec.Command(filepath.Join(bin, "edge"), "hash-password")
	hashCmd.Stdin = strings.NewReader(s.password + "\n")
	hashOut, err := hashCmd.Output()
	if err != nil {
		t.Fatalf("edge hash-password: %v", err)
	}
	hash := bytes.TrimSpace(hashOut)
	if bcrypt.CompareHashAndPassword(hash, []byte(s.password)) != nil {
		t.Fatalf("edge hash-password printed %q, not a bcrypt hash of the password", hash)
	}
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	unused := freeAddr(t)
	writeFile(t, routes, fmt.Sprintf(`listen: %q
admin: %q
trusted_proxies: ["127.0.0.1/32", "::1/128"]
client_ip_headers: ["CF-Connecting-IP", "X-Forwarded-For"]
access_log: stdout
limits: { max_header_bytes: 64KiB, read_header_timeout: 10s, idle_timeout: 120s }
headers:
  Strict-Transport-Security: "max-age=31536000"
  X-Content-Type-Options: nosniff
  X-Frame-Options: SAMEORIGIN
  Referrer-Policy: strict-origin-when-cross-origin
users:
  admins:
    - { user: admin, hash: "${EDGE_ADMIN_HASH}" }
routes:
  - { path: /grafana,      to: "http://%s", auth: admins }
  - { path: /prometheus,   to: "http://%s", auth: admins }
  - { path: /alertmanager, to: "http://%s", auth: admins }
  - { path: /minio,        to: "http://%s", auth: admins, strip_prefix: true }
  - { path: /,             to: "http://%s", max_body: 50MiB }
`, edgeAddr, adminAddr, unused, prom.Addr, am.Addr, unused, appAddr))
	s.edgeLog = filepath.Join(artifacts, "edge.log")
	start(t, s.edgeLog, []string{"EDGE_ADMIN_HASH=" + string(hash)}, filepath.Join(bin, "edge"), "run", "-config", routes)
	waitHTTP(t, "http://"+adminAddr+"/healthz", s.edgeLog)
	return s
}

// query runs an instant PromQL query through the edge and returns the
// values by job label ("" when the result has none).
func (s *stack) query(t *testing.T, q string) map[string]float64 {
	t.Helper()
	resp := s.get(t, "/prometheus/api/v1/query?query="+url.QueryEscape(q), true)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("query %s through the edge: %s\n%s", q, resp.Status, body)
	}
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %v\n%s", q, err, body)
	}
	out := map[string]float64{}
	for _, res := range r.Data.Result {
		str, _ := res.Value[1].(string)
		v, _ := strconv.ParseFloat(str, 64)
		out[res.Metric["job"]] = v
	}
	return out
}

func (s *stack) request(t *testing.T, method, path string, body io.Reader, auth bool) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, s.edgeURL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(s.user, s.password)
	}
	return req
}

func (s *stack) get(t *testing.T, path string, auth bool) *http.Response {
	t.Helper()
	return do(t, s.request(t, http.MethodGet, path, nil, auth))
}

// client follows redirects with the credentials, as a browser that was
// already asked for them would.
var client = &http.Client{
	Timeout: 10 * time.Second,
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if u, p, ok := via[0].BasicAuth(); ok && req.URL.Host == via[0].URL.Host {
			req.SetBasicAuth(u, p)
		}
		return nil
	},
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// screenshot loads /prometheus/graph in headless Chromium with the
// credentials in the URL, keeps the PNG in e2e-artifacts/, and checks the
// rendered DOM is the Prometheus UI rather than an error page.
func (s *stack) screenshot(t *testing.T) {
	t.Helper()
	chromium := ""
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		testserver.Skip(t, "chromium not found: apt-get install chromium")
	}
	// The graph page with `up` in its table: the UI's own API calls must
	// get through the edge with the cached credentials too.
	u, err := url.Parse(s.edgeURL + "/prometheus/graph?g0.expr=up&g0.tab=1&g0.range_input=5m")
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(s.user, s.password)
	png, err := filepath.Abs(filepath.Join(artifacts, "prometheus-graph.png"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(png)
	profile := t.TempDir()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--no-default-browser-check",
		"--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
		// Nothing but loopback resolves: the browser cannot leave the machine.
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--user-data-dir=" + profile,
		"--window-size=1280,800",
		// Let the React UI fetch and render before the capture.
		"--virtual-time-budget=10000",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	shot := exec.CommandContext(ctx, chromium, append(args, "--screenshot="+png, u.String())...)
	if out, err := shot.CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, lastLines(string(out), 20))
	}
	info, err := os.Stat(png)
	if err != nil || info.Size() < 5000 {
		t.Fatalf("screenshot %s: %v (size %d): too small to be a rendered page", png, err, sizeOf(info))
	}
	t.Logf("screenshot kept at %s (%d bytes)", png, info.Size())

	dump := exec.CommandContext(ctx, chromium, append(args, "--dump-dom", u.String())...)
	var dom, stderr bytes.Buffer
	dump.Stdout, dump.Stderr = &dom, &stderr
	if err := dump.Run(); err != nil {
		t.Fatalf("chromium --dump-dom: %v\n%s", err, lastLines(stderr.String(), 20))
	}
	writeFile(t, filepath.Join(artifacts, "prometheus-graph.html"), dom.String())
	html := dom.String()
	if !strings.Contains(html, "Prometheus") || strings.Contains(html, "Unauthorized") {
		t.Fatalf("Chromium's page is not the Prometheus UI:\n%.1000s", html)
	}
	// The table the UI filled from its own API calls through the edge.
	for _, job := range []string{`job="edge"`, `job="app"`} {
		if !strings.Contains(html, job) {
			t.Errorf("the rendered UI shows no up{%s} row; the UI's API calls did not get through", job)
		}
	}
}

func sizeOf(info os.FileInfo) int64 {
	if info == nil {
		return 0
	}
	return info.Size()
}

// build compiles cmd/edge and cmd/app into a temp dir.
func build(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// The flags of `make build`, so a built tree's cache serves the test.
	cmd := exec.Command("go", "build", "-trimpath", "-o", dir+"/", "./cmd/edge", "./cmd/app")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/edge ./cmd/app: %v\n%s", err, out)
	}
	return dir
}

// start runs a binary with env added, its output in logPath, and stops it
// with SIGTERM when the test ends.
func start(t *testing.T, logPath string, env []string, name string, args ...string) {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logFile.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
}

// waitHTTP waits until url answers 200, or fails with the log's tail.
func waitHTTP(t *testing.T, url, logPath string) {
	t.Helper()
	stop := time.Now().Add(deadline)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(stop) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("%s not ready: %v\n%s", url, err, lastLines(string(log), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor polls cond until it holds, or fails with its last word.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	stop := time.Now().Add(deadline)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(stop) {
			t.Fatalf("gave up waiting for %s; last: %s", what, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
