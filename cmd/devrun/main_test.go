package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// TestMain removes the binaries built once for all tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinaries builds app, edge and devrun into a temp dir once, skipping
// the test if cmd/edge does not build (it is written in parallel).
func buildBinaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds three binaries; skipped with -short")
	}
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		}
		if binDir, buildErr = os.MkdirTemp("", "devrun-test-bin-"); buildErr != nil {
			return
		}
		root, _ := filepath.Abs("../..")
		if out, err := exec.Command(goBin, "build", "-C", root, "-o", binDir+"/", "./cmd/edge", "./cmd/app", "./cmd/devrun").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// devrunProc is a running devrun and what it printed.
type devrunProc struct {
	cmd      *exec.Cmd
	lines    chan string
	appPID   int
	edgePID  int
	curlLine string
	url      string
}

func startDevrun(t *testing.T, bin string, env ...string) *devrunProc {
	t.Helper()
	listen := freeAddr(t)
	cmd := exec.Command(filepath.Join(bin, "devrun"), "-bin", bin, "-data", t.TempDir(),
		"-listen", listen, "-app", freeAddr(t), "-metrics", freeAddr(t), "-edge-admin", freeAddr(t))
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p := &devrunProc{cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // drop logs nobody reads
			}
		}
		close(p.lines)
	}()
	pids := regexp.MustCompile(`started app \(pid (\d+)\) and edge \(pid (\d+)\)`)
	timeout := time.After(90 * time.Second)
	var seen []string
	for p.curlLine == "" {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("devrun exited before printing the curl line:\n%s", strings.Join(seen, "\n"))
			}
			seen = append(seen, line)
			if m := pids.FindStringSubmatch(line); m != nil {
				p.appPID, _ = strconv.Atoi(m[1])
				p.edgePID, _ = strconv.Atoi(m[2])
			}
			if strings.HasPrefix(strings.TrimSpace(line), "open") {
				p.url = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "open"))
			}
			if strings.HasPrefix(strings.TrimSpace(line), "curl ") {
				p.curlLine = strings.TrimSpace(line)
			}
		case <-timeout:
			t.Fatalf("no curl line after 90s:\n%s", strings.Join(seen, "\n"))
		}
	}
	if p.appPID == 0 || p.edgePID == 0 {
		t.Fatalf("no pids printed:\n%s", strings.Join(seen, "\n"))
	}
	return p
}

func gone(pid int) bool {
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// TestDevrun builds the binaries, runs devrun on free ports, runs the
// curl line it prints, and stops it with SIGINT: both children are gone.
func TestDevrun(t *testing.T) {
	bin := buildBinaries(t)
	p := startDevrun(t, bin, "PUBLIC_API_KEY=", "ADMIN_API_KEY=", "EDGE_ADMIN_HASH=", "EDGE_ADMIN_PASSWORD=")
	if !strings.HasPrefix(p.url, "http://localhost:") {
		t.Errorf("URL to open %q", p.url)
	}
	// The curl line, run as a shell would.
	out, err := exec.Command("sh", "-c", p.curlLine+` -w '\n%{http_code}'`).CombinedOutput()
	if _, lookErr := exec.LookPath("curl"); lookErr != nil {
		// No curl here: replay it with net/http.
		key := regexp.MustCompile(`X-API-Key: ([0-9a-f]+)`).FindStringSubmatch(p.curlLine)[1]
		req, _ := http.NewRequest("POST", p.url+"contact", strings.NewReader(`{"name":"Ada","email":"ada@example.com","message":"Hello"}`))
		req.Header.Set("X-API-Key", key)
		req.Header.Set("Content-Type", "application/json")
		resp, err2 := http.DefaultClient.Do(req)
		if err2 != nil {
			t.Fatal(err2)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out, err = append(b, []byte("\n"+strconv.Itoa(resp.StatusCode))...), nil
	}
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "201") || !strings.Contains(string(out), `"status":"success"`) {
		t.Fatalf("curl line %q: %v\n%s", p.curlLine, err, out)
	}

	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("devrun after SIGINT: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("devrun did not exit after SIGINT")
	}
	if !gone(p.appPID) || !gone(p.edgePID) {
		t.Errorf("children left running: app gone %v, edge gone %v", gone(p.appPID), gone(p.edgePID))
	}
}

// TestDevrunChildExits: if one child dies, devrun stops the other and
// exits non-zero.
func TestDevrunChildExits(t *testing.T) {
	bin := buildBinaries(t)
	p := startDevrun(t, bin, "PUBLIC_API_KEY=0123456789abcdef0123", "ADMIN_API_KEY=", "EDGE_ADMIN_HASH=", "EDGE_ADMIN_PASSWORD=")
	if !strings.Contains(p.curlLine, "$PUBLIC_API_KEY") {
		t.Errorf("curl line %q should use the key from the environment by name", p.curlLine)
	}
	if err := syscall.Kill(p.appPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err == nil || !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("devrun after its app died: %v, want a non-zero exit", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("devrun did not exit after its app died")
	}
	if !gone(p.edgePID) {
		t.Error("edge left running")
	}
}
