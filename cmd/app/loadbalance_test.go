package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"selfhost.dev/edgeapp/edge"
	"selfhost.dev/edgeapp/internal/testserver"
)

// TestLoadBalancedInstances runs three app processes on one real PostgreSQL
// behind an edge whose route has all three as upstreams, under mixed load
// (GET search, POST contact). One instance is killed with SIGKILL, then
// started again on its address. No GET may fail (a refused connection goes
// to the next instance, a GET that reached a dying one is retried), no
// contact may be stored twice (a POST that was sent is never repeated),
// and the restarted instance gets traffic again within the health interval.
func TestLoadBalancedInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts servers")
	}
	dbURL := testserver.Postgres(t)
	bin := buildApp(t)
	const healthInterval = time.Second

	var addrs [3]string
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = l.Addr().String()
		l.Close()
	}
	envFor := func(i int) []string {
		return []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir(), "DATA_DIR=" + t.TempDir(),
			"APP_ADDR=" + addrs[i], "METRICS_ADDR=127.0.0.1:0",
			"PUBLIC_API_KEY=" + testKey, "ADMIN_API_KEY=" + testKey + "-admin",
			"NOTIFY_EMAIL_TO=owner@example.com", "DATABASE_URL=" + dbURL,
		}
	}
	startApp(t, bin, envFor(0))
	startApp(t, bin, envFor(2))
	victim := startProc(t, bin, envFor(1))

	// The edge, in process, with the three as one route's upstreams.
	yaml := fmt.Sprintf(`
access_log: "off"
routes:
  - path: /
    to: ["http://%s", "http://%s", "http://%s"]
    health: { path: /health, interval: %s, timeout: 500ms, healthy: 1, unhealthy: 1 }
    passive: { max_fails: 1, fail_timeout: 5s }
    retry: { tries: 3, duration: 5s }
`, addrs[0], addrs[1], addrs[2], healthInterval)
	cfg, err := edge.Load(strings.NewReader(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	srv, err := edge.New(cfg, edge.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: reg, AccessLog: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, pub, nil) }()
	defer func() { cancel(); <-served }()
	base := "http://" + pub.Addr().String()
	// hitsOf reads how many tries the edge sent to an upstream.
	hitsOf := func(addr string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0.0
		for _, mf := range mfs {
			if mf.GetName() != "edge_upstream_requests_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "upstream" && l.GetValue() == addr {
						n += m.GetCounter().GetValue()
					}
				}
			}
		}
		return n
	}

	var (
		stop        atomic.Bool
		seq         atomic.Int64
		gets, gFail atomic.Int64
		mu          sync.Mutex
		created     = map[string]bool{} // emails answered 201
		notCreated  = map[string]int{}  // emails answered otherwise, by status
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 20 * time.Second}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for !stop.Load() {
				n := seq.Add(1)
				var req *http.Request
				email := ""
				if w%2 == 0 {
					email = fmt.Sprintf("lb%d@example.com", n)
					req, _ = http.NewRequest("POST", base+"/contact", strings.NewReader(
						fmt.Sprintf(`{"name":"Person %d","email":"%s","message":"about wombats"}`, n, email)))
					req.Header.Set("Content-Type", "application/json")
				} else {
					req, _ = http.NewRequest("GET", base+"/documents/search?q=wombat&limit=5", nil)
				}
				req.Header.Set("X-API-Key", testKey)
				res, err := client.Do(req)
				status := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					status = res.StatusCode
				}
				if email == "" {
					gets.Add(1)
					if status != http.StatusOK {
						gFail.Add(1)
						t.Errorf("GET search: %d %v", status, err)
					}
					continue
				}
				mu.Lock()
				if status == http.StatusCreated {
					created[email] = true
				} else {
					notCreated[email] = status
				}
				mu.Unlock()
			}
		})
	}

	time.Sleep(2 * time.Second)
	if hitsOf(addrs[1]) == 0 {
		t.Error("the victim got no traffic before the kill")
	}
	victim.kill(t)
	time.Sleep(3 * time.Second)
	startProc(t, bin, envFor(1))
	restarted := time.Now()
	before := hitsOf(addrs[1])
	for hitsOf(addrs[1]) == before {
		if time.Since(restarted) > 2*healthInterval+time.Second {
			t.Errorf("no traffic to the restarted instance %s after it started listening", time.Since(restarted))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	back := time.Since(restarted)
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()
	t.Logf("GETs %d (failed %d), POSTs answered 201: %d, otherwise: %v; traffic back %s after the restart",
		gets.Load(), gFail.Load(), len(created), notCreated, back.Round(time.Millisecond))
	if back > healthInterval+time.Second { // a second of slack for a loaded machine
		t.Errorf("traffic back %s after the restart, want within the health interval %s", back, healthInterval)
	}

	db, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	rows, err := db.Query(context.Background(), "SELECT email, count(*) FROM contacts GROUP BY email")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for rows.Next() {
		var email string
		var c int
		if err := rows.Scan(&email, &c); err != nil {
			t.Fatal(err)
		}
		stored[email] = c
	}
	rows.Close()
	for email, c := range stored {
		if c != 1 {
			t.Errorf("contact %s stored %d times", email, c)
		}
		if !created[email] {
			// Only possible for a POST the victim stored and died before
			// answering: the client got an error, never a replay.
			if _, ok := notCreated[email]; !ok {
				t.Errorf("contact %s stored but never sent", email)
			}
			t.Logf("contact %s stored, answered %d (killed before answering)", email, notCreated[email])
		}
	}
	for email := range created {
		if stored[email] != 1 {
			t.Errorf("contact %s answered 201 but stored %d times", email, stored[email])
		}
	}
	t.Logf("rows %d, 2xx answers %d", len(stored), len(created))
}
