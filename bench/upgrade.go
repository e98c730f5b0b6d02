package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// upgradeEvery is how often scenario 9 replaces the edge's binary. The
// edge refuses an upgrade until the process it replaced has exited (about
// 1.5 s after the handover when nothing streams), so this is the pace it
// can keep with a margin.
const upgradeEvery = 2 * time.Second

// scenario9 runs scenario 1's load (64 connections, keep-alive) on the
// edge, alternating rounds without and with a binary upgrade (POST
// /-/upgrade: the binary at the same path starts on the same sockets and
// the old one drains) every upgradeEvery. Every failed request counts; the
// p99 of the two rows shows the cost of a handover.
func (e *Env) scenario9(ctx context.Context, opts Options) ([]*Table, error) {
	f, err := e.StartFleet(ctx, "s8", []string{Edge}, true, true)
	if err != nil {
		return nil, err
	}
	edge, ok := f.Proxies[Edge]
	if !ok {
		f.Stop(opts.Keep)
		return nil, fmt.Errorf("edge not running: %s", f.Skipped[Edge])
	}
	// Each upgrade leaves the first process behind; the new ones are in its
	// process group (fork keeps it), so stop the group, not the first pid.
	group := edge.Pid
	defer func() {
		_ = syscall.Kill(-group, syscall.SIGTERM)
		time.Sleep(time.Second)
		_ = syscall.Kill(-group, syscall.SIGKILL)
		f.Stop(opts.Keep)
	}()
	t := &Table{
		ID: "s9-upgrade", Scenario: 9, Layout: "pinned", Logs: true, Conns: 64, Unit: "req/s",
		Title: fmt.Sprintf("Scenario 9: GET 1 KiB, 64 connections, binary upgrade (POST /-/upgrade) every %s", upgradeEvery),
		Notes: layoutNotes(true),
	}
	before := t.row("edge, no upgrade")
	during := t.row(fmt.Sprintf("edge + upgrade every %s", upgradeEvery))
	var upgraded int
	var failures []string
	for r := 0; r < opts.Rounds && ctx.Err() == nil; r++ {
		// runWrk measures the CPU of the process that serves now.
		edge.Pid = servingPID(group, edge.Pid)
		s, err := e.runWrk(ctx, f, Edge, load{}, 64, opts.Duration)
		if err != nil {
			before.Note = err.Error()
		} else {
			before.Samples = append(before.Samples, s)
			e.Log("  round %d  no upgrade  %9.0f req/s  p99 %.2f ms  errors %d", r+1, s.Value, s.P99ms, s.Non2xx+s.SocketErrors)
		}
		stop := make(chan struct{})
		done := make(chan int)
		go func() {
			n := 0
			tick := time.NewTicker(upgradeEvery)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					done <- n
					return
				case <-tick.C:
					if err := upgradeEdge(ctx, edge.Admin); err != nil {
						failures = append(failures, err.Error())
					} else {
						n++
					}
				}
			}
		}()
		edge.Pid = servingPID(group, edge.Pid)
		s, err = e.runWrk(ctx, f, Edge, load{}, 64, opts.Duration)
		close(stop)
		upgraded += <-done
		time.Sleep(2 * time.Second) // the last old process drains and exits
		if err != nil {
			during.Note = err.Error()
			continue
		}
		during.Samples = append(during.Samples, s)
		e.Log("  round %d  upgrades    %9.0f req/s  p99 %.2f ms  errors %d", r+1, s.Value, s.P99ms, s.Non2xx+s.SocketErrors)
	}
	t.Notes = append(t.Notes, fmt.Sprintf("%d upgrades done (the binary at the same path: the cost of the handover, not of a new build)", upgraded),
		"CPU per request is not measured in the upgrade row: the process measured at its start exits")
	edge.Pid = group // Fleet.Stop signals the group
	if len(failures) > 0 {
		during.Note = fmt.Sprintf("%d upgrades refused, first: %s", len(failures), failures[0])
	}
	return []*Table{t}, ctx.Err()
}

// upgradeEdge asks the edge on the admin port to replace itself and waits
// until the new process serves.
func upgradeEdge(ctx context.Context, admin int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(admin)+"/-/upgrade", nil)
	if err != nil {
		return err
	}
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("upgrade: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// servingPID returns the newest live process of process group pgid (after
// an upgrade: the new edge), or def if there is none.
func servingPID(pgid, def int) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return def
	}
	best, bestStart := def, int64(-1)
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// After "(comm)": state ppid pgrp ... starttime (field 22).
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 20 || f[0] == "Z" || f[2] != strconv.Itoa(pgid) {
			continue
		}
		start, err := strconv.ParseInt(f[19], 10, 64)
		if err == nil && start > bestStart {
			best, bestStart = pid, start
		}
	}
	return best
}
