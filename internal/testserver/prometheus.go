package testserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Where Debian's packages put the binaries; PATH is searched first so a
// developer's own build wins.
const (
	prometheusInstall   = "apt-get install prometheus (Debian/Ubuntu) for /usr/bin/prometheus"
	alertmanagerInstall = "apt-get install prometheus-alertmanager (Debian/Ubuntu) for /usr/bin/prometheus-alertmanager"
	blackboxInstall     = "apt-get install prometheus-blackbox-exporter (Debian/Ubuntu) for /usr/bin/prometheus-blackbox-exporter"
)

// PrometheusConfig says how to start a Prometheus server.
type PrometheusConfig struct {
	// Config is the prometheus.yml text. Relative rule_files are resolved
	// against the server's temp dir, where Files are written.
	Config string
	// Files are extra files (rules, targets) written beside prometheus.yml,
	// by name.
	Files map[string]string
	// ExternalURL is passed as --web.external-url; its path becomes the
	// route prefix, as it does behind a proxy that keeps the prefix. Empty
	// means the server's own address at the root.
	ExternalURL string
	// Args are extra command-line flags, e.g. a shorter
	// --rules.alert.resend-delay.
	Args []string
}

// Prometheus is a running Prometheus server owned by a test.
type Prometheus struct {
	// Addr is the host:port it listens on (loopback).
	Addr string
	// URL is the direct base URL including the route prefix, without a
	// trailing slash, e.g. http://127.0.0.1:41234/prometheus.
	URL string
	// Dir holds its config, data and log.
	Dir string
}

// StartPrometheus starts the real Prometheus on a free loopback port in a
// temp dir and waits until it reports ready. It is stopped when t ends.
// Without the binary the test is skipped (see Skip).
func StartPrometheus(t testing.TB, cfg PrometheusConfig) *Prometheus {
	t.Helper()
	bin := findServerBinary("prometheus", "/usr/bin/prometheus")
	if bin == "" {
		Skip(t, "prometheus not found: %s", prometheusInstall)
	}
	args := append([]string{"--web.enable-lifecycle"}, cfg.Args...)
	addr, base, dir := startUnderPrefix(t, bin, "prometheus.yml", cfg.Config, cfg.Files, cfg.ExternalURL, "--storage.tsdb.path", args)
	return &Prometheus{Addr: addr, URL: base, Dir: dir}
}

// AlertmanagerConfig says how to start an Alertmanager.
type AlertmanagerConfig struct {
	// Config is the alertmanager.yml text.
	Config string
	// Files are extra files (templates, secrets) written beside it, by name.
	Files map[string]string
	// ExternalURL is passed as --web.external-url; its path becomes the
	// route prefix. Empty means the server's own address at the root.
	ExternalURL string
}

// Alertmanager is a running Alertmanager owned by a test.
type Alertmanager struct {
	// Addr is the host:port it listens on (loopback).
	Addr string
	// URL is the direct base URL including the route prefix, without a
	// trailing slash, e.g. http://127.0.0.1:41235/alertmanager.
	URL string
	// Dir holds its config, data and log.
	Dir string
}

// StartAlertmanager starts the real Alertmanager on a free loopback port
// in a temp dir, with clustering off, and waits until it reports ready.
// It is stopped when t ends. Without the binary the test is skipped.
func StartAlertmanager(t testing.TB, cfg AlertmanagerConfig) *Alertmanager {
	t.Helper()
	bin := findServerBinary("alertmanager", "/usr/bin/prometheus-alertmanager")
	if bin == "" {
		Skip(t, "alertmanager not found: %s", alertmanagerInstall)
	}
	// An empty cluster address turns gossip off; otherwise it binds
	// 0.0.0.0:9094, which is neither loopback nor free in parallel runs.
	args := []string{"--cluster.listen-address="}
	addr, base, dir := startUnderPrefix(t, bin, "alertmanager.yml", cfg.Config, cfg.Files, cfg.ExternalURL, "--storage.path", args)
	return &Alertmanager{Addr: addr, URL: base, Dir: dir}
}

// startUnderPrefix starts Prometheus or Alertmanager, which share their
// flags: one config file (written with files into a temp dir), a data dir,
// a listen address, and an external URL whose path is also the route
// prefix, as behind a proxy that keeps the prefix. It returns the address,
// the direct base URL including the prefix (no trailing slash) and the dir.
func startUnderPrefix(t testing.TB, bin, configName, config string, files map[string]string, external, storageFlag string, args []string) (addr, base, dir string) {
	t.Helper()
	dir = t.TempDir()
	writeServerFiles(t, dir, files)
	writeServerFiles(t, dir, map[string]string{configName: config})
	addr = reserveLoopbackAddr(t)
	prefix := externalRoutePrefix(t, external)
	if external == "" {
		external = "http://" + addr + "/"
	}
	args = append([]string{
		"--config.file=" + filepath.Join(dir, configName),
		storageFlag + "=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--web.external-url=" + external,
		"--web.route-prefix=" + prefix,
		"--log.level=warn",
	}, args...)
	base = "http://" + addr + strings.TrimSuffix(prefix, "/")
	runUntilReady(t, bin, dir, args, base+"/-/ready")
	return addr, base, dir
}

// BlackboxExporter is a running blackbox exporter owned by a test.
type BlackboxExporter struct {
	// Addr is the host:port it listens on (loopback).
	Addr string
	// URL is its base URL, e.g. http://127.0.0.1:41236.
	URL string
}

// StartBlackboxExporter starts the real blackbox exporter with the given
// blackbox.yml text on a free loopback port and waits until it is healthy.
// It is stopped when t ends. Without the binary the test is skipped.
func StartBlackboxExporter(t testing.TB, config string) *BlackboxExporter {
	t.Helper()
	bin := findServerBinary("blackbox_exporter", "/usr/bin/prometheus-blackbox-exporter")
	if bin == "" {
		Skip(t, "blackbox exporter not found: %s", blackboxInstall)
	}
	dir := t.TempDir()
	writeServerFiles(t, dir, map[string]string{"blackbox.yml": config})
	addr := reserveLoopbackAddr(t)
	args := []string{
		"--config.file=" + filepath.Join(dir, "blackbox.yml"),
		"--web.listen-address=" + addr,
		"--log.level=warn",
	}
	runUntilReady(t, bin, dir, args, "http://"+addr+"/-/healthy")
	return &BlackboxExporter{Addr: addr, URL: "http://" + addr}
}

// findServerBinary finds name on PATH, else the Debian path, else "".
func findServerBinary(name, debian string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p, err := exec.LookPath(debian); err == nil {
		return p
	}
	return ""
}

// externalRoutePrefix is the path of an external URL, "/" when there is none,
// always ending in "/".
func externalRoutePrefix(t testing.TB, external string) string {
	t.Helper()
	if external == "" {
		return "/"
	}
	u, err := url.Parse(external)
	if err != nil || u.Scheme == "" || u.Host == "" {
		t.Fatalf("testserver: external URL %q must be absolute", external)
	}
	p := u.Path
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// reserveLoopbackAddr reserves a free loopback port and releases it for the
// server to take. Another process could take it in between; the ready wait
// would then fail loudly rather than talk to the wrong server.
func reserveLoopbackAddr(t testing.TB) string {
	t.Helper()
	port, err := pickLoopbackPort()
	if err != nil {
		t.Fatalf("testserver: no free loopback port: %v", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

func writeServerFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runUntilReady runs bin in dir with its output in dir/server.log, stops it
// when t ends, and waits until readyURL answers 200. On a failed start the
// log's tail goes into the test output, because that is where the reason is.
func runUntilReady(t testing.TB, bin, dir string, args []string, readyURL string) {
	t.Helper()
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	exited := startUntilCleanup(t, bin, cmd, logFile)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, readyURL, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("testserver: %s exited before ready (%v); log:\n%s", filepath.Base(bin), cmd.ProcessState, serverLogTail(logPath))
		case <-ctx.Done():
			t.Fatalf("testserver: %s not ready at %s: %v; log:\n%s", filepath.Base(bin), readyURL, errors.Join(err, ctx.Err()), serverLogTail(logPath))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// serverLogTail is the last few KiB of a server log.
func serverLogTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
