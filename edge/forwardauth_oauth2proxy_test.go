package edge

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"selfhost.dev/edgeapp/internal/testserver"
)

// The whole browser flow through a real oauth2-proxy in front of a mock
// OIDC provider (github.com/oauth2-proxy/mockoidc, in-process: it logs in
// its default user without a form): 302 to the login, the login, the
// session cookie, then 200 with the user's headers at the upstream. A
// forged X-Auth-Request-User never reaches the upstream, and with
// oauth2-proxy stopped the route answers 503.
func TestForwardAuthOAuth2Proxy(t *testing.T) {
	bin, err := exec.LookPath("oauth2-proxy")
	if err != nil {
		testserver.Skip(t, "oauth2-proxy not found: go install github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6 (or make tools)")
	}
	oidc, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = oidc.Shutdown() })
	up := newUpstream(t)
	proxyAddr := freeAddr(t)
	e := startEdge(t, `
auth_servers:
  sso:
    url: "http://${O2P}/"
    copy_headers: [X-Auth-Request-User, X-Auth-Request-Email]
routes:
  - { path: /oauth2,  to: "http://${O2P}" }
  - { path: /grafana, to: "${UP}", forward_auth: sso }
`, map[string]string{"UP": up.URL, "O2P": proxyAddr})

	cfg := oidc.Config()
	var logs bytes.Buffer
	cmd := exec.Command(bin,
		"--http-address="+proxyAddr,
		"--provider=oidc",
		"--oidc-issuer-url="+cfg.Issuer,
		"--client-id="+cfg.ClientID,
		"--client-secret="+cfg.ClientSecret,
		"--redirect-url="+e.url+"/oauth2/callback",
		"--cookie-secret=0123456789abcdef0123456789abcdef",
		"--cookie-secure=false",
		"--email-domain=*",
		"--upstream=static://202",
		"--reverse-proxy=true",
		"--set-xauthrequest=true",
		"--skip-provider-button=true",
		"--whitelist-domain=127.0.0.1:*",
	)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-done
	}
	// Cleanups run last first: the process is stopped before its output is read.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("oauth2-proxy output:\n%s", logs.String())
		}
	})
	t.Cleanup(stop)
	waitListening(t, proxyAddr, done)

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(url string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Accept", "text/html")
		req.Header.Set("X-Auth-Request-User", "mallory") // forged on every request
		res, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}

	// 1. Not logged in: oauth2-proxy's 302 to the provider, with its CSRF cookie.
	res := get(e.url + "/grafana/dashboards")
	login := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(login, cfg.Issuer) {
		t.Fatalf("not logged in: %d to %q, want 302 to %s", res.StatusCode, login, cfg.Issuer)
	}
	if up.hits.Load() != 0 {
		t.Fatal("the upstream was reached without a session")
	}
	// 2. The provider logs the user in and sends the browser to the callback.
	res = get(login)
	callback := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(callback, e.url+"/oauth2/callback") {
		t.Fatalf("provider: %d to %q", res.StatusCode, callback)
	}
	// 3. The callback, routed by the edge to oauth2-proxy, sets the session cookie.
	res = get(callback)
	back := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasSuffix(back, "/grafana/dashboards") {
		t.Fatalf("callback: %d to %q: %s", res.StatusCode, back, body(t, res))
	}
	if !strings.HasPrefix(back, "http") {
		back = e.url + back
	}
	// 4. Logged in: the upstream sees the user, not the forged header.
	s := seenBy(t, get(back))
	if got := s.Header["X-Auth-Request-Email"]; len(got) != 1 || got[0] != "jane.doe@example.com" {
		t.Errorf("upstream X-Auth-Request-Email %q, want [jane.doe@example.com]", got)
	}
	if got := s.Header["X-Auth-Request-User"]; len(got) != 1 || got[0] == "mallory" || got[0] == "" {
		t.Errorf("upstream X-Auth-Request-User %q, want oauth2-proxy's user", got)
	}
	if v := e.metric(t, `edge_forward_auth_total{result="allowed",route="/grafana"}`); v != 1 {
		t.Errorf(`edge_forward_auth_total{result="allowed",route="/grafana"} = %v, want 1`, v)
	}

	// 5. oauth2-proxy stopped: 503, never through.
	stop()
	hits := up.hits.Load()
	res = get(e.url + "/grafana/dashboards")
	if res.StatusCode != http.StatusServiceUnavailable || up.hits.Load() != hits {
		t.Errorf("auth server stopped: %d, upstream hits %d → %d; want 503 and none", res.StatusCode, hits, up.hits.Load())
	}
}

// freeAddr returns a loopback address that was free a moment ago, for a
// server that picks no port of its own.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitListening waits until addr accepts connections, or the process
// exits (done closed), or 30 s pass.
func waitListening(t testing.TB, addr string, done <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatal("oauth2-proxy exited before listening")
		case <-ctx.Done():
			t.Fatalf("oauth2-proxy not listening on %s after 30s", addr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
