package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// failoverPhase is how long scenario 8 runs before the kill, while one
// upstream is dead, and after its restart.
const failoverPhase = 4 * time.Second

// failoverHealth is the health interval of scenario 8's pool.
const failoverHealth = time.Second

// scenario8 puts the edge in front of three upstreams (one route, a pool
// with health checks) under a steady GET load, kills one upstream with
// SIGKILL, starts it again on its port, and records req/s and failed
// requests second by second: one bar per second in the chart.
func (e *Env) scenario8(ctx context.Context, opts Options) ([]*Table, error) {
	dir, err := os.MkdirTemp(e.Dir, "s7-")
	if err != nil {
		return nil, fmt.Errorf("scenario 8 dir: %w", err)
	}
	startUp := func(i, port int) (*Proc, error) {
		return StartProc(ctx, ProcSpec{
			Name: "upstream-" + strconv.Itoa(i), Argv: []string{e.Bin["upstream"], "-addr", "127.0.0.1:" + strconv.Itoa(port)},
			Env: []string{"GOMAXPROCS=1"}, Port: port, Dir: dir,
		})
	}
	var ups [3]*Proc
	defer func() {
		for _, p := range ups {
			if p != nil {
				p.Stop()
			}
		}
	}()
	var ports [3]int
	for i := range ups {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
		if ups[i], err = startUp(i, ports[i]); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	admin, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`listen: "127.0.0.1:%d"
admin: "127.0.0.1:%d"
access_log: "off"
routes:
  - path: /
    to: ["http://127.0.0.1:%d", "http://127.0.0.1:%d", "http://127.0.0.1:%d"]
    health: { path: /health, interval: %s, timeout: 500ms, healthy: 1, unhealthy: 1 }
    passive: { max_fails: 1, fail_timeout: 10s }
    retry: { tries: 3, duration: 5s }
`, port, admin, ports[0], ports[1], ports[2], failoverHealth)
	cfgPath := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	edge, err := StartProc(ctx, ProcSpec{Name: "edge", Argv: []string{e.Bin[Edge], "run", "-config", cfgPath},
		Env: []string{"GOMAXPROCS=1", "HOME=" + dir}, Port: port, Dir: dir})
	if err != nil {
		return nil, err
	}
	defer edge.Stop()

	const conns = 32
	total := 3 * failoverPhase
	secs := int(total / time.Second)
	ok := make([]atomic.Int64, secs)
	failed := make([]atomic.Int64, secs)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true}, Timeout: 10 * time.Second}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/api/v1/contacts"
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				res, err := client.Get(url)
				good := err == nil && res.StatusCode == http.StatusOK
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				s := int(time.Since(start) / time.Second)
				if s >= secs {
					return
				}
				if good {
					ok[s].Add(1)
				} else {
					failed[s].Add(1)
				}
			}
		})
	}
	sleepCtx(ctx, failoverPhase)
	killedAt := time.Since(start)
	_ = ups[1].Signal(syscall.SIGKILL)
	sleepCtx(ctx, failoverPhase)
	restartedAt := time.Since(start)
	ups[1], err = startUp(1, ports[1])
	if err != nil {
		e.Log("  restart: %v", err)
	}
	wg.Wait()

	t := &Table{
		ID: "s8-failover", Scenario: 8, Layout: "unpinned", Logs: false, Conns: conns, Unit: "req/s",
		Title: fmt.Sprintf("Scenario 8: GET 1 KiB through a pool of 3 upstreams, one killed -9 at %ds and restarted at %ds (health interval %s)",
			int(killedAt.Seconds()), int(restartedAt.Seconds()), failoverHealth),
		Notes: []string{"One bar per second of the run; a failed request is any answer but 200 or no answer.",
			"The kill and the restart happen at the seconds in the title; the edge retries refused connections on the other upstreams and takes the dead one out (passive health), then back after the first passed check."},
	}
	var errs int64
	for s := range secs {
		mark := ""
		switch s {
		case int(killedAt / time.Second):
			mark = " kill"
		case int(restartedAt / time.Second):
			mark = " restart"
		}
		n, f := ok[s].Load(), failed[s].Load()
		errs += f
		row := t.row(fmt.Sprintf("%ds%s", s, mark))
		row.Samples = append(row.Samples, Sample{Value: float64(n), Requests: n + f, Non2xx: f})
		e.Log("  %2ds%-8s %7d req/s  failed %d", s, mark, n, f)
	}
	t.Notes = append(t.Notes, fmt.Sprintf("failed requests over the whole run: %d", errs))
	t.Notes = append(t.Notes, "tries per upstream (edge_upstream_requests_total; upstream 1 is the one killed): "+triesPerUpstream(ctx, admin, ports[:]))
	return []*Table{t}, ctx.Err()
}

// triesPerUpstream reads the edge's tries to each upstream from /metrics.
func triesPerUpstream(ctx context.Context, admin int, ports []int) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(admin)+"/metrics", nil)
	if err != nil {
		return "?"
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "?"
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := ""
	for i, p := range ports {
		re := regexp.MustCompile(`(?m)^edge_upstream_requests_total\{code="([^"]+)",route="/",upstream="127\.0\.0\.1:` + strconv.Itoa(p) + `"\} (\d+)`)
		parts := ""
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			parts += " " + m[1] + ":" + m[2]
		}
		out += fmt.Sprintf("upstream %d%s; ", i, parts)
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
