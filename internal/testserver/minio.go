package testserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

const minioInstall = "go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c " +
	"(about 3 minutes; puts minio in $(go env GOPATH)/bin), or put a minio binary in PATH"

// MinIO returns the endpoint (host:port) and root credentials of a real
// MinIO server shared by the tests of this test binary. Tests keep apart
// by using buckets of their own. Like Postgres's cluster, the server dies
// with the test binary (parent-death signal) and its temp dir is reaped by
// the next run. Tests that stop and restart the server use StartMinIO.
//
// Without the minio binary, t is skipped (see Skip).
func MinIO(t testing.TB) (endpoint, accessKey, secretKey string) {
	t.Helper()
	sharedMinIO.once.Do(func() {
		sharedMinIO.srv, sharedMinIO.err = startMinIO()
	})
	if sharedMinIO.err != nil {
		if errors.Is(sharedMinIO.err, errNoMinIO) {
			Skip(t, "%v: %s", sharedMinIO.err, minioInstall)
		}
		t.Fatalf("start minio: %v", sharedMinIO.err)
	}
	s := sharedMinIO.srv
	return s.Endpoint, s.AccessKey, s.SecretKey
}

var sharedMinIO struct {
	once sync.Once
	srv  *MinIOServer
	err  error
}

// MinIOServer is a MinIO server that a test controls: Stop and Start it to
// see how code behaves while object storage is down.
type MinIOServer struct {
	// Endpoint is host:port on loopback; it is kept across restarts.
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string

	bin, dir string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartMinIO starts a MinIO server of t's own, stopped and removed when t
// ends. Without the binary t is skipped (see Skip).
func StartMinIO(t testing.TB) *MinIOServer {
	t.Helper()
	s, err := startMinIO()
	if errors.Is(err, errNoMinIO) {
		Skip(t, "%v: %s", err, minioInstall)
	}
	if err != nil {
		t.Fatalf("start minio: %v", err)
	}
	t.Cleanup(func() {
		s.stop()
		os.RemoveAll(s.dir)
	})
	return s
}

// Stop stops the server and waits until it has exited.
func (s *MinIOServer) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("stop minio: %v", err)
	}
}

// Start starts a stopped server again on the same port and data.
func (s *MinIOServer) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("restart minio: %v", err)
	}
}

var errNoMinIO = errors.New("minio server binary not found")

func startMinIO() (*MinIOServer, error) {
	bin := minioBinary()
	if bin == "" {
		return nil, errNoMinIO
	}
	reapDeadDirs(os.TempDir(), "edgeapp-minio-")
	dir, err := os.MkdirTemp("", fmt.Sprintf("edgeapp-minio-%d-", os.Getpid()))
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	rand.Read(secret)
	s := &MinIOServer{AccessKey: "edgeapp-test", SecretKey: hex.EncodeToString(secret), bin: bin, dir: dir}
	// A port taken between the pick and MinIO's bind makes it exit at
	// once: try another.
	for attempt := 1; ; attempt++ {
		port, err := pickLoopbackPort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.Endpoint = "127.0.0.1:" + strconv.Itoa(port)
		err = s.start()
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errExitedAtStart) || attempt == 3 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

func (s *MinIOServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	consolePort, err := pickLoopbackPort()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "minio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, "server", "--quiet",
		"--address", s.Endpoint,
		"--console-address", "127.0.0.1:"+strconv.Itoa(consolePort),
		filepath.Join(s.dir, "data"))
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(),
		"HOME="+s.dir, // minio keeps certs and config under ~/.minio
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start minio: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	// Healthy is not yet serving: until its object layer is up, MinIO
	// answers S3 requests 503 "Server not initialized". An anonymous
	// ListBuckets (GET /) is refused with 403 once it is.
	for _, path := range []string{"/minio/health/live", "/minio/health/ready", "/"} {
		for {
			resp, err := client.Get("http://" + s.Endpoint + path)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK || path == "/" && resp.StatusCode < 500 {
					break
				}
				err = fmt.Errorf("%s: %s", path, resp.Status)
			}
			select {
			case <-done:
				s.cmd = nil
				return fmt.Errorf("minio %w:\n%s", errExitedAtStart, s.logTail())
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("minio not ready after 60s: %v\n%s", err, s.logTail())
			}
		}
	}
	return nil
}

func (s *MinIOServer) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	cmd, done := s.cmd, s.done
	s.cmd = nil
	stopProcess(cmd, done, syscall.SIGTERM, 15*time.Second)
	return nil
}

func (s *MinIOServer) logTail() string {
	return serverLogTail(filepath.Join(s.dir, "minio.log"))
}

// minioBinary finds minio in PATH or where go install puts it.
func minioBinary() string {
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	for _, dir := range filepath.SplitList(gopath) {
		if p := filepath.Join(dir, "bin", "minio"); isExecutable(p) {
			return p
		}
	}
	return ""
}
