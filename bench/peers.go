package bench

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
)

//go:embed peers
var peerFiles embed.FS

// PeerParams fills a peer's configuration template.
type PeerParams struct {
	Port      int    // where the proxy listens, on 127.0.0.1
	AdminPort int    // the edge's admin port
	Upstream  string // host:port of the upstream
	Dir       string // the run's temp dir for pid files, caches and logs
	AccessLog string // the JSON access log's path, or "" for no log
	User      string // Basic Auth user of the /auth route
	Hash      string // its bcrypt hash, from `edge hash-password`
	IdleConns int    // keep-alive pool to the upstream, per proxy
	Root      bool   // running as root: nginx must be told to stay root
	// Procs is the cores the proxy may use: nginx's worker_processes,
	// HAProxy's nbthread (the Go servers get GOMAXPROCS). At least 1.
	Procs int
	// NoFile is the open-files limit the proxies inherit; WorkerConns
	// (nginx) and MaxConn (HAProxy, which needs two fds per connection)
	// are derived from it.
	NoFile, WorkerConns, MaxConn int
	// TLSCert and TLSKey are the PEM files of the certificate every proxy
	// serves HTTPS with on Port (scenario 11), "" for plain HTTP. The edge
	// then keeps its plain listener on PlainPort.
	TLSCert, TLSKey string
	PlainPort       int
}

// RenderPeer renders the template at peers/<name> (for example
// "nginx/nginx.conf.tmpl") into dir and returns the file's path, named as
// the template without .tmpl.
func RenderPeer(name string, p PeerParams, dir string) (string, error) {
	src, err := peerFiles.ReadFile("peers/" + name)
	if err != nil {
		return "", fmt.Errorf("peer template: %w", err)
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return "", fmt.Errorf("peer template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, p); err != nil {
		return "", fmt.Errorf("peer template %s: %w", name, err)
	}
	base := filepath.Base(name)
	out := filepath.Join(dir, base[:len(base)-len(".tmpl")])
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("peer config: %w", err)
	}
	return out, nil
}
