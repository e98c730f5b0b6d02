package bench

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
)

// BenchToolsDir is where `make bench-tools` installs the peers that Debian
// does not ship at the wanted version, relative to the module root.
const BenchToolsDir = "bin/bench-tools"

// findBenchTools looks for Caddy v2.11 in BenchToolsDir. Missing, it is
// recorded with the command that installs it, and its rows say so.
func (e *Env) findBenchTools(root string) {
	p := filepath.Join(root, BenchToolsDir, "caddy")
	if !isExecutable(p) {
		e.Missing[Caddy211] = "not installed: run `make bench-tools` (go install caddy v2.11.9 into " + BenchToolsDir + ")"
		return
	}
	e.Bin[Caddy211] = p
}

// moduleVersion returns the main module's version recorded in a Go binary
// (`go version -m`): a go-installed Caddy answers "unknown" to `caddy
// version`.
func moduleVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, "go", "version", "-m", bin).Output()
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "mod" {
			return f[1] + " " + f[2]
		}
	}
	return ""
}
