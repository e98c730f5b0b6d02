package bench

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proxies are scenario 1's proxies, in the order their rows appear.
var proxies = []string{Edge, Caddy, Caddy211, Nginx, HAProxy}

// scenario1 is the small GET at each connection count, for each layout,
// with access logs on (the headline) and, if asked, off. Logs off runs in
// the first layout only: it isolates the log's cost, which the other
// layouts would only repeat, and keeps `make bench` under 15 minutes.
func (e *Env) scenario1(ctx context.Context, opts Options) ([]*Table, error) {
	var tables []*Table
	logSettings := []bool{true}
	if opts.LogsOff {
		logSettings = append(logSettings, false)
	}
	for _, logs := range logSettings {
		for i, layout := range opts.Layouts {
			if !logs && i > 0 {
				break
			}
			name := fmt.Sprintf("s1-%s-logs-%s", layout, onOff(logs))
			targets := append(append([]string{Edge}, opts.EdgeVariants...), proxies[1:]...)
			f, err := e.StartFleetLayout(ctx, name, targets, layout, logs)
			if err != nil {
				return tables, err
			}
			var cells []cell
			for _, c := range opts.Conns {
				t := &Table{
					ID: fmt.Sprintf("%s-c%d", name, c), Scenario: 1, Layout: layout, Logs: logs, Conns: c,
					Title: fmt.Sprintf("Scenario 1: GET 1 KiB, %d connections, %s, access logs %s", c, layout, onOff(logs)),
					Unit:  "req/s", RefRow: Direct,
					Notes: layoutNote(layout),
				}
				tables = append(tables, t)
				for _, target := range append([]string{Direct}, targets...) {
					cells = append(cells, cell{table: t, target: target, conns: c})
				}
			}
			// The headline table (the first layout, logs on) may get more
			// rounds: its medians are the ones quoted.
			rounds := opts.Rounds
			if logs && layout == opts.Layouts[0] {
				rounds += opts.HeadlineExtra
			}
			e.Log("%s: %d rounds of %d runs, %v each", name, rounds, len(cells), opts.Duration)
			e.interleave(ctx, f, cells, rounds, opts.Duration)
			f.Stop(opts.Keep)
		}
	}
	return tables, ctx.Err()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func layoutNotes(pinned bool) []string {
	if pinned {
		return []string{"proxy and upstream pinned to CPU " + pinServers + ", wrk to CPU " + loadCPU + " (taskset)"}
	}
	return []string{"nothing pinned: proxy, upstream and wrk share every core"}
}

// scenario2 compares the /auth route (Basic Auth, bcrypt) with the open
// route, in the edge and in Caddy, pinned, logs on.
func (e *Env) scenario2(ctx context.Context, opts Options) ([]*Table, error) {
	if e.Hash == "" {
		return nil, fmt.Errorf("no bcrypt hash from the edge: %w", errSkip)
	}
	f, err := e.StartFleet(ctx, "s2", []string{Edge, Caddy}, true, true)
	if err != nil {
		return nil, err
	}
	defer f.Stop(opts.Keep)
	t := &Table{
		ID: "s2-auth", Scenario: 2, Layout: "pinned", Logs: true, Conns: 64, Unit: "req/s",
		Title: fmt.Sprintf("Scenario 2: Basic Auth route vs open route, 64 connections (bcrypt cost %d)", BcryptCost(e.Hash)),
		Notes: layoutNotes(true),
	}
	auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(e.User+":"+e.Password))
	open, authed := load{Path: "/open"}, load{Path: "/auth/x", Headers: []string{auth}}
	for _, p := range []string{Edge, Caddy} {
		// Both must challenge without credentials and pass with them, or the
		// comparison measures a misconfiguration.
		if port := f.Port(p); port != 0 {
			base := "http://127.0.0.1:" + strconv.Itoa(port) + "/auth/x"
			t.Notes = append(t.Notes, fmt.Sprintf("%s: /auth/x without credentials → %s, with → %s",
				p, statusOf(ctx, base, ""), statusOf(ctx, base, auth)))
		}
	}
	cells := []cell{
		{table: t, target: Edge, row: "edge open", load: open, conns: 64},
		{table: t, target: Edge, row: "edge auth", load: authed, conns: 64},
		{table: t, target: Caddy, row: "caddy open", load: open, conns: 64},
		{table: t, target: Caddy, row: "caddy auth", load: authed, conns: 64},
	}
	e.interleave(ctx, f, cells, opts.Rounds, opts.Duration)
	return []*Table{t}, ctx.Err()
}

// statusOf returns the status line of one GET, with an optional header line.
func statusOf(ctx context.Context, url, header string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	if k, v, ok := strings.Cut(header, ":"); ok {
		req.Header.Set(k, strings.TrimSpace(v))
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return err.Error()
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return strconv.Itoa(resp.StatusCode)
}

// resetPeak resets VmHWM to the current RSS, so that each upload's peak is
// its own and not the startup's.
func resetPeak(pid int) {
	os.WriteFile(filepath.Join("/proc", strconv.Itoa(pid), "clear_refs"), []byte("5"), 0)
}

// reloadsRE reads the edge's successful-reload counter from /metrics.
var reloadsRE = regexp.MustCompile(`(?m)^edge_config_reloads_total\{result="(?:success|ok)"\} (\d+)`)

// scenario4 runs scenario 1's load on the edge while SIGHUP reloads its
// configuration every 100 ms; every failed request counts.
func (e *Env) scenario4(ctx context.Context, opts Options) ([]*Table, error) {
	f, err := e.StartFleet(ctx, "s4", []string{Edge}, true, true)
	if err != nil {
		return nil, err
	}
	defer f.Stop(opts.Keep)
	edge, ok := f.Proxies[Edge]
	if !ok {
		return nil, fmt.Errorf("edge not running: %s", f.Skipped[Edge])
	}
	t := &Table{
		ID: "s4-reload", Scenario: 4, Layout: "pinned", Logs: true, Conns: 64, Unit: "req/s",
		Title: "Scenario 4: GET 1 KiB, 64 connections, SIGHUP to the edge every 100 ms",
		Notes: layoutNotes(true),
	}
	row := t.row("edge + SIGHUP/100ms")
	before := reloads(ctx, edge.Admin)
	var sent int
	for r := 0; r < opts.Rounds && ctx.Err() == nil; r++ {
		stop := make(chan struct{})
		done := make(chan int)
		go func() {
			n := 0
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			// Bounded by count as well as by the run: ten per second of load.
			for limit := int(opts.Duration/(100*time.Millisecond)) + 10; n < limit; {
				select {
				case <-stop:
					done <- n
					return
				case <-tick.C:
					if edge.Signal(syscall.SIGHUP) == nil {
						n++
					}
				}
			}
			<-stop
			done <- n
		}()
		s, err := e.runWrk(ctx, f, Edge, load{}, 64, opts.Duration)
		close(stop)
		sent += <-done
		if err != nil {
			row.Note = err.Error()
			continue
		}
		row.Samples = append(row.Samples, s)
		e.Log("  round %d  %9.0f req/s  errors %d", r+1, s.Value, s.Non2xx+s.SocketErrors)
	}
	after := reloads(ctx, edge.Admin)
	t.Notes = append(t.Notes, fmt.Sprintf("%d SIGHUPs sent; edge_config_reloads_total{result=success} went from %s to %s", sent, before, after))
	if edge.Exited() {
		row.Note = "the edge exited during the reloads: " + edge.StderrTail()
	}
	return []*Table{t}, ctx.Err()
}

// reloads reads the edge's count of successful reloads, or "?".
func reloads(ctx context.Context, admin int) string {
	if admin == 0 {
		return "?"
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(admin)+"/metrics", nil)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if m := reloadsRE.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return "0"
}

// scenario5 holds many idle keep-alive connections open to each proxy and
// reads its RSS.
func (e *Env) scenario5(ctx context.Context, opts Options) ([]*Table, error) {
	f, err := e.StartFleet(ctx, "s5", proxies, false, true)
	if err != nil {
		return nil, err
	}
	defer f.Stop(opts.Keep)
	n := opts.IdleConns
	t := &Table{
		ID: "s5-idle", Scenario: 5, Layout: "unpinned", Logs: true, Conns: n, Unit: "MiB RSS",
		MemLabel: "RSS before, MiB",
		Title:    fmt.Sprintf("Scenario 5: %d idle keep-alive client connections (one GET each, then idle)", n),
		Notes: []string{fmt.Sprintf("open-files limit %d (soft = hard) for the harness and every proxy", e.NoFile),
			"RSS (VmRSS of the process tree) read after the connections have been idle for 3 s"},
	}
	for _, p := range proxies {
		row := t.row(p)
		proc, ok := f.Proxies[p]
		if !ok {
			row.Note = "not run: " + f.Skipped[p]
			continue
		}
		if p == HAProxy && (e.NoFile-200)/2 < n+100 {
			row.Note = fmt.Sprintf("not run: HAProxy needs two fds per connection and the hard open-files limit is %d", e.NoFile)
			continue
		}
		before, _ := TreeMem(proc.Pid)
		conns, err := openIdle(ctx, proc.Port, n)
		// Idle means idle for a while: give the runtimes a moment to return
		// what serving the first request took.
		time.Sleep(3 * time.Second)
		with, merr := TreeMem(proc.Pid)
		closeAll(conns)
		s := Sample{Requests: int64(len(conns)), MemMiB: float64(before.RSS) / (1 << 20)}
		if merr == nil {
			s.Value = float64(with.RSS) / (1 << 20)
		}
		if len(conns) < n {
			s.SocketErrors = int64(n - len(conns))
			row.Note = fmt.Sprintf("only %d of %d connections: %v", len(conns), n, err)
		}
		row.Samples = append(row.Samples, s)
		e.Log("  %-8s %d conns: RSS %.1f MiB (before %.1f MiB)", p, len(conns), s.Value, s.MemMiB)
		time.Sleep(time.Second) // let the closes drain before the next proxy
	}
	return []*Table{t}, ctx.Err()
}
