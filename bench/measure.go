package bench

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// wrkThreads is wrk's -t: one per core of the two the anchors were measured on.
const wrkThreads = 2

// load is what wrk sends: a path, extra headers and an optional Lua script.
type load struct {
	Path    string
	Headers []string
	Script  string
}

// runWrk drives target for d with conns connections and measures the CPU
// the target's process tree used meanwhile. In the pinned layout wrk runs on
// loadCPU, away from the servers.
func (e *Env) runWrk(ctx context.Context, f *Fleet, target string, l load, conns int, d time.Duration) (Sample, error) {
	port, pid := f.Port(target), f.Pid(target)
	if port == 0 {
		return Sample{}, fmt.Errorf("%s is not running", target)
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	path := l.Path
	if path == "" {
		path = "/"
	}
	argv := []string{e.Bin["wrk"], "-t", strconv.Itoa(min(wrkThreads, conns)), "-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(secs) + "s", "--latency", "--timeout", "5s"}
	for _, h := range l.Headers {
		argv = append(argv, "-H", h)
	}
	if l.Script != "" {
		argv = append(argv, "-s", l.Script)
	}
	argv = append(argv, "http://127.0.0.1:"+strconv.Itoa(port)+path)
	if f.Pinned {
		argv = append([]string{"taskset", "-c", loadCPU}, argv...)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	cpu0, err := TreeCPU(pid)
	if err != nil {
		return Sample{}, err
	}
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	cpu1, cerr := TreeCPU(pid)
	if err != nil {
		return Sample{}, fmt.Errorf("wrk %s: %w: %s", target, err, lastLines(out, 3))
	}
	w, err := ParseWrk(string(out))
	if err != nil {
		return Sample{}, fmt.Errorf("wrk %s: %w", target, err)
	}
	s := Sample{
		Value: w.RPS, P50ms: ms(w.P50), P99ms: ms(w.P99),
		Requests: w.Requests, Non2xx: w.Non2xx, SocketErrors: w.SocketErrors,
	}
	if w.Requests > 0 {
		s.BytesPerReq = w.BytesRead / float64(w.Requests)
	}
	if cerr == nil && w.Requests > 0 {
		s.CPUus = float64((cpu1 - cpu0).Microseconds()) / float64(w.Requests)
	}
	return s, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cell is one (table, row) that a round samples once.
type cell struct {
	table  *Table
	target string // the fleet's target: direct or a proxy
	row    string // the row's label, when it differs from target
	load   load
	conns  int
}

// interleave warms each distinct (target, load) up for a second, then runs
// the cells in order, round after round (A B C A B C …), so that drift from
// the other work on the machine spreads over every target alike.
func (e *Env) interleave(ctx context.Context, f *Fleet, cells []cell, rounds int, d time.Duration) {
	warmed := map[string]bool{}
	for _, c := range cells {
		key := c.target + " " + c.load.Path + " " + c.load.Script
		if warmed[key] || f.Port(c.target) == 0 {
			continue
		}
		warmed[key] = true
		if _, err := e.runWrk(ctx, f, c.target, c.load, c.conns, time.Second); err != nil {
			e.Log("warm-up %s: %v", c.target, err)
		}
	}
	for r := 0; r < rounds && ctx.Err() == nil; r++ {
		for _, c := range cells {
			label := c.row
			if label == "" {
				label = c.target
			}
			row := c.table.row(label)
			if f.Port(c.target) == 0 {
				row.Note = "not run: " + f.Skipped[c.target]
				continue
			}
			s, err := e.runWrk(ctx, f, c.target, c.load, c.conns, d)
			if err != nil {
				e.Log("round %d %s: %v", r+1, label, err)
				row.Note = err.Error()
				continue
			}
			row.Samples = append(row.Samples, s)
			e.Log("  round %d  %-7s %-22s c=%-4d %9.0f req/s  p99 %7.2f ms  cpu %6.1f µs/req  errors %d",
				r+1, c.table.Layout, label, c.conns, s.Value, s.P99ms, s.CPUus, s.Non2xx+s.SocketErrors)
		}
	}
}
