// Package bench is the side-by-side benchmark harness: it starts the bare
// upstream, the edge, Caddy (Debian's 2.6 and, installed by make
// bench-tools, 2.11), nginx and HAProxy on loopback with equal settings, drives them with wrk in interleaved rounds, reads each proxy's
// CPU time and memory from /proc, and writes results.json, RESULTS.md and
// chart.svg. cmd/harness is its command line; the peers' configuration
// templates live in peers/.
package bench
