package bench

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Scenario 11: HTTP/2 over TLS, driven by h2load (Debian's nghttp2-client),
// every proxy serving the same self-signed certificate.

// h2loadPackage is the Debian package of h2load.
const h2loadPackage = "nghttp2-client"

// h2Peers are scenario 11's proxies, in the order their rows appear.
// HAProxy is left out: the issue compares the edge with Caddy and nginx.
var h2Peers = []string{Edge, Caddy, Caddy211, Nginx}

// h2Conns and h2Streams are the keep-alive load: 64 connections with 10
// streams in flight on each.
const (
	h2Conns   = 64
	h2Streams = 10
)

// handshakeBatch is how many new connections one h2load run of the
// handshake row opens at once, one request each. It stays under nginx's
// default listen backlog (511), so that no proxy is measured by SYN
// retransmissions.
const handshakeBatch = 256

// CertPair is the PEM files of a certificate and its key.
type CertPair struct{ Cert, Key string }

// findH2load looks h2load up and, running as root, installs it with
// apt-get as findPeers does the peers. Unlike them it is optional: missing,
// it is recorded with the command that installs it, scenario 11 says so,
// and the other scenarios run.
func (e *Env) findH2load(ctx context.Context) {
	if _, err := exec.LookPath("h2load"); err != nil && e.Root {
		e.Log("installing %s with apt-get", h2loadPackage)
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-q", "--no-install-recommends", h2loadPackage)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			e.Log("apt-get install %s: %v: %s", h2loadPackage, err, lastLines(out, 3))
		}
	}
	if p, err := exec.LookPath("h2load"); err == nil {
		e.Bin["h2load"] = p
		return
	}
	e.Missing["h2load"] = "not installed: run `sudo apt-get install -y " + h2loadPackage + "` (scenario 11)"
}

// WriteSelfSigned writes an ECDSA P-256 certificate for localhost and
// 127.0.0.1, valid for a day, and its key into dir: what a public CA
// issues by default, so the handshake costs what it costs in production.
func WriteSelfSigned(dir string) (*CertPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certificate key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "edgeapp bench"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	p := &CertPair{Cert: filepath.Join(dir, "bench-cert.pem"), Key: filepath.Join(dir, "bench-key.pem")}
	if err := os.WriteFile(p.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("write certificate: %w", err)
	}
	// 0644: nginx's workers may run as another user than the harness.
	if err := os.WriteFile(p.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o644); err != nil {
		return nil, fmt.Errorf("write key: %w", err)
	}
	return p, nil
}

// H2loadResult is what one h2load run reports.
type H2loadResult struct {
	Duration  time.Duration // "finished in"
	RPS       float64
	Done      int64 // requests done
	Succeeded int64
	Errored   int64 // errored + timeout: no answer
	Non2xx    int64 // 4xx and 5xx answers
	Protocol  string
}

// ParseH2load reads h2load's report.
func ParseH2load(out string) (H2loadResult, error) {
	var r H2loadResult
	var haveFinished, haveRequests bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Application protocol:") && len(f) == 3:
			r.Protocol = f[2]
		case strings.HasPrefix(line, "finished in ") && len(f) >= 5:
			// finished in 2.00s, 12345.50 req/s, 1.23MB/s
			d, err := parseWrkDuration(strings.TrimSuffix(f[2], ","))
			if err != nil {
				return r, fmt.Errorf("finished in: %w", err)
			}
			v, err := strconv.ParseFloat(f[3], 64)
			if err != nil {
				return r, fmt.Errorf("req/s: %w", err)
			}
			r.Duration, r.RPS, haveFinished = d, v, true
		case strings.HasPrefix(line, "requests:"):
			// requests: 10 total, 10 started, 10 done, 10 succeeded, 0 failed, 0 errored, 0 timeout
			for i := 1; i+1 < len(f); i += 2 {
				n, err := strconv.ParseInt(f[i], 10, 64)
				if err != nil {
					return r, fmt.Errorf("requests: %w", err)
				}
				switch strings.TrimSuffix(f[i+1], ",") {
				case "done":
					r.Done = n
				case "succeeded":
					r.Succeeded = n
				case "errored", "timeout":
					r.Errored += n
				}
			}
			haveRequests = true
		case strings.HasPrefix(line, "status codes:"):
			// status codes: 10 2xx, 0 3xx, 0 4xx, 0 5xx
			for i := 2; i+1 < len(f); i += 2 {
				class := strings.TrimSuffix(f[i+1], ",")
				if class == "4xx" || class == "5xx" {
					n, err := strconv.ParseInt(f[i], 10, 64)
					if err != nil {
						return r, fmt.Errorf("status codes: %w", err)
					}
					r.Non2xx += n
				}
			}
		}
	}
	if !haveFinished || !haveRequests {
		return r, fmt.Errorf("not h2load output (no \"finished in\" or \"requests:\"): %q", firstLines(out, 3))
	}
	return r, nil
}

// runH2load runs h2load with args against target's HTTPS port and measures
// the CPU the target's process tree used meanwhile. In the pinned layout
// h2load runs on loadCPU, away from the servers.
func (e *Env) runH2load(ctx context.Context, f *Fleet, target string, args []string, limit time.Duration) (H2loadResult, time.Duration, error) {
	port, pid := f.Port(target), f.Pid(target)
	if port == 0 {
		return H2loadResult{}, 0, fmt.Errorf("%s is not running", target)
	}
	argv := append([]string{e.Bin["h2load"]}, args...)
	argv = append(argv, "https://127.0.0.1:"+strconv.Itoa(port)+"/")
	if f.Pinned {
		argv = append([]string{"taskset", "-c", loadCPU}, argv...)
	}
	ctx, cancel := context.WithTimeout(ctx, limit+30*time.Second)
	defer cancel()
	cpu0, err := TreeCPU(pid)
	if err != nil {
		return H2loadResult{}, 0, err
	}
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	cpu1, cerr := TreeCPU(pid)
	if err != nil {
		return H2loadResult{}, 0, fmt.Errorf("h2load %s: %w: %s", target, err, lastLines(out, 3))
	}
	r, err := ParseH2load(string(out))
	if err != nil {
		return r, 0, fmt.Errorf("h2load %s: %w", target, err)
	}
	if r.Protocol != "h2" {
		return r, 0, fmt.Errorf("h2load %s: application protocol %q, want h2", target, r.Protocol)
	}
	if cerr != nil {
		return r, 0, nil
	}
	return r, cpu1 - cpu0, nil
}

// h2KeepAlive is one sample of the keep-alive table: h2Conns connections,
// h2Streams streams each, for d.
func (e *Env) h2KeepAlive(ctx context.Context, f *Fleet, target string, d time.Duration) (Sample, error) {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	args := []string{"-t", strconv.Itoa(wrkThreads), "-c", strconv.Itoa(h2Conns), "-m", strconv.Itoa(h2Streams),
		"-D", strconv.Itoa(secs), "--warm-up-time", "1"}
	r, cpu, err := e.runH2load(ctx, f, target, args, time.Duration(secs+1)*time.Second)
	if err != nil {
		return Sample{}, err
	}
	s := Sample{Value: r.RPS, Requests: r.Done, Non2xx: r.Non2xx, SocketErrors: r.Errored}
	if cpu > 0 && r.Done > 0 {
		s.CPUus = float64(cpu.Microseconds()) / float64(r.Done)
	}
	return s, nil
}

// h2Handshakes is one sample of the handshake table: batches of
// handshakeBatch new connections with one request each, for about d. The
// value is connections per second over h2load's own timings (its start-up
// between batches is not counted); the CPU is per connection.
func (e *Env) h2Handshakes(ctx context.Context, f *Fleet, target string, d time.Duration) (Sample, error) {
	n := strconv.Itoa(handshakeBatch)
	args := []string{"-t", strconv.Itoa(wrkThreads), "-c", n, "-n", n, "-m", "1"}
	var s Sample
	var busy, cpu time.Duration
	for start := time.Now(); time.Since(start) < d && ctx.Err() == nil; {
		r, c, err := e.runH2load(ctx, f, target, args, 30*time.Second)
		if err != nil {
			return s, err
		}
		busy += r.Duration
		cpu += c
		s.Requests += r.Succeeded
		s.Non2xx += r.Non2xx
		s.SocketErrors += r.Errored + (r.Done - r.Succeeded - r.Non2xx)
	}
	if busy > 0 {
		s.Value = float64(s.Requests) / busy.Seconds()
	}
	if cpu > 0 && s.Requests > 0 {
		s.CPUus = float64(cpu.Microseconds()) / float64(s.Requests)
	}
	return s, ctx.Err()
}

// scenario11 compares HTTP/2 over TLS through the edge, Caddy and nginx,
// all serving one self-signed certificate, in the first layout with access
// logs on: keep-alive req/s with CPU per request, and the rate of new
// connections (a full TLS handshake and one request each).
func (e *Env) scenario11(ctx context.Context, opts Options) ([]*Table, error) {
	if why, ok := e.Missing["h2load"]; ok {
		return nil, fmt.Errorf("h2load %s: %w", why, errSkip)
	}
	pair, err := WriteSelfSigned(e.Dir)
	if err != nil {
		return nil, err
	}
	layout := opts.Layouts[0]
	f, err := e.startFleet(ctx, "s11-"+layout, h2Peers, layout, true, pair)
	if err != nil {
		return nil, err
	}
	defer f.Stop(opts.Keep)
	notes := append(layoutNote(layout),
		e.versionOf("h2load")+" over TLS (h2 by ALPN), one self-signed ECDSA P-256 certificate served by every proxy; plain HTTP/1.1 to the upstream; h2load reports no latency percentiles")
	keep := &Table{
		ID: "s11-h2-" + layout, Scenario: 11, Layout: layout, Logs: true, Conns: h2Conns, Unit: "req/s", RefRow: Nginx,
		Title: fmt.Sprintf("Scenario 11: HTTP/2 over TLS, GET 1 KiB, %d connections × %d streams, %s", h2Conns, h2Streams, layout),
		Notes: notes,
	}
	hs := &Table{
		ID: "s11-handshakes-" + layout, Scenario: 11, Layout: layout, Logs: true, Conns: handshakeBatch, Unit: "conn/s", RefRow: Nginx,
		CPULabel: "CPU µs/conn",
		Title:    fmt.Sprintf("Scenario 11: TLS handshake rate, new connections/s (batches of %d, one request each), %s", handshakeBatch, layout),
		Notes:    notes,
	}
	for _, p := range h2Peers {
		if f.Port(p) == 0 {
			keep.row(p).Note = "not run: " + f.Skipped[p]
			hs.row(p).Note = "not run: " + f.Skipped[p]
			continue
		}
		// Warm-up: one short keep-alive run (h2load's own warm-up covers
		// the steady state only).
		if _, err := e.h2KeepAlive(ctx, f, p, time.Second); err != nil {
			e.Log("warm-up %s: %v", p, err)
		}
	}
	e.Log("s11-%s: %d rounds of %d runs, %v each", layout, opts.Rounds, 2*len(h2Peers), opts.Duration)
	for r := 0; r < opts.Rounds && ctx.Err() == nil; r++ {
		for _, t := range []*Table{keep, hs} {
			for _, p := range h2Peers {
				if f.Port(p) == 0 {
					continue
				}
				row := t.row(p)
				run := e.h2KeepAlive
				if t == hs {
					run = e.h2Handshakes
				}
				s, err := run(ctx, f, p, opts.Duration)
				if err != nil {
					e.Log("round %d %s %s: %v", r+1, t.ID, p, err)
					row.Note = err.Error()
					continue
				}
				row.Samples = append(row.Samples, s)
				e.Log("  round %d  %-22s %-10s %9.0f %s  cpu %6.1f µs  errors %d", r+1, t.ID, p, s.Value, t.Unit, s.CPUus, s.Non2xx+s.SocketErrors)
			}
		}
	}
	return []*Table{keep, hs}, ctx.Err()
}

// versionOf returns the first line of `bin --version`, or "".
func (e *Env) versionOf(bin string) string {
	out, err := exec.Command(e.Bin[bin], "--version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(firstLines(string(out), 1))
}
