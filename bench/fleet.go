package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The targets: "direct" is the bare upstream (the limit row), the others are
// proxies in front of it.
const (
	Direct = "direct"
	Edge   = "edge"
	Caddy  = "caddy"
	// Caddy211 is Caddy v2.11.9 built with `go install` (make bench-tools),
	// beside Debian's 2.6.2 (Caddy): the current release, not the distro's.
	Caddy211 = "caddy-2.11"
	Nginx    = "nginx"
	HAProxy  = "haproxy"
)

// idleConns is the keep-alive pool to the upstream in every proxy: the
// edge's default, so that no proxy churns upstream connections at 256
// client connections.
const idleConns = 512

// Fleet is one phase's servers: the upstream and the proxies in front of it,
// started with the same layout and access-log setting.
type Fleet struct {
	Dir    string
	Pinned bool
	// Procs is the cores each server is told to use (see layoutProcs).
	Procs    int
	Logs     bool
	Upstream *Proc
	Proxies  map[string]*Proc
	// Skipped says why a requested proxy is not running.
	Skipped map[string]string
	// TLS is the pair the proxies serve HTTPS with (scenario 11), nil for
	// plain HTTP.
	TLS *CertPair
}

// pinServers is the CPU the servers get in the pinned layout; the load
// generator gets loadCPU.
const (
	pinServers = "0"
	loadCPU    = "1"
)

// StartFleet starts the upstream and the named proxies in a fresh dir. A
// proxy that cannot start is recorded in Skipped, not fatal: the others
// still make a table.
func (e *Env) StartFleet(ctx context.Context, name string, proxies []string, pinned, logs bool) (*Fleet, error) {
	layout := Unpinned
	if pinned {
		layout = Pinned
	}
	return e.StartFleetLayout(ctx, name, proxies, layout, logs)
}

// StartFleetLayout is StartFleet in one of the named layouts.
func (e *Env) StartFleetLayout(ctx context.Context, name string, proxies []string, layout string, logs bool) (*Fleet, error) {
	return e.startFleet(ctx, name, proxies, layout, logs, nil)
}

// startFleet is StartFleetLayout, with the proxies serving HTTPS with tls
// unless it is nil.
func (e *Env) startFleet(ctx context.Context, name string, proxies []string, layout string, logs bool, tls *CertPair) (*Fleet, error) {
	pinned, procs := layoutPinned(layout), layoutProcs(layout)
	dir, err := os.MkdirTemp(e.Dir, name+"-")
	if err != nil {
		return nil, fmt.Errorf("fleet dir: %w", err)
	}
	f := &Fleet{Dir: dir, Pinned: pinned, Procs: procs, Logs: logs, Proxies: map[string]*Proc{}, Skipped: map[string]string{}, TLS: tls}
	pin := ""
	if pinned {
		pin = pinServers
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	f.Upstream, err = StartProc(ctx, ProcSpec{
		Name: "upstream", Argv: []string{e.Bin["upstream"], "-addr", "127.0.0.1:" + strconv.Itoa(port)},
		Env: []string{"GOMAXPROCS=" + strconv.Itoa(procs)}, Port: port, Pin: pin, Dir: dir,
	})
	if err != nil {
		return nil, err
	}
	edgeTemplate := "edge/routes.yaml.tmpl"
	if tls != nil {
		edgeTemplate = "edge/routes-tls.yaml.tmpl"
	}
	for _, p := range proxies {
		proc, err := e.startProxy(ctx, p, dir, pin, procs, logs, f.Upstream.Port, edgeTemplate, f.TLS)
		if err != nil {
			f.Skipped[p] = err.Error()
			e.Log("%s: %v", p, err)
			continue
		}
		f.Proxies[p] = proc
	}
	return f, nil
}

// startProxy renders the proxy's configuration and starts it; the edge's
// comes from edgeTemplate. procs is the cores it may use (see layoutProcs).
// With tls (scenario 11) the proxy serves HTTPS with that pair on its port.
func (e *Env) startProxy(ctx context.Context, name, dir, pin string, procs int, logs bool, upstreamPort int, edgeTemplate string, tls *CertPair) (*Proc, error) {
	if why, ok := e.Missing[name]; ok {
		return nil, fmt.Errorf("%s %s: %w", name, why, errSkip)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := e.peerParams(dir, port, "127.0.0.1:"+strconv.Itoa(upstreamPort))
	p.Procs = max(1, procs)
	if tls != nil {
		p.TLSCert, p.TLSKey = tls.Cert, tls.Key
		if p.PlainPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	if logs {
		p.AccessLog = filepath.Join(dir, name+"-access.log")
	}
	spec := ProcSpec{Name: name, Port: port, Pin: pin, Dir: dir}
	// The Go proxies get as many Ps as nginx gets workers and HAProxy threads.
	goEnv := []string{"GOMAXPROCS=" + strconv.Itoa(p.Procs), "HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}
	kind, variantEnv := name, []string(nil)
	if env, ok := EdgeVariantEnv(name); ok {
		kind, variantEnv = Edge, env
		spec.Name = "edge-variant-" + strconv.Itoa(port)
	}
	switch kind {
	case Edge:
		if e.Hash == "" {
			return nil, fmt.Errorf("edge: no password hash: %w", errSkip)
		}
		if p.AdminPort, err = freePort(); err != nil {
			return nil, err
		}
		if variantEnv != nil {
			p.AccessLog = strings.Replace(p.AccessLog, name, spec.Name, 1)
		}
		cfg, err := RenderPeer(edgeTemplate, p, dir)
		if err != nil {
			return nil, err
		}
		spec.Argv = []string{e.Bin[Edge], "run", "-config", cfg}
		spec.Env = append(goEnv, variantEnv...)
		proc, err := StartProc(ctx, spec)
		if err == nil {
			proc.Admin = p.AdminPort
		}
		return proc, err
	case Caddy, Caddy211:
		// Both versions read the same Caddyfile, each from its own dir.
		cdir := filepath.Join(dir, name)
		if err := os.MkdirAll(cdir, 0o755); err != nil {
			return nil, fmt.Errorf("%s dir: %w", name, err)
		}
		p.Dir = cdir
		cfg, err := RenderPeer("caddy/Caddyfile.tmpl", p, cdir)
		if err != nil {
			return nil, err
		}
		spec.Argv = []string{e.Bin[name], "run", "--config", cfg, "--adapter", "caddyfile"}
		spec.Env = goEnv
	case Nginx:
		cfg, err := RenderPeer("nginx/nginx.conf.tmpl", p, dir)
		if err != nil {
			return nil, err
		}
		spec.Argv = []string{e.Bin[Nginx], "-p", dir, "-c", cfg, "-e", filepath.Join(dir, "nginx-error.log")}
	case HAProxy:
		cfg, err := RenderPeer("haproxy/haproxy.cfg.tmpl", p, dir)
		if err != nil {
			return nil, err
		}
		spec.Argv = []string{e.Bin[HAProxy], "-f", cfg, "-db"}
		// HAProxy logs to stdout (format raw): stdout is the access-log file.
		spec.Stdout = p.AccessLog
	default:
		return nil, fmt.Errorf("unknown proxy %q", name)
	}
	return StartProc(ctx, spec)
}

// peerParams fills the settings every peer shares.
func (e *Env) peerParams(dir string, port int, upstream string) PeerParams {
	return PeerParams{
		Port: port, Upstream: upstream, Dir: dir,
		User: e.User, Hash: e.Hash, IdleConns: idleConns, Root: e.Root,
		NoFile: e.NoFile, WorkerConns: e.NoFile - 100, MaxConn: (e.NoFile - 200) / 2,
	}
}

// Port returns the port of a target ("direct" is the upstream), or 0.
func (f *Fleet) Port(target string) int {
	if target == Direct {
		return f.Upstream.Port
	}
	if p, ok := f.Proxies[target]; ok {
		return p.Port
	}
	return 0
}

// Pid returns the pid whose process tree serves target.
func (f *Fleet) Pid(target string) int {
	if target == Direct {
		return f.Upstream.Pid
	}
	if p, ok := f.Proxies[target]; ok {
		return p.Pid
	}
	return 0
}

// Stop ends every server of the fleet and removes its dir unless keep.
func (f *Fleet) Stop(keep bool) {
	for _, p := range f.Proxies {
		p.Stop()
	}
	f.Upstream.Stop()
	if !keep {
		os.RemoveAll(f.Dir)
	}
}

// EdgeVariant names a second edge target that runs with extra environment
// variables, for example "edge[GOGC=400]": scenario 1 then measures it side
// by side with the plain edge, interleaved, to try a setting.
func EdgeVariant(env string) string { return "edge[" + env + "]" }

// EdgeVariantEnv returns the environment of an EdgeVariant name.
func EdgeVariantEnv(name string) ([]string, bool) {
	inner, ok := strings.CutPrefix(name, "edge[")
	if !ok || !strings.HasSuffix(inner, "]") {
		return nil, false
	}
	return strings.Fields(strings.TrimSuffix(inner, "]")), true
}
