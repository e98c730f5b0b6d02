package edge

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestLoadAccess(t *testing.T) {
	cfg, err := Load(strings.NewReader(`
auth_servers:
  sso:
    url: http://127.0.0.1:4180/oauth2/auth
    copy_headers: [x-auth-request-user, X-Auth-Request-Email]
    timeout: 3s
    cache_ttl: 10s
allow: [10.0.0.0/8]
deny: [10.9.9.9]
routes:
  - { path: /grafana, to: "http://127.0.0.1:3000", forward_auth: sso }
  - { path: /prometheus, to: "http://127.0.0.1:9090", allow: [192.168.1.0/24, "2001:db8::/32"], deny: [] }
  - { path: /contact, to: "http://127.0.0.1:8000", rate_limit: { rate: 10/m, burst: 5 } }
  - { path: /api, to: "http://127.0.0.1:8000", rate_limit: { rate: 100/s, max_clients: 50 } }
  - { path: /open, to: "http://127.0.0.1:8000", allow: [] }
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	as := cfg.AuthServers["sso"]
	if as == nil || as.URL.String() != "http://127.0.0.1:4180/oauth2/auth" || as.Timeout != 3*time.Second || as.CacheTTL != 10*time.Second ||
		as.CacheEntries != 1024 || strings.Join(as.CopyHeaders, ",") != "X-Auth-Request-User,X-Auth-Request-Email" {
		t.Errorf("auth server %+v", as)
	}
	if len(cfg.Allow) != 1 || cfg.Allow[0] != netip.MustParsePrefix("10.0.0.0/8") || cfg.Deny[0] != netip.MustParsePrefix("10.9.9.9/32") {
		t.Errorf("global lists %v %v", cfg.Allow, cfg.Deny)
	}
	r := cfg.Routes
	if r[0].ForwardAuth != "sso" || r[0].Allow != nil || r[0].Deny != nil {
		t.Errorf("route 0 %+v", r[0])
	}
	if len(r[1].Allow) != 2 || r[1].Deny == nil || len(r[1].Deny) != 0 {
		t.Errorf("route 1 lists %v %v", r[1].Allow, r[1].Deny)
	}
	if rl := r[2].RateLimit; rl == nil || *rl != (RateLimit{Rate: 10, Per: time.Minute, Burst: 5, MaxClients: 100_000}) || rl.String() != "10/m" {
		t.Errorf("route 2 rate limit %+v", rl)
	}
	if rl := r[3].RateLimit; rl == nil || *rl != (RateLimit{Rate: 100, Per: time.Second, Burst: 100, MaxClients: 50}) {
		t.Errorf("route 3 rate limit %+v (burst defaults to the rate)", rl)
	}
	if r[4].Allow == nil || len(r[4].Allow) != 0 {
		t.Errorf("route 4: allow: [] must be kept as an empty list, got %v", r[4].Allow)
	}
}

func TestLoadAccessErrors(t *testing.T) {
	const to = `to: "http://127.0.0.1:1"`
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown auth server", "routes:\n  - { path: /, " + to + ", forward_auth: sso }",
			[]string{`line 2: routes[0].forward_auth: unknown auth server "sso" (define it under auth_servers)`}},
		{"empty auth server variable", "routes:\n  - { path: /, " + to + ", forward_auth: \"${EMPTY}\" }",
			[]string{`line 2: routes[0].forward_auth: "${EMPTY}" is empty (want an auth server; leave forward_auth out for a route without one)`}},
		{"auth server without url", "auth_servers:\n  sso: { timeout: 1s }\nroutes: [ { path: /, " + to + " } ]",
			[]string{`line 2: auth_servers.sso: url is missing`}},
		{"auth server bad url and key", "auth_servers:\n  sso:\n    url: ftp://x\n    copy: [a]\n    timeout: 0s\n    copy_headers: [\"bad header\"]\nroutes: [ { path: /, " + to + " } ]",
			[]string{
				`line 3: auth_servers.sso.url: bad URL "ftp://x": scheme must be http or https`,
				`line 4: auth_servers.sso: unknown key "copy" (want one of url, copy_headers, timeout, cache_ttl, cache_entries)`,
				`line 5: auth_servers.sso.timeout: want more than 0`,
				`line 6: auth_servers.sso.copy_headers[0]: bad header name "bad header"`,
			}},
		{"bad cidrs", "allow: [10.0.0.0/33]\nroutes:\n  - { path: /, " + to + ", deny: [nonsense], allow: 10.0.0.0/8 }",
			[]string{
				`line 1: allow[0]: bad CIDR "10.0.0.0/33" (want e.g. 10.0.0.0/8, 2001:db8::/32 or 192.168.1.10)`,
				`line 3: routes[0].deny[0]: bad CIDR "nonsense" (want e.g. 10.0.0.0/8, 2001:db8::/32 or 192.168.1.10)`,
				`line 3: routes[0].allow: want a list, got "10.0.0.0/8"`,
			}},
		{"bad rates", "routes:\n  - { path: /a, " + to + ", rate_limit: { rate: 10/d } }\n  - { path: /b, " + to + ", rate_limit: { rate: 0/s } }\n" +
			"  - { path: /c, " + to + ", rate_limit: { burst: 5 } }\n  - { path: /d, " + to + ", rate_limit: { rate: 1/s, burst: 0, max_clients: 0, window: 1 } }\n" +
			"  - { path: /e, " + to + ", rate_limit: 10/s }",
			[]string{
				`line 2: routes[0].rate_limit.rate: bad rate "10/d" (want N/s, N/m or N/h with N ≥ 1, e.g. 10/m)`,
				`line 3: routes[1].rate_limit.rate: bad rate "0/s" (want N/s, N/m or N/h with N ≥ 1, e.g. 10/m)`,
				`line 4: routes[2].rate_limit: rate is missing (want e.g. 10/s, 100/m, 1000/h)`,
				`line 5: routes[3].rate_limit.burst: want at least 1`,
				`line 5: routes[3].rate_limit.max_clients: want at least 1`,
				`line 5: routes[3].rate_limit: unknown key "window" (want one of rate, burst, max_clients)`,
				`line 6: routes[4].rate_limit: want a mapping, got "10/s"`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tc.yaml), envLookup(map[string]string{"EMPTY": ""}))
			if err == nil {
				t.Fatal("loaded")
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", err, strings.Join(tc.want, "\n"))
			}
		})
	}
}
