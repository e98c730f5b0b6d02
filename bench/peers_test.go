package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"selfhost.dev/edgeapp/edge"
)

func testParams(dir string, logs bool) PeerParams {
	p := PeerParams{Port: 18080, AdminPort: 18081, Upstream: "127.0.0.1:19000", Dir: dir,
		User: "bench", Hash: "$2a$10$abcdefghijklmnopqrstuu1234567890123456789012345678901", IdleConns: 512,
		NoFile: 20000, WorkerConns: 19900, MaxConn: 9900, Procs: 2}
	if logs {
		p.AccessLog = filepath.Join(dir, "access.log")
	}
	return p
}

func TestRenderPeers(t *testing.T) {
	for _, logs := range []bool{true, false} {
		dir := t.TempDir()
		for _, name := range []string{"caddy/Caddyfile.tmpl", "nginx/nginx.conf.tmpl", "haproxy/haproxy.cfg.tmpl", "edge/routes.yaml.tmpl", "edge/routes-app.yaml.tmpl"} {
			path, err := RenderPeer(name, testParams(dir, logs), dir)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s := string(b)
			if strings.Contains(s, "{{") || strings.Contains(s, "<no value>") {
				t.Errorf("%s: unrendered template:\n%s", name, s)
			}
			if !strings.Contains(s, "18080") || !strings.Contains(s, "127.0.0.1:19000") {
				t.Errorf("%s: port or upstream missing", name)
			}
			logged := strings.Contains(s, filepath.Join(dir, "access.log"))
			if name == "haproxy/haproxy.cfg.tmpl" {
				logged = strings.Contains(s, "log stdout") // the harness points stdout at the file
			}
			if want := map[string]string{"nginx/nginx.conf.tmpl": "worker_processes 2;", "haproxy/haproxy.cfg.tmpl": "nbthread 2"}[name]; !strings.Contains(s, want) {
				t.Errorf("%s: want %q for Procs 2", name, want)
			}
			if logs != logged {
				t.Errorf("%s: access log present = %v, want %v", name, !logs, logs)
			}
		}
	}
}

// TestEdgeTemplatesLoad checks the edge's templates against the edge's own
// strict parser, so a schema change shows up here and not mid-benchmark.
func TestEdgeTemplatesLoad(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"edge/routes.yaml.tmpl", "edge/routes-app.yaml.tmpl"} {
		p := testParams(dir, true)
		p.Hash = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy" // a valid bcrypt hash
		path, err := RenderPeer(name, p, dir)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := edge.LoadFile(path, func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg.Upstream.MaxIdleConnsPerHost != idleConns {
			t.Errorf("%s: idle pool %d, want %d", name, cfg.Upstream.MaxIdleConnsPerHost, idleConns)
		}
	}
}

func TestEdgeVariant(t *testing.T) {
	name := EdgeVariant("GOGC=400 GOMEMLIMIT=64MiB")
	env, ok := EdgeVariantEnv(name)
	if !ok || len(env) != 2 || env[0] != "GOGC=400" || env[1] != "GOMEMLIMIT=64MiB" {
		t.Errorf("EdgeVariantEnv(%q) = %q, %v", name, env, ok)
	}
	for _, plain := range []string{Edge, Caddy, "edge[", "edge[GOGC=1"} {
		if _, ok := EdgeVariantEnv(plain); ok {
			t.Errorf("EdgeVariantEnv(%q): want not a variant", plain)
		}
	}
}
