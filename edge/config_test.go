package edge

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

var testEnv = map[string]string{"HASH": testHash, "UP": "http://127.0.0.1:9"}

func TestLoadFull(t *testing.T) {
	cfg, err := Load(strings.NewReader(`
listen: ":8081"
admin: "off"
trusted_proxies: ["10.0.0.0/8", "::1", 192.168.1.7]
client_ip_headers: [X-Real-IP]
access_log: /tmp/access.log
limits: { max_header_bytes: 32KiB, read_header_timeout: 5s, idle_timeout: 1m }
upstream: { dial_timeout: 1s, response_header_timeout: 2s, max_idle_conns_per_host: 64 }
basic_auth: { failures_per_minute: 3, cache_ttl: 30s, cache_entries: 10 }
shutdown_grace: 5s
headers: { X-Frame-Options: DENY, server: "" }
users:
  admins: [ { user: admin, hash: "${HASH}" } ]
routes:
  - path: /grafana
    to: ${UP}/base/
    auth: admins
    pass_auth: true
    host: Dash.Example.com
    headers: { X-Frame-Options: "" }
  - { path: /, to: "${UP}", max_body: 50MiB, strip_prefix: false }
`), envLookup(testEnv))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, ":8081"},
		{"admin", cfg.Admin, "off"},
		{"trusted", cfg.TrustedProxies[2], netip.MustParsePrefix("192.168.1.7/32")},
		{"ip headers", cfg.ClientIPHeaders[0], "X-Real-Ip"},
		{"access log", cfg.AccessLog, "/tmp/access.log"},
		{"max header", cfg.Limits.MaxHeaderBytes, int64(32 << 10)},
		{"idle", cfg.Limits.IdleTimeout, time.Minute},
		{"dial", cfg.Upstream.DialTimeout, time.Second},
		{"idle conns", cfg.Upstream.MaxIdleConnsPerHost, 64},
		{"failures", cfg.BasicAuth.FailuresPerMinute, 3},
		{"grace", cfg.ShutdownGrace, 5 * time.Second},
		{"headers", len(cfg.Headers), 2},
		{"header name", cfg.Headers[1].Name, "Server"},
		{"route to", cfg.Routes[0].To.String(), "http://127.0.0.1:9/base"},
		{"route host", cfg.Routes[0].Host, "dash.example.com"},
		{"pass auth", cfg.Routes[0].PassAuth, true},
		{"route line", cfg.Routes[0].Line, 15},
		{"max body", cfg.Routes[1].MaxBody, int64(50 << 20)},
	}
	for _, w := range want {
		if w.got != w.want {
			t.Errorf("%s = %v, want %v", w.name, w.got, w.want)
		}
	}
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load(strings.NewReader(`routes: [ { path: /, to: "http://127.0.0.1:8000" } ]`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":8080" || cfg.Admin != "127.0.0.1:9180" || cfg.AccessLog != "stdout" ||
		cfg.Limits.MaxHeaderBytes != 64<<10 || cfg.BasicAuth.FailuresPerMinute != 10 ||
		len(cfg.Headers) != 4 || len(cfg.TrustedProxies) != 2 || len(cfg.ClientIPHeaders) != 2 {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

// TestLoadErrors holds every kind of bad file with the message it must get.
func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string // each a line of the error
	}{
		{"empty", ``, []string{"line 1: empty config: want at least routes"}},
		{"not yaml", "routes: [", []string{"line 1: bad YAML: did not find expected node content"}},
		{"tab indent", "routes:\n\t- x", []string{"line 2: bad YAML: found character that cannot start any token"}},
		{"top not mapping", "- a", []string{"line 1: config: want a mapping, got a list"}},
		{"no routes", "listen: \":1\"", []string{"line 1: routes: no routes"}},
		{"unknown top key", "lsten: \":1\"\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 1: config: unknown key "lsten" (want one of ` + strings.Join(topKeys, ", ") + `)`}},
		{"repeated key", "listen: \":1\"\nlisten: \":2\"\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 2: config: key "listen" repeated (first at line 1)`}},
		{"unknown route key", "routes:\n  - { path: /, to: \"${UP}\", strip: true }",
			[]string{`line 2: routes[0]: unknown key "strip" (want one of ` + strings.Join(routeKeys, ", ") + `)`}},
		{"unknown limits key", "limits: { max_body: 1 }\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 1: limits: unknown key "max_body" (want one of max_header_bytes, read_header_timeout, idle_timeout, body_read_timeout)`}},
		{"bad duration", "limits: { idle_timeout: 2 minutes }\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 1: limits.idle_timeout: bad duration "2 minutes" (want e.g. 10s, 2m, 500ms)`}},
		{"negative duration", "shutdown_grace: -1s\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 1: shutdown_grace: bad duration "-1s" (want e.g. 10s, 2m, 500ms)`}},
		{"bad size", "limits: { max_header_bytes: 64KB2 }\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 1: limits.max_header_bytes: bad size "64KB2" (want e.g. 64KiB, 50MiB, 1048576)`}},
		{"bad size unit", "routes:\n  - { path: /, to: \"${UP}\", max_body: 5 parsecs }",
			[]string{`line 2: routes[0].max_body: bad size "5 parsecs" (want e.g. 64KiB, 50MiB, 1048576)`}},
		{"bad cidr", "trusted_proxies: [\"10.0.0.0/33\", 127.0.0.1]\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 1: trusted_proxies[0]: bad CIDR "10.0.0.0/33" (want e.g. 127.0.0.1/32 or ::1)`}},
		{"trusted not list", "trusted_proxies: 10.0.0.0/8\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 1: trusted_proxies: want a list, got "10.0.0.0/8"`}},
		{"bad address", "listen: 8080\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 1: listen: bad address "8080" (want host:port or :port)`}},
		{"bad url", "routes:\n  - { path: /, to: \"127.0.0.1:8000\" }",
			[]string{`line 2: routes[0].to: bad URL "127.0.0.1:8000" (want http://host:port[/base])`}},
		{"bad scheme", "routes:\n  - { path: /, to: \"ftp://h:1\" }",
			[]string{`line 2: routes[0].to: bad URL "ftp://h:1": scheme must be http or https`}},
		{"url with query", "routes:\n  - { path: /, to: \"http://h:1/?a=b\" }",
			[]string{`line 2: routes[0].to: bad URL "http://h:1/?a=b": no user, query or fragment`}},
		{"missing to", "routes:\n  - { path: / }", []string{`line 2: routes[0]: to is missing`}},
		{"missing path", "routes:\n  - { to: \"${UP}\" }", []string{`line 2: routes[0]: path is missing`}},
		{"relative path", "routes:\n  - { path: grafana, to: \"${UP}\" }", []string{`line 2: routes[0].path: "grafana" must start with /`}},
		{"unclean path", "routes:\n  - { path: /grafana/, to: \"${UP}\" }",
			[]string{`line 2: routes[0].path: "/grafana/" is not in normal form (want "/grafana")`}},
		{"dotted path", "routes:\n  - { path: /a/../grafana, to: \"${UP}\" }",
			[]string{`line 2: routes[0].path: "/a/../grafana" is not in normal form (want "/grafana")`}},
		{"encoded slash path", "routes:\n  - { path: /a%2fb, to: \"${UP}\" }",
			[]string{`line 2: routes[0].path: "/a%2fb": path holds an encoded slash`}},
		{"duplicate path", "routes:\n  - { path: /a, to: \"${UP}\" }\n  - { path: /b, to: \"${UP}\" }\n  - { path: /A, to: \"${UP}\" }",
			[]string{`line 4: routes[2]: duplicate route path "/A" (first at line 2)`}},
		{"same path other host", "routes:\n  - { path: /a, to: \"${UP}\" }\n  - { path: /a, to: \"${UP}\", host: x.test }", nil},
		{"duplicate host path", "routes:\n  - { path: /a, to: \"${UP}\", host: x.test }\n  - { path: /a, to: \"${UP}\", host: X.test }",
			[]string{`line 3: routes[1]: duplicate route path "x.test/a" (first at line 2)`}},
		{"bad host", "routes:\n  - { path: /a, to: \"${UP}\", host: \"x.test:80\" }",
			[]string{`line 2: routes[0].host: bad host "x.test:80" (want a name without port)`}},
		{"host no request can spell", "routes:\n  - { path: /a, to: \"${UP}\", host: \"127.0.0.01\" }\n  - { path: /b, to: \"${UP}\", host: \"a..test\" }",
			[]string{`line 2: routes[0].host: bad host "127.0.0.01" (want a name without port)`, `line 3: routes[1].host: bad host "a..test" (want a name without port)`}},
		{"unknown user set", "routes:\n  - { path: /, to: \"${UP}\", auth: admin }",
			[]string{`line 2: routes[0].auth: unknown user set "admin"`}},
		// pass_auth without auth forwards the client's own Authorization
		// (an API key); without pass_auth every route removes it.
		{"pass_auth without auth", "routes:\n  - { path: /, to: \"${UP}\", pass_auth: true }", nil},
		{"bad bool", "routes:\n  - { path: /, to: \"${UP}\", strip_prefix: yes }",
			[]string{`line 2: routes[0].strip_prefix: want true or false, got "yes"`}},
		{"unset variable", "users:\n  admins:\n    - { user: a, hash: \"${NOPE}\" }\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 3: users.admins[0].hash: environment variable NOPE is not set`}},
		{"unset variable in url", "routes:\n  - { path: /, to: \"${MISSING_UP}\" }",
			[]string{`line 2: routes[0].to: environment variable MISSING_UP is not set`}},
		{"bad variable", "routes:\n  - { path: /, to: \"${UP\" }", []string{`line 2: routes[0].to: unterminated ${ in "${UP"`}},
		{"not bcrypt", "users:\n  admins:\n    - { user: a, hash: plain }\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{"line 3: users.admins[0].hash: not a bcrypt hash (make one with `edge hash-password`)"}},
		{"slow hash", "users:\n  admins:\n    - { user: a, hash: \"$2a$20$" + strings.Repeat("a", 53) + "\" }\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{"line 3: users.admins[0].hash: bcrypt cost 20 is too slow (at most 16)"}},
		{"missing hash", "users:\n  admins:\n    - { user: a }\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{"line 3: users.admins[0]: hash is missing (make one with `edge hash-password`)"}},
		{"repeated user", "users:\n  admins:\n    - { user: a, hash: \"${HASH}\" }\n    - { user: a, hash: \"${HASH}\" }\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 4: users.admins[1]: user "a" repeated`}},
		{"user with colon", "users:\n  admins:\n    - { user: \"a:b\", hash: \"${HASH}\" }\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 3: users.admins[0]: user "a:b" may not hold ':' or control characters`}},
		{"bad header name", "headers: { \"X Bad\": v }\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 1: headers: bad header name "X Bad"`}},
		{"header value newline", "headers: { X-A: \"a\\nb\" }\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 1: headers.X-A: control character in header value`}},
		{"route headers not mapping", "routes:\n  - { path: /, to: \"${UP}\", headers: [a] }",
			[]string{`line 2: routes[0].headers: want a mapping, got a list`}},
		{"empty user set", "users: { admins: [] }\nroutes: [ { path: /, to: \"${UP}\", auth: admins } ]",
			[]string{`line 1: users.admins: no users`, `line 2: routes[0].auth: unknown user set "admins"`}},
		{"zero idle conns", "upstream: { max_idle_conns_per_host: 0 }\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 1: upstream.max_idle_conns_per_host: want at least 1`}},
		{"bad count", "basic_auth: { failures_per_minute: many }\nroutes: [ { path: /, to: \"${UP}\" } ]",
			[]string{`line 1: basic_auth.failures_per_minute: want a whole number ≥ 0, got "many"`}},
		{"many at once", `listen: nope
limits: { idle_timeout: soon }
routes:
  - { path: /a, to: "${UP}", auth: ghosts }
  - { path: /a, to: "gopher://x" }
  - { path: b, to: "${UP}", colour: blue }
`, []string{
			`line 1: listen: bad address "nope" (want host:port or :port)`,
			`line 2: limits.idle_timeout: bad duration "soon" (want e.g. 10s, 2m, 500ms)`,
			`line 4: routes[0].auth: unknown user set "ghosts"`,
			`line 5: routes[1].to: bad URL "gopher://x": scheme must be http or https`,
			`line 6: routes[2]: unknown key "colour" (want one of ` + strings.Join(routeKeys, ", ") + `)`,
			`line 6: routes[2].path: "b" must start with /`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(strings.NewReader(tc.yaml), envLookup(testEnv))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want errors %q, got none", tc.want)
			}
			if cfg != nil {
				t.Error("a config came back with the error")
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(tc.want, "\n"))
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Line == 0 {
				t.Errorf("not a *ConfigError with a line: %#v", err)
			}
		})
	}
}

func TestLoadFileNamesTheFile(t *testing.T) {
	p := t.TempDir() + "/r.yaml"
	if err := os.WriteFile(p, []byte("routes:\n  - { path: /, to: nope }\n  - { path: /, to: nope }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(p, nil)
	want := p + `:2: routes[0].to: bad URL "nope" (want http://host:port[/base])` + "\n" +
		p + `:3: routes[1].to: bad URL "nope" (want http://host:port[/base])`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

// The shipped routes.yaml is valid once EDGE_ADMIN_HASH is set, and routes
// the stack as documented.
func TestShippedRoutes(t *testing.T) {
	_, err := LoadFile("../routes.yaml", envLookup(nil))
	if err == nil || !strings.Contains(err.Error(), "EDGE_ADMIN_HASH is not set") {
		t.Errorf("without EDGE_ADMIN_HASH: %v", err)
	}
	cfg, err := LoadFile("../routes.yaml", envLookup(map[string]string{"EDGE_ADMIN_HASH": testHash}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/grafana": "admins", "/prometheus": "admins", "/alertmanager": "admins", "/minio": "admins", "/": ""}
	for _, r := range cfg.Routes {
		auth, ok := want[r.Path]
		if !ok || auth != r.Auth {
			t.Errorf("route %s auth %q", r.Path, r.Auth)
		}
		if r.StripPrefix != (r.Path == "/minio") {
			t.Errorf("route %s strip_prefix %v", r.Path, r.StripPrefix)
		}
		delete(want, r.Path)
	}
	if len(want) > 0 {
		t.Errorf("routes missing: %v", want)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "64KiB": 64 << 10, "50MiB": 50 << 20,
		"1GiB": 1 << 30, "2KB": 2000, "3MB": 3e6, "10B": 10, "5 MiB": 5 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "1TiB", "10 kib", "99999999999GiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func FuzzLoadConfig(f *testing.F) {
	seeds := []string{
		"routes: [ { path: /, to: \"http://127.0.0.1:1\" } ]",
		"listen: \":1\"\nusers: { a: [ { user: u, hash: \"${HASH}\" } ] }\nroutes: [ { path: /x, to: \"http://h:1/b\", auth: a, strip_prefix: true } ]",
		"routes: &a [ { path: /, to: *a } ]",
		"routes:\n  - path: /\n    to: http://h:1\n    headers: { A: \"\" }\n    max_body: 1KiB",
		"a: b: c",
		"{",
		"routes: [ { path: \"/%2e\", to: \"${X\" } ]",
		"upstream: { tls_server_name: a.internal, tls_insecure_skip_verify: true, tls_ca: \"\" }\nroutes: [ { path: /, to: \"https://h:1\" } ]",
	}
	if b, err := os.ReadFile("../routes.yaml"); err == nil {
		seeds = append(seeds, string(b))
	}
	for _, s := range seeds {
		f.Add(s)
	}
	env := envLookup(map[string]string{"HASH": testHash, "EDGE_ADMIN_HASH": testHash})
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := Load(strings.NewReader(s), env)
		if err != nil {
			if cfg != nil {
				t.Fatal("config and error")
			}
			return
		}
		if len(cfg.Routes) == 0 {
			t.Fatal("valid config without routes")
		}
		for _, r := range cfg.Routes {
			if r.To == nil || r.Path == "" || r.Path[0] != '/' {
				t.Fatalf("bad route accepted: %+v", r)
			}
			if r.Auth != "" && cfg.Users[r.Auth] == nil {
				t.Fatalf("route with an unknown user set accepted: %+v", r)
			}
		}
	})
}
