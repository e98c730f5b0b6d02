package testserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const nginxInstall = "apt-get install nginx (Debian/Ubuntu) for /usr/sbin/nginx"

// Nginx is a running nginx owned by a test.
type Nginx struct {
	// Addr is the host:port its server block listens on (loopback).
	Addr string
	// Dir holds its config, files, temp paths and error log.
	Dir string
}

// StartNginx starts the real nginx (one worker, in the foreground) with one
// server block listening on a free loopback port, and waits until it
// accepts connections. server is the block's body without its listen
// line; listen holds that line's options after the address ("ssl" for
// TLS). files are written into Dir first; server names them by path with
// {{dir}}, replaced by Dir. It is stopped when t ends; without the binary
// the test is skipped.
func StartNginx(t testing.TB, listen, server string, files map[string]string) *Nginx {
	t.Helper()
	bin := findServerBinary("nginx", "/usr/sbin/nginx")
	if bin == "" {
		Skip(t, "nginx not found: %s", nginxInstall)
	}
	dir := t.TempDir()
	writeServerFiles(t, dir, files)
	addr := reserveLoopbackAddr(t)
	user := ""
	if os.Geteuid() == 0 {
		// Workers would otherwise run as nobody, who cannot enter the
		// test's temp dir.
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 256; }
http {
	client_body_temp_path %[2]s/body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	uwsgi_temp_path %[2]s/uwsgi;
	scgi_temp_path %[2]s/scgi;
	access_log off;
	server {
		listen %[3]s %[4]s;
		%[5]s
	}
}
`, user, dir, addr, listen, strings.ReplaceAll(server, "{{dir}}", dir))
	writeServerFiles(t, dir, map[string]string{"nginx.conf": conf})
	logFile, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	exited := startUntilCleanup(t, "nginx", cmd, logFile)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return &Nginx{Addr: addr, Dir: dir}
		}
		select {
		case <-exited:
			t.Fatalf("testserver: nginx exited at start:\n%s", nginxLogs(dir))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testserver: nginx not listening on %s after 10s:\n%s", addr, nginxLogs(dir))
		}
	}
}

func nginxLogs(dir string) string {
	var b strings.Builder
	for _, f := range []string{"stderr.log", "error.log"} {
		if s, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
			b.Write(s)
		}
	}
	return b.String()
}
