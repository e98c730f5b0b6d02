package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Env is what every scenario needs: the binaries, the temp dir, the
// credentials of the /auth route and the open-files limit.
type Env struct {
	Dir    string            // temp root, removed at the end unless kept
	Bin    map[string]string // name -> path: edge, upstream, app, caddy, nginx, haproxy, wrk
	Root   bool
	NoFile int
	// User and Password guard the /auth route; Hash is the edge's bcrypt
	// hash of Password, which Caddy is given too.
	User, Password, Hash string
	// Missing says why a binary is absent (edge or app not built yet).
	Missing map[string]string
	Log     func(format string, args ...any)
}

// peerPackages maps the peers' binaries to their Debian packages.
var peerPackages = []struct{ bin, pkg string }{
	{"caddy", "caddy"}, {"nginx", "nginx"}, {"haproxy", "haproxy"}, {"wrk", "wrk"},
}

// findPeers looks up caddy, nginx, haproxy and wrk, installing the missing
// ones with apt-get when running as root.
func (e *Env) findPeers(ctx context.Context) error {
	var missing []string
	look := func(bin string) string {
		if p, err := exec.LookPath(bin); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
			if p := filepath.Join(dir, bin); isExecutable(p) {
				return p
			}
		}
		return ""
	}
	for _, pp := range peerPackages {
		if look(pp.bin) == "" {
			missing = append(missing, pp.pkg)
		}
	}
	if len(missing) > 0 {
		if !e.Root {
			return fmt.Errorf("missing %s: run `sudo apt-get install -y %s` (or run the harness as root)",
				strings.Join(missing, ", "), strings.Join(missing, " "))
		}
		e.Log("installing %s with apt-get", strings.Join(missing, " "))
		args := append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if _, err := cmd.CombinedOutput(); err != nil {
			// A stale package list is the usual cause on a fresh machine.
			upd := exec.CommandContext(ctx, "apt-get", "update", "-q")
			if uout, uerr := upd.CombinedOutput(); uerr != nil {
				return fmt.Errorf("apt-get update: %w: %s", uerr, lastLines(uout, 5))
			}
			cmd = exec.CommandContext(ctx, "apt-get", args...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("apt-get install: %w: %s", err, lastLines(out, 5))
			}
		}
	}
	for _, pp := range peerPackages {
		p := look(pp.bin)
		if p == "" {
			return fmt.Errorf("%s still missing after apt-get install", pp.bin)
		}
		e.Bin[pp.bin] = p
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return fmt.Errorf("taskset missing (Debian package util-linux)")
	}
	return nil
}

// build compiles our own binaries into Dir/bin. The upstream must build;
// the edge and the app are skipped, with the reason kept, if they do not
// build yet.
func (e *Env) build(ctx context.Context, moduleRoot string) error {
	bin := filepath.Join(e.Dir, "bin")
	for _, b := range []struct{ name, pkg string }{
		{"upstream", "./bench/cmd/upstream"}, {"edge", "./cmd/edge"}, {"app", "./cmd/app"},
		{"edgeprof", "./bench/cmd/edgeprof"},
	} {
		out := filepath.Join(bin, b.name)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, b.pkg)
		cmd.Dir = moduleRoot
		if msg, err := cmd.CombinedOutput(); err != nil {
			if b.name == "upstream" {
				return fmt.Errorf("build upstream: %w: %s", err, lastLines(msg, 10))
			}
			e.Missing[b.name] = "does not build: " + lastLines(msg, 3)
			e.Log("%s: %s", b.name, e.Missing[b.name])
			continue
		}
		e.Bin[b.name] = out
	}
	return nil
}

// hashPassword asks the edge for a bcrypt hash of e.Password, so that the
// cost is the one the edge's users get; Caddy is given the same hash.
func (e *Env) hashPassword(ctx context.Context) error {
	edge, ok := e.Bin["edge"]
	if !ok {
		return fmt.Errorf("no edge binary: %w", errSkip)
	}
	cmd := exec.CommandContext(ctx, edge, "hash-password")
	cmd.Stdin = strings.NewReader(e.Password + "\n")
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("edge hash-password: %w", err)
	}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "$2") {
			e.Hash = f
			return nil
		}
	}
	return fmt.Errorf("edge hash-password printed no bcrypt hash: %q", out)
}

// BcryptCost returns the cost field of a bcrypt hash, or 0.
func BcryptCost(hash string) int {
	// $2a$10$...
	parts := strings.Split(hash, "$")
	if len(parts) < 4 {
		return 0
	}
	var c int
	fmt.Sscanf(parts[2], "%d", &c)
	return c
}

// raiseNoFile lifts the soft open-files limit to the hard one; the servers
// inherit it. Scenario 5 needs 10 000 sockets in the harness and as many in
// the proxy.
func raiseNoFile() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	want := lim
	if want.Max < 1<<20 {
		// Root may raise the hard limit too, unless a container forbids it.
		want.Max = 1 << 20
		want.Cur = want.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
			return int(want.Cur)
		}
		want = lim
	}
	want.Cur = want.Max
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
		return int(lim.Cur)
	}
	return int(want.Cur)
}

// versions returns each peer's version line.
func (e *Env) versions(ctx context.Context) map[string]string {
	v := map[string]string{}
	run := func(name string, args ...string) {
		p, ok := e.Bin[name]
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(ctx, p, args...).CombinedOutput()
		v[name] = firstLines(strings.TrimSpace(string(out)), 1)
	}
	run("caddy", "version")
	if p, ok := e.Bin[Caddy211]; ok {
		v[Caddy211] = moduleVersion(ctx, p)
	}
	run("nginx", "-v")
	run("haproxy", "-v")
	run("wrk", "-v")
	run("edge", "version")
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		v["go"] = strings.TrimSpace(string(out))
	}
	return v
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(bytes.TrimSpace(b))), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
