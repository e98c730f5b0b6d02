package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// upgrades is how many upgrades in a row TestUpgradeUnderLoad makes. Each
// takes about handoverCloseFor + shutdown_grace (2.5 s); lower it on a
// slow machine.
const upgrades = 10

// upgradeGrace is the edge's shutdown_grace in the test.
const upgradeGrace = time.Second

// The binaries built for the tests, by version, shared by them.
var (
	buildMu  sync.Mutex
	buildDir string
	builds   = map[string]*build{}
)

type build struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildEdge builds this command with version v, once per test run.
func buildEdge(t *testing.T, v string) string {
	t.Helper()
	buildMu.Lock()
	if buildDir == "" {
		var err error
		if buildDir, err = os.MkdirTemp("", "edge-builds"); err != nil {
			buildMu.Unlock()
			t.Fatal(err)
		}
	}
	b := builds[v]
	if b == nil {
		b = &build{path: filepath.Join(buildDir, "edge-"+v)}
		builds[v] = b
	}
	buildMu.Unlock()
	b.once.Do(func() {
		out, err := exec.Command("go", "build", "-ldflags", "-X main.version="+v, "-o", b.path, ".").CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", v, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// install puts the file src at dst atomically, as a package manager does:
// the running process keeps its (now unlinked) binary.
func install(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// upstreamForUpgrade answers /, echoes a websocket on /ws and streams an
// event every 50 ms on /sse until the client or the edge goes.
func upstreamForUpgrade(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ws":
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			for {
				typ, b, err := c.Read(r.Context())
				if err != nil {
					return
				}
				if err := c.Write(r.Context(), typ, b); err != nil {
					return
				}
			}
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; ; i++ {
				if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		default:
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(up.Close)
	return up
}

// edgeProc is the edge under test, whichever process serves.
type edgeProc struct {
	t              *testing.T
	bin, cfg, pidf string
	public, admin  string
	stderr         *os.File
}

func (e *edgeProc) pid() int {
	b, _ := os.ReadFile(e.pidf)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// version asks the admin port, on a new connection, which build serves.
func (e *edgeProc) version() string {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + e.admin + "/metrics")
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `edge_build_info{version="`); ok {
			return v[:strings.IndexByte(v, '"')]
		}
	}
	return "none"
}

func (e *edgeProc) upgrade() (int, string) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Post("http://"+e.admin+"/-/upgrade", "text/plain", nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *edgeProc) accessLog() string { return filepath.Join(filepath.Dir(e.cfg), "access.log") }

// probe makes a request on a new connection to path, to find it in the
// access log.
func (e *edgeProc) probe(path string) error {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	res, err := c.Get("http://" + e.public + path)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	return res.Body.Close()
}

// pidsInAccessLog returns the pid of each logged request whose path starts
// with prefix.
func (e *edgeProc) pidsInAccessLog(t *testing.T, prefix string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(e.accessLog())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, `"path":"`+prefix) {
			continue
		}
		var v struct {
			Path string
			PID  int
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("access log line %q: %v", line, err)
		}
		out[v.Path] = v.PID
	}
	return out
}

func (e *edgeProc) log() string {
	b, _ := os.ReadFile(e.stderr.Name())
	return string(b)
}

// startEdge starts bin on upstream with command (nil: edge run -config
// -pidfile) and waits until it serves.
func startEdge(t *testing.T, bin, upstream string, public, admin string, command func(e *edgeProc) *exec.Cmd) *edgeProc {
	dir := t.TempDir()
	e := &edgeProc{t: t, bin: filepath.Join(dir, "edge"), cfg: filepath.Join(dir, "routes.yaml"), pidf: filepath.Join(dir, "edge.pid"),
		public: public, admin: admin}
	if command == nil {
		command = func(e *edgeProc) *exec.Cmd { return exec.Command(e.bin, "run", "-config", e.cfg, "-pidfile", e.pidf) }
	}
	install(t, bin, e.bin)
	e.writeConfig(t, upstream)
	var err error
	if e.stderr, err = os.Create(filepath.Join(dir, "stderr")); err != nil {
		t.Fatal(err)
	}
	cmd := command(e)
	cmd.Stderr, cmd.Stdout = e.stderr, e.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }() // reaps the first process when it hands over
	t.Cleanup(func() {
		// Whichever process serves now: stop it and wait until it is gone.
		pid := e.pid()
		if pid == 0 {
			pid = cmd.Process.Pid
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
		if t.Failed() {
			t.Logf("edge log:\n%s", e.log())
		}
	})
	for i := 0; ; i++ {
		if e.pid() != 0 && e.version() != "" && !strings.HasPrefix(e.version(), "error") {
			return e
		}
		if i == 200 {
			t.Fatalf("the edge did not start:\n%s", e.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *edgeProc) writeConfig(t *testing.T, upstream string) {
	cfg := fmt.Sprintf("listen: %q\nadmin: %q\naccess_log: %q\nshutdown_grace: %s\nroutes:\n  - { path: /, to: %q }\n",
		e.public, e.admin, e.accessLog(), upstreamGraceString(), upstream)
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func upstreamGraceString() string { return upgradeGrace.String() }

// load runs c clients against the public port until stop is closed: half
// on keep-alive connections, half on a new connection per request. They
// POST a body, so that Go's Transport does not retry a request a closed
// connection failed: every failure shows.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(url string, c int) *load {
	l := &load{stop: make(chan struct{})}
	keep := &http.Transport{MaxIdleConnsPerHost: c}
	fresh := &http.Transport{DisableKeepAlives: true}
	for i := 0; i < c; i++ {
		tr := keep
		if i%2 == 1 {
			tr = fresh
		}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := client.Post(url, "text/plain", strings.NewReader("ping"))
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || string(b) != "ok") {
						err = fmt.Errorf("%s %q", resp.Status, b)
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errs) < 10 {
						l.errs = append(l.errs, err.Error())
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	return l
}

func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

// stream is a websocket and an SSE stream opened on the serving process.
type stream struct {
	ws      *websocket.Conn
	sseDone chan time.Time // when the SSE stream ended
	events  atomic.Int64
}

func openStreams(t *testing.T, public string) *stream {
	t.Helper()
	s := &stream{sseDone: make(chan time.Time, 1)}
	ws, _, err := websocket.Dial(context.Background(), "ws://"+public+"/ws", nil)
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	s.ws = ws
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + public + "/sse")
	if err != nil {
		t.Fatalf("sse: %v", err)
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				s.events.Add(1)
			}
		}
		s.sseDone <- time.Now()
	}()
	return s
}

func (s *stream) echo() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.ws.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		return err
	}
	_, b, err := s.ws.Read(ctx)
	if err == nil && string(b) != "hi" {
		err = fmt.Errorf("echo %q", b)
	}
	return err
}

// TestUpgradeUnderLoad replaces the running edge by a rebuilt binary with
// another version, upgrades times in a row, under load, with a websocket
// and an SSE stream open on each old process; then tries a broken binary
// and a broken routes.yaml.
func TestUpgradeUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the edge twice")
	}
	bins := map[string]string{}
	var wg sync.WaitGroup
	for _, v := range []string{"v-a", "v-b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buildEdge(t, v)
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	bins["v-a"], bins["v-b"] = buildEdge(t, "v-a"), buildEdge(t, "v-b")
	up := upstreamForUpgrade(t)
	e := startEdge(t, bins["v-a"], up.URL, freeAddr(t), freeAddr(t), nil)
	if v := e.version(); v != "v-a" {
		t.Fatalf("version %q", v)
	}
	l := startLoad("http://"+e.public+"/", 64)
	defer func() {
		if l != nil {
			l.finish()
		}
	}()
	time.Sleep(300 * time.Millisecond)

	// A binary that crashes, one that is not a binary, a broken
	// routes.yaml: the old process serves on.
	good, _ := os.ReadFile(e.bin)
	replaceBin := func(b []byte) {
		if err := os.WriteFile(e.bin+".new", b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(e.bin+".new", e.bin); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name, want, log string
		bin             []byte
		cfg             string
	}{
		{"crashing binary", "exited: exit status 3", "crashed before ready", []byte("#!/bin/sh\necho crashed before ready >&2\nexit 3\n"), ""},
		{"not a binary", "exec format error", "", []byte("\x7fELF garbage"), ""},
		{"broken routes.yaml", "exited: exit status 1", `listen: bad address "nope"`, good, "listen: nope\n"},
	} {
		pid := e.pid()
		replaceBin(c.bin)
		if c.cfg != "" {
			_ = os.WriteFile(e.cfg, []byte(c.cfg), 0o600)
		}
		code, body := e.upgrade()
		if code != 500 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %q", c.name, code, body)
		}
		if !strings.Contains(e.log(), c.log) {
			t.Errorf("%s: the log does not say %q", c.name, c.log)
		}
		if e.pid() != pid || e.version() != "v-a" {
			t.Errorf("%s: pid %d → %d, version %s", c.name, pid, e.pid(), e.version())
		}
		replaceBin(good)
		e.writeConfig(t, up.URL)
	}

	var streams []*stream
	var handovers []time.Time
	probes := map[string]int{} // path → the pid that should have served it
	start := time.Now()
	v := "v-a"
	for i := 0; i < upgrades; i++ {
		s := openStreams(t, e.public)
		streams = append(streams, s)
		pid := e.pid()
		next := "v-b"
		if v == "v-b" {
			next = "v-a"
		}
		install(t, bins[next], e.bin)
		switch i {
		case 1: // by signal
			_ = syscall.Kill(pid, syscall.SIGUSR2)
			for j := 0; e.pid() == pid && j < 200; j++ {
				time.Sleep(50 * time.Millisecond)
			}
		case 2: // by the subcommand
			var out, errb strings.Builder
			if code := run([]string{"upgrade", "-config", e.cfg}, nil, &out, &errb); code != 0 {
				t.Fatalf("edge upgrade: %d %s", code, errb.String())
			}
		default:
			for {
				code, body := e.upgrade()
				if code == 200 {
					break
				}
				t.Fatalf("upgrade %d: %d %s", i, code, body)
			}
		}
		handovers = append(handovers, time.Now())
		if e.pid() == pid {
			t.Fatalf("upgrade %d: still pid %d", i, pid)
		}
		time.Sleep(100 * time.Millisecond)
		if got := e.version(); got != next {
			t.Errorf("upgrade %d: new connections reach %q, want %q", i, got, next)
		}
		probe := "/probe-" + strconv.Itoa(i)
		if err := e.probe(probe); err != nil {
			t.Errorf("upgrade %d: %v", i, err)
		}
		probes[probe] = e.pid()
		// The old process's streams still work while it drains.
		if err := s.echo(); err != nil {
			t.Errorf("upgrade %d: websocket on the old process: %v", i, err)
		}
		v = next
		// The next upgrade waits for this old process to exit.
	}
	elapsed := time.Since(start)
	time.Sleep(300 * time.Millisecond)
	l.finish()
	ok, failed := l.ok.Load(), l.failed.Load()
	errs := startLoadErrs(l)
	l = nil
	t.Logf("%d upgrades in %s, %d requests, %d failed", upgrades, elapsed.Round(time.Millisecond), ok, failed)
	if failed > 0 || ok == 0 {
		t.Errorf("%d requests failed, %d ok; first errors: %q", failed, ok, errs)
	}
	// Every old stream was cut, and none before shutdown_grace.
	for i, s := range streams {
		select {
		case end := <-s.sseDone:
			if d := end.Sub(handovers[i]); d < upgradeGrace {
				t.Errorf("stream %d: SSE cut %s after its handover, before shutdown_grace %s", i, d, upgradeGrace)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("stream %d: the old process never ended its SSE stream", i)
		}
		if s.events.Load() == 0 {
			t.Errorf("stream %d: no SSE event", i)
		}
		// The websocket is ended by the same cancellation as the SSE
		// stream, by another goroutine: it may echo once more in between.
		if !wsEnds(s, 5*time.Second) {
			t.Errorf("stream %d: the websocket outlived its process", i)
		}
		s.ws.CloseNow()
	}
	// The pid in the PID file serves.
	if err := syscall.Kill(e.pid(), 0); err != nil {
		t.Errorf("pid file: %v", err)
	}
	// A new public connection after each upgrade reached the new process.
	time.Sleep(200 * time.Millisecond) // the access log is written every 50 ms
	logged := e.pidsInAccessLog(t, "/probe-")
	for path, pid := range probes {
		if logged[path] != pid {
			t.Errorf("%s served by pid %d, want the new process %d", path, logged[path], pid)
		}
	}
}

// wsEnds reports whether the stream's websocket stops echoing within d.
func wsEnds(s *stream, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if s.echo() != nil {
			return true
		}
	}
	return false
}

func startLoadErrs(l *load) []string {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs
}

// Started by systemd's socket activation, the edge serves on the sockets
// it was given (it binds nothing: the test still holds the addresses), and
// passes them on at an upgrade.
func TestSystemdSocketActivation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the edge")
	}
	bin := buildEdge(t, "v-a")
	var files []*os.File
	var addrs []string
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		f, err := l.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
		addrs = append(addrs, l.Addr().String())
	}
	up := upstreamForUpgrade(t)
	e := startEdge(t, bin, up.URL, addrs[0], addrs[1], func(e *edgeProc) *exec.Cmd {
		// As systemd does: LISTEN_PID is the edge's own PID, sockets from fd 3.
		cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=public:admin exec "$0" run -config "$1" -pidfile "$2"`,
			e.bin, e.cfg, e.pidf)
		cmd.ExtraFiles = files
		return cmd
	})
	get := func() string {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
		res, err := c.Get("http://" + e.public + "/")
		if err != nil {
			return err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if got := get(); got != "ok" {
		t.Fatalf("public: %q", got)
	}
	if !strings.Contains(e.log(), `"msg":"serving on the socket systemd passed","name":"public"`) {
		t.Errorf("no systemd socket in the log")
	}
	pid := e.pid()
	if code, body := e.upgrade(); code != 200 {
		t.Fatalf("upgrade: %d %s", code, body)
	}
	if e.pid() == pid {
		t.Fatal("same pid after the upgrade")
	}
	if got := get(); got != "ok" {
		t.Errorf("public after the upgrade: %q", got)
	}
	if v := e.version(); v != "v-a" {
		t.Errorf("admin after the upgrade: %q", v)
	}
}

// edge upgrade says why it cannot ask: an invalid routes.yaml (the new
// process would refuse it too), the admin port off, no edge listening.
func TestUpgradeCommandRefusals(t *testing.T) {
	dir := t.TempDir()
	write := func(name, y string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	route := "routes:\n  - { path: /, to: \"http://127.0.0.1:1\" }\n"
	for _, c := range []struct{ cfg, want string }{
		{write("bad.yaml", "listen: nope\n"+route), `bad.yaml:1: listen: bad address "nope"`},
		{write("off.yaml", "admin: \"off\"\n"+route), "edge upgrade: the admin port is off; send SIGUSR2 to the edge instead"},
		{write("down.yaml", "admin: \""+freeAddr(t)+"\"\n"+route), "connection refused"},
	} {
		code, stdout, stderr := runCmd(t, "", "upgrade", "-config", c.cfg)
		if code != 1 || stdout != "" || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", filepath.Base(c.cfg), code, stdout, stderr, c.want)
		}
	}
}
