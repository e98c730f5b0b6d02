package bench

import "path/filepath"

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
