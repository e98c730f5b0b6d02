package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"selfhost.dev/edgeapp/internal/testlog"
	"selfhost.dev/edgeapp/internal/testserver"
)

// The kill -9 tests: an app process is killed with SIGKILL while 16
// writers post contacts. Afterwards every contact that got a 2xx must be
// stored once, indexed and notified within 60 s of the restart (embedded
// SQLite) or of the kill (PostgreSQL, where the surviving instance takes
// over the dead one's jobs once their short lease ends). Notifications are
// at-least-once: a duplicate (sent, then killed before the job was marked
// done) is counted and reported, never a failure; a missing one is.

const (
	crashWriters = 16
	crashLoad    = 1500 * time.Millisecond // of load before the kill
	crashBound   = 60 * time.Second        // to catch up after it
)

// proc is one app process that a test may kill.
type proc struct {
	cmd    *exec.Cmd
	out    *testlog.Buffer
	done   chan error
	api    string
	killed bool
}

// startProc starts the app; unless killed, it is stopped with SIGTERM
// when t ends and must exit cleanly.
func startProc(t *testing.T, bin string, env []string) *proc {
	t.Helper()
	p := &proc{out: &testlog.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.killed {
			return
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("app exited with %v", err)
			}
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			t.Errorf("app did not stop within 30s of SIGTERM")
		}
		if t.Failed() {
			log := p.out.String()
			t.Logf("app log (tail):\n%s", log[max(0, len(log)-6000):])
		}
	})
	api, _ := listening(t, p.out, p.done)
	p.api = "http://" + api
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.killed = true
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// contactLoad posts contacts from crashWriters goroutines, each to the
// targets in turn, until stopped, and remembers which got a 201.
type contactLoad struct {
	mu      sync.Mutex
	created map[string]int64 // email → id, for every 201
	failed  atomic.Int64     // requests without a 201 (the killed process's)
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startContactLoad(t *testing.T, targets []string) *contactLoad {
	l := &contactLoad{created: map[string]int64{}, stop: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: crashWriters}}
	t.Cleanup(client.CloseIdleConnections)
	for w := range crashWriters {
		l.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				email := fmt.Sprintf("w%d-%d@example.com", w, i)
				body := fmt.Sprintf(`{"name":"Writer %d number %d","email":%q,"message":"crash test %d %d"}`, w, i, email, w, i)
				req, _ := http.NewRequest("POST", targets[(w+i)%len(targets)]+"/contact", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-API-Key", testKey)
				resp, err := client.Do(req)
				if err != nil {
					l.failed.Add(1)
					continue
				}
				var res struct{ ID int64 }
				err = json.NewDecoder(resp.Body).Decode(&res)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusCreated {
					l.failed.Add(1)
					continue
				}
				l.mu.Lock()
				l.created[email] = res.ID
				l.mu.Unlock()
			}
		})
	}
	return l
}

// stopLoad stops the writers and returns what got a 201.
func (l *contactLoad) stopLoad() map[string]int64 {
	close(l.stop)
	l.wg.Wait()
	return l.created
}

// crashDB reads the app's database: every row of q as strings.
type crashDB func(t *testing.T, q string) [][]string

var mailID = regexp.MustCompile(`^contact-(\d+)\.`)

// mailsByContact counts the notifications the log mailer wrote in logs,
// by contact id (from the Message ID, which is the same on every attempt).
func mailsByContact(logs ...*testlog.Buffer) map[int64]int {
	n := map[int64]int{}
	for _, out := range logs {
		for line := range strings.SplitSeq(out.String(), "\n") {
			var rec struct {
				Msg       string
				MessageID string `json:"message_id"`
			}
			if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "mail not sent: logged instead" {
				continue
			}
			if m := mailID.FindStringSubmatch(rec.MessageID); m != nil {
				id, _ := strconv.ParseInt(m[1], 10, 64)
				n[id]++
			}
		}
	}
	return n
}

// checkCaughtUp waits until no job is pending (at most crashBound after
// since), then checks every 2xx contact: stored once, indexed, notified.
// It reports duplicates and the time taken.
func checkCaughtUp(t *testing.T, db crashDB, indexQuery string, created map[string]int64, since time.Time, logs ...*testlog.Buffer) {
	t.Helper()
	for {
		rows := db(t, "SELECT CAST(count(*) AS TEXT) FROM jobs WHERE done_at IS NULL")
		if rows[0][0] == "0" {
			break
		}
		if time.Since(since) > crashBound {
			t.Fatalf("%s jobs still pending %v after the kill/restart", rows[0][0], crashBound)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(since)

	byEmail := map[string][]int64{}
	for _, r := range db(t, "SELECT CAST(id AS TEXT), email FROM contacts") {
		id, _ := strconv.ParseInt(r[0], 10, 64)
		byEmail[r[1]] = append(byEmail[r[1]], id)
	}
	indexed := map[int64]bool{}
	for _, r := range db(t, indexQuery) {
		id, _ := strconv.ParseInt(r[0], 10, 64)
		indexed[id] = true
	}
	mails := mailsByContact(logs...)
	var missingRow, twice, notIndexed, notMailed, duplicates int
	for email, id := range created {
		ids := byEmail[email]
		switch {
		case len(ids) == 0:
			missingRow++
			continue
		case len(ids) > 1 || ids[0] != id:
			twice++
		}
		if !indexed[id] {
			notIndexed++
		}
		switch n := mails[id]; {
		case n == 0:
			notMailed++
		case n > 1:
			duplicates += n - 1
		}
	}
	if missingRow+twice+notIndexed+notMailed > 0 {
		t.Errorf("of %d contacts answered 201: %d not stored, %d stored more than once or under another id, %d not indexed, %d not notified",
			len(created), missingRow, twice, notIndexed, notMailed)
	}
	t.Logf("%d contacts answered 201, %d rows; outbox caught up %v after the kill/restart; duplicate notifications: %d",
		len(created), len(byEmail), took.Round(10*time.Millisecond), duplicates)
}

func crashEnv(t *testing.T, extra ...string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir(),
		"APP_ADDR=127.0.0.1:0", "METRICS_ADDR=127.0.0.1:0",
		"PUBLIC_API_KEY=" + testKey, "NOTIFY_EMAIL_TO=owner@example.com",
		"OUTBOX_POLL_INTERVAL=100ms",
	}, extra...)
}

// TestKillSQLite kills the embedded default under load and restarts it on
// the same DATA_DIR. The lease is five minutes, so only the reclaim at
// start can bring the dead process's jobs back within the bound.
func TestKillSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it")
	}
	bin := buildApp(t)
	dataDir := t.TempDir()
	env := crashEnv(t, "DATA_DIR="+dataDir, "OUTBOX_LEASE=5m")
	first := startProc(t, bin, env)
	load := startContactLoad(t, []string{first.api})
	time.Sleep(crashLoad)
	first.kill(t)
	created := load.stopLoad()

	sdb, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "app.db")+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	db := func(t *testing.T, q string) [][]string {
		t.Helper()
		rows, err := sdb.QueryContext(t.Context(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var out [][]string
		for rows.Next() {
			r := make([]string, len(cols))
			ptrs := make([]any, len(cols))
			for i := range r {
				ptrs[i] = &r[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return out
	}
	leased := db(t, fmt.Sprintf("SELECT CAST(count(*) AS TEXT) FROM jobs WHERE done_at IS NULL AND locked_until > %d", time.Now().UnixNano()))[0][0]
	t.Logf("killed after %v of load: %d contacts answered 201, %d requests got no 201 (around and after the kill), %s jobs left leased",
		crashLoad, len(created), load.failed.Load(), leased)
	if len(created) == 0 {
		t.Fatal("no contact was created before the kill")
	}

	restart := time.Now()
	second := startProc(t, bin, env)
	checkCaughtUp(t, db, "SELECT CAST(rowid AS TEXT) FROM contacts_fts", created, restart, first.out, second.out)
	if leased != "0" && !strings.Contains(second.out.String(), "reclaimed outbox jobs leased before a restart") {
		t.Errorf("%s jobs were left leased, but the restart did not log reclaiming them", leased)
	}
}

// TestKillOneOfTwoPostgres runs two instances on one PostgreSQL with
// 3-second leases renewed every 500 ms, and kills one under load: the
// survivor must finish the dead one's jobs once their lease ends.
func TestKillOneOfTwoPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts servers")
	}
	dbURL := testserver.Postgres(t)
	bin := buildApp(t)
	env := func() []string {
		return crashEnv(t, "DATABASE_URL="+dbURL, "DATA_DIR="+t.TempDir(), "OUTBOX_LEASE=3s", "OUTBOX_HEARTBEAT=500ms")
	}
	victim := startProc(t, bin, env())
	survivor := startProc(t, bin, env())
	load := startContactLoad(t, []string{victim.api, survivor.api})
	time.Sleep(crashLoad)
	victim.kill(t)
	killed := time.Now()
	created := load.stopLoad()

	ctx := context.WithoutCancel(t.Context())
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	db := func(t *testing.T, q string) [][]string {
		t.Helper()
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		var out [][]string
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			r := make([]string, len(vals))
			for i, v := range vals {
				r[i] = fmt.Sprint(v)
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return out
	}
	leased := db(t, "SELECT CAST(count(*) AS TEXT) FROM jobs WHERE done_at IS NULL AND leased_until > now()")[0][0]
	t.Logf("killed one instance after %v: %d contacts answered 201, %d requests got no 201 (around and after the kill), %s jobs leased at the kill (either instance's)",
		crashLoad, len(created), load.failed.Load(), leased)
	if len(created) == 0 {
		t.Fatal("no contact was created before the kill")
	}
	checkCaughtUp(t, db, "SELECT CAST(id AS TEXT) FROM search_contacts", created, killed, victim.out, survivor.out)
	taken := db(t, "SELECT CAST(count(*) AS TEXT) FROM jobs WHERE attempts > 1")[0][0]
	t.Logf("jobs claimed more than once (the dead instance's, taken over): %s", taken)
}
