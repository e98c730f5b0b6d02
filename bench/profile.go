package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Profile is where the edge's CPU went under scenario 1's load.
type Profile struct {
	Load    string  `json:"load"`
	RPS     float64 `json:"req_per_s"`
	CPUus   float64 `json:"cpu_us_per_req"`
	File    string  `json:"file"`
	Command string  `json:"command"`
	Flat    string  `json:"top_flat"`
	Cum     string  `json:"top_cum"`
}

// profileEdge runs bench/cmd/edgeprof (cmd/edge with a CPU profile) pinned
// next to the upstream, drives it like scenario 1 at 64 connections with
// access logs on, and returns `go tool pprof -top` by flat and by
// cumulative time. The profile file goes to dir.
func (e *Env) profileEdge(ctx context.Context, opts Options, d time.Duration, dir string) (*Profile, error) {
	bin, ok := e.Bin["edgeprof"]
	if !ok {
		return nil, fmt.Errorf("edgeprof %s: %w", e.Missing["edgeprof"], errSkip)
	}
	if e.Hash == "" {
		return nil, fmt.Errorf("no password hash for the edge's config: %w", errSkip)
	}
	f, err := e.StartFleet(ctx, "profile", nil, true, true)
	if err != nil {
		return nil, err
	}
	defer f.Stop(opts.Keep)
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := e.peerParams(f.Dir, port, "127.0.0.1:"+strconv.Itoa(f.Upstream.Port))
	p.AccessLog = filepath.Join(f.Dir, "edge-access.log")
	if p.AdminPort, err = freePort(); err != nil {
		return nil, err
	}
	cfg, err := RenderPeer("edge/routes.yaml.tmpl", p, f.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("profile dir: %w", err)
	}
	out := filepath.Join(dir, "edge-cpu.pprof")
	proc, err := StartProc(ctx, ProcSpec{
		Name: Edge, Argv: []string{bin, "-config", cfg, "-cpuprofile", out},
		Env: []string{"GOMAXPROCS=1"}, Port: port, Pin: pinServers, Dir: f.Dir,
	})
	if err != nil {
		return nil, err
	}
	f.Proxies[Edge] = proc
	if _, err := e.runWrk(ctx, f, Edge, load{}, 64, time.Second); err != nil {
		return nil, fmt.Errorf("profile warm-up: %w", err)
	}
	s, err := e.runWrk(ctx, f, Edge, load{}, 64, d)
	if err != nil {
		return nil, fmt.Errorf("profile load: %w", err)
	}
	proc.Stop() // SIGTERM: edgeprof writes the profile and exits
	prof := &Profile{
		Load: fmt.Sprintf("wrk -t%d -c64 -d%v GET / (1 KiB), edge pinned to CPU %s with GOMAXPROCS=1, access log on", wrkThreads, d, pinServers),
		RPS:  s.Value, CPUus: s.CPUus, File: out,
		Command: "go tool pprof -top " + out,
	}
	top := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof"}, args...), bin, out)...)
		b, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go tool pprof: %w: %s", err, lastLines(b, 3))
		}
		return strings.TrimSpace(string(b)), nil
	}
	if prof.Flat, err = top("-top", "-nodecount=35"); err != nil {
		return prof, err
	}
	if prof.Cum, err = top("-top", "-cum", "-nodecount=35"); err != nil {
		return prof, err
	}
	return prof, nil
}
