package testserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const postgresInstall = "apt-get install postgresql (Debian/Ubuntu puts initdb and postgres in /usr/lib/postgresql/*/bin), " +
	"or set TEST_DATABASE_URL=postgres://user:pass@127.0.0.1:5432/postgres to a server where that user may CREATE DATABASE"

// Postgres returns the URL of a fresh, empty database for t.
//
// If TEST_DATABASE_URL is set, the database is created on that server (the
// URL's user needs CREATEDB) and dropped when t ends. Otherwise it is
// created on a throwaway cluster that the first caller in the test binary
// starts (initdb + postgres on a free loopback port, everything in one temp
// dir, fsync off). That shared cluster is never stopped explicitly: it runs
// with a parent-death signal, so it dies with the test binary however the
// binary ends (pass, fail, panic, timeout), and the next test binary to
// start a cluster removes the temp dirs that dead binaries left behind.
// Tests that stop and restart the server use StartPostgres instead, which
// gives them a cluster of their own.
//
// Without TEST_DATABASE_URL or the binaries, t is skipped (see Skip).
func Postgres(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		dbURL, err := createDatabase(u)
		if err != nil {
			t.Fatalf("TEST_DATABASE_URL: %v", err)
		}
		t.Cleanup(func() { dropDatabase(u, dbURL) })
		return dbURL
	}
	sharedPG.once.Do(func() {
		sharedPG.srv, sharedPG.err = startPostgres()
	})
	if sharedPG.err != nil {
		if errors.Is(sharedPG.err, errNoPostgres) {
			Skip(t, "%v: %s", sharedPG.err, postgresInstall)
		}
		t.Fatalf("start postgres: %v", sharedPG.err)
	}
	return sharedPG.srv.NewDatabase(t)
}

var sharedPG struct {
	once sync.Once
	srv  *PostgresServer
	err  error
}

// PostgresServer is a throwaway PostgreSQL cluster that a test controls:
// Stop and Start it to see how code behaves while the database is down.
type PostgresServer struct {
	// Port is the loopback TCP port it listens on; it keeps it across restarts.
	Port int

	dir  string // temp dir: data/, the unix socket and postgres.log
	bin  string // dir holding initdb and postgres
	cred *syscall.Credential

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// StartPostgres starts a cluster of t's own, stopped and removed when t
// ends. Without the binaries t is skipped (see Skip).
func StartPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	s, err := startPostgres()
	if errors.Is(err, errNoPostgres) {
		Skip(t, "%v: %s", err, postgresInstall)
	}
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	t.Cleanup(func() {
		s.stop()
		os.RemoveAll(s.dir)
	})
	return s
}

// AdminURL is the URL of the cluster's postgres database as its superuser.
func (s *PostgresServer) AdminURL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
}

// NewDatabase creates an empty database and returns its URL.
func (s *PostgresServer) NewDatabase(t testing.TB) string {
	t.Helper()
	u, err := createDatabase(s.AdminURL())
	if err != nil {
		t.Fatalf("%v\n%s", err, s.logTail())
	}
	return u
}

// Stop shuts the server down (fast mode: open connections are cut) and
// waits until it has exited.
func (s *PostgresServer) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("stop postgres: %v", err)
	}
}

// Start starts a stopped server again on the same port and data.
func (s *PostgresServer) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("restart postgres: %v", err)
	}
}

var errNoPostgres = errors.New("postgresql server binaries (initdb, postgres) not found")

func startPostgres() (*PostgresServer, error) {
	bin := postgresBinDir()
	if bin == "" {
		return nil, errNoPostgres
	}
	s := &PostgresServer{bin: bin}
	var uid, gid = -1, -1
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as the postgres user
		// that Debian's package creates, in a dir that user owns.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("%w: running as root needs a postgres user to run the server as: %v", errNoPostgres, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
	}
	reapDeadDirs(pgTempBase(s.cred != nil), "edgeapp-pg-")
	dir, err := os.MkdirTemp(pgTempBase(s.cred != nil), fmt.Sprintf("edgeapp-pg-%d-", os.Getpid()))
	if err != nil {
		return nil, err
	}
	s.dir = dir
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if s.cred != nil {
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	initdb := s.command(filepath.Join(bin, "initdb"),
		"-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// The port was free a moment ago; if another package's server took it
	// meanwhile, postgres exits at once: try another.
	for attempt := 1; ; attempt++ {
		port, err := pickLoopbackPort()
		if err != nil {
			return nil, err
		}
		s.Port = port
		err = s.start()
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errExitedAtStart) || attempt == 3 {
			return nil, err
		}
	}
}

// command runs name as the server's user, killed if the test binary dies.
// The parent-death signal strictly follows the OS thread that started the
// process; Go ends a thread only when a goroutine exits while locked to it
// (runtime.LockOSThread), which nothing that starts servers here does.
func (s *PostgresServer) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	return cmd
}

func (s *PostgresServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := s.command(filepath.Join(s.bin, "postgres"),
		"-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(s.Port),
		"-k", s.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
		"-c", "shared_buffers=32MB",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.AdminURL())
		if err == nil {
			conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("postgres %w:\n%s", errExitedAtStart, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after 60s: %v\n%s", err, s.logTail())
		}
	}
}

func (s *PostgresServer) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	cmd, done := s.cmd, s.done
	s.cmd = nil
	if stopProcess(cmd, done, syscall.SIGINT, 20*time.Second) { // SIGINT: fast shutdown
		return fmt.Errorf("postgres did not shut down in 20s; killed\n%s", s.logTail())
	}
	return nil
}

func (s *PostgresServer) logTail() string {
	return serverLogTail(filepath.Join(s.dir, "postgres.log"))
}

// postgresBinDir finds the dir with initdb and postgres: the newest
// Debian install under /usr/lib/postgresql, else PATH.
func postgresBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExecutable(filepath.Join(d, "postgres")) {
			return d
		}
	}
	return ""
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

var dbCounter atomic.Int64

// createDatabase creates a uniquely named database on the server of
// adminURL and returns adminURL pointing at it.
func createDatabase(adminURL string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("want a postgres:// URL, got %q", redactURL(adminURL))
	}
	name := fmt.Sprintf("edgeapp_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, dbCounter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", redactURL(adminURL), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func dropDatabase(adminURL, dbURL string) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	conn.Exec(ctx, "DROP DATABASE IF EXISTS "+strings.TrimPrefix(u.Path, "/")+" WITH (FORCE)")
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// errExitedAtStart is a server that exited before it was ready: on a fresh
// port, most often because the port was taken in between.
var errExitedAtStart = errors.New("exited at start")

// pickLoopbackPort returns a TCP port that was free on 127.0.0.1 a moment
// ago. A server started on it right away almost always gets it; one that
// needs the port again after a restart keeps it because nothing else here
// binds fixed ports.
func pickLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pgTempBase is where cluster dirs go: the usual temp dir, unless the
// server runs as another user who could not reach it (TMPDIR under
// /root, say), in which case /tmp.
func pgTempBase(otherUser bool) string {
	base := os.TempDir()
	if !otherUser {
		return base
	}
	for p := base; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if p == filepath.Dir(p) {
			return base
		}
	}
}

// reapDeadDirs removes dirs in base named prefix<pid>-* whose test binary
// (pid) is gone: the servers in them died with it (parent-death signal)
// and nothing else would ever remove them.
func reapDeadDirs(base, prefix string) {
	dirs, _ := filepath.Glob(filepath.Join(base, prefix+"*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), prefix)
		pid, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, '-'), 0)])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // still running
		}
		os.RemoveAll(d)
	}
}
