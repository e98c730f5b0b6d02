package edge

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const authYAML = `
basic_auth: { failures_per_minute: 100 }
users:
  admins: [ { user: admin, hash: "${HASH}" } ]
routes:
  - { path: /grafana, to: "${UP}", auth: admins }
  - { path: /passed,  to: "${UP}", auth: admins, pass_auth: true }
  - { path: /,        to: "${UP}" }
`

func TestBasicAuth(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, authYAML, map[string]string{"UP": up.URL})

	res := e.get(t, "/grafana/")
	if res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") != `Basic realm="admins", charset="UTF-8"` {
		t.Errorf("no credentials: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	for _, h := range []string{
		basic(testUser, "wrong"),
		basic("nobody", testPassword),
		basic(testUser, ""),
		"Authorization: Basic !!!",
		"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("no-colon")),
		"Authorization: Bearer abc",
	} {
		if res := e.get(t, "/grafana/", h); res.StatusCode != 401 {
			t.Errorf("%q: %d, want 401", h, res.StatusCode)
		}
	}
	if up.hits.Load() != 0 {
		t.Fatal("a request without the right credentials reached the upstream")
	}
	// Three of those are wrong credentials (wrong password, unknown user,
	// empty password); the malformed ones are mere challenges.
	if v := e.metric(t, `edge_auth_failures_total{route="/grafana"}`); v != 3 {
		t.Errorf("auth failures = %v, want 3", v)
	}

	// The right credentials, in either scheme case; the user is not told
	// apart by header case.
	res = e.get(t, "/grafana/api", basic(testUser, testPassword))
	s := seenBy(t, res)
	if _, ok := s.Header["Authorization"]; ok {
		t.Error("Authorization was forwarded to a route without pass_auth")
	}
	res = e.get(t, "/passed/x", "Authorization: basic "+base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword)))
	if s := seenBy(t, res); !strings.HasPrefix(s.Header.Get("Authorization"), "basic ") {
		t.Errorf("pass_auth: upstream got Authorization %q", s.Header.Get("Authorization"))
	}
	// A route without auth removes Authorization too, unless it sets
	// pass_auth (see TestAuthorizationNotForwarded): browsers resend the
	// edge's credentials site-wide.
	res = e.get(t, "/api", "Authorization: Bearer key")
	if s := seenBy(t, res); s.Header.Get("Authorization") != "" {
		t.Errorf("unauthenticated route: upstream got Authorization %q", s.Header.Get("Authorization"))
	}
	// The user is in the access log; the password never is.
	e.shutdown(t)
	log := e.accessLg.String()
	if !strings.Contains(log, `"user":"admin"`) {
		t.Errorf("no user in the access log:\n%s", log)
	}
	if strings.Contains(log, testPassword) || strings.Contains(log, base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword))) {
		t.Errorf("the password is in the access log:\n%s", log)
	}
}

func TestAuthCache(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, authYAML, map[string]string{"UP": up.URL})
	for i := 0; i < 3; i++ {
		if res := e.get(t, "/grafana/", basic(testUser, testPassword)); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	e.auth.cache.mu.RLock()
	n := len(e.auth.cache.entries)
	e.auth.cache.mu.RUnlock()
	if n != 1 {
		t.Errorf("cache holds %d entries, want 1", n)
	}
	// A changed hash on reload invalidates the cached password.
	e.env["HASH"] = mustHash(t, "new password")
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if res := e.get(t, "/grafana/", basic(testUser, testPassword)); res.StatusCode != 401 {
		t.Errorf("old password after the hash changed: %d, want 401", res.StatusCode)
	}
	if res := e.get(t, "/grafana/", basic(testUser, "new password")); res.StatusCode != 200 {
		t.Errorf("new password: %d, want 200", res.StatusCode)
	}
}

func mustHash(t testing.TB, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestAuthCacheBounded(t *testing.T) {
	c := newAuthCache()
	c.configure(time.Minute, 10)
	now := time.Now()
	for i := 0; i < 100; i++ {
		c.put(c.key("u", []byte("h"), []byte(strconv.Itoa(i))), now)
	}
	if n := len(c.entries); n > 10 {
		t.Errorf("%d entries, want at most 10", n)
	}
	k := c.key("u", []byte("h"), []byte("x"))
	c.put(k, now)
	if !c.valid(k, now.Add(59*time.Second)) || c.valid(k, now.Add(61*time.Second)) {
		t.Error("TTL not honoured")
	}
}

func TestAuthThrottle(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, `
trusted_proxies: ["127.0.0.1/32"]
basic_auth: { failures_per_minute: 3 }
users:
  admins: [ { user: admin, hash: "${HASH}" } ]
routes:
  - { path: /grafana, to: "${UP}", auth: admins }
`, map[string]string{"UP": up.URL})
	from := func(ip string) string { return "CF-Connecting-IP: " + ip }
	for i := 0; i < 3; i++ {
		if res := e.get(t, "/grafana/", basic(testUser, "guess"+strconv.Itoa(i)), from("203.0.113.9")); res.StatusCode != 401 {
			t.Fatalf("failure %d: %d", i, res.StatusCode)
		}
	}
	for _, h := range []string{basic(testUser, "guess"), basic(testUser, testPassword)} {
		res := e.get(t, "/grafana/", h, from("203.0.113.9"))
		ra, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		if res.StatusCode != 429 || ra < 1 || ra > 60 {
			t.Errorf("throttled client: %d Retry-After %q, want 429 and 1..60", res.StatusCode, res.Header.Get("Retry-After"))
		}
	}
	// Another client is not affected.
	if res := e.get(t, "/grafana/", basic(testUser, testPassword), from("198.51.100.1")); res.StatusCode != 200 {
		t.Errorf("other client: %d", res.StatusCode)
	}
	// The window ends.
	e.auth.throttle.mu.Lock()
	e.auth.throttle.clients["203.0.113.9"].start = time.Now().Add(-61 * time.Second)
	e.auth.throttle.mu.Unlock()
	if res := e.get(t, "/grafana/", basic(testUser, testPassword), from("203.0.113.9")); res.StatusCode != 200 {
		t.Errorf("after the window: %d", res.StatusCode)
	}
}

func TestParseBasic(t *testing.T) {
	var buf [256]byte
	for h, want := range map[string]string{
		"Basic " + base64.StdEncoding.EncodeToString([]byte("a:b")):    "a|b",
		"BASIC  " + base64.StdEncoding.EncodeToString([]byte("a:b:c")): "a|b:c",
		"Basic " + base64.StdEncoding.EncodeToString([]byte(":")):      "|",
		"Basic " + base64.StdEncoding.EncodeToString([]byte("ab")):     "",
		"Basic " + strings.Repeat("QUFB", 100):                         "",
		"Basic":                                                        "",
		"Bearer x":                                                     "",
	} {
		u, p, ok := parseBasic(h, buf[:])
		got := ""
		if ok {
			got = string(u) + "|" + string(p)
		}
		if got != want {
			t.Errorf("parseBasic(%q) = %q, want %q", h, got, want)
		}
	}
}
