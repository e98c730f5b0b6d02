package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ProcSpec says how to start one server.
type ProcSpec struct {
	Name string
	Argv []string
	Env  []string // added to the harness's environment
	Port int      // the server is up once 127.0.0.1:Port accepts
	Pin  string   // taskset CPU list, or "" to leave it unpinned
	Dir  string   // where its stdout and stderr files go
	// Stdout, if set, is the file stdout goes to (HAProxy's access log).
	Stdout string
}

// Proc is a server the harness started, in its own process group.
type Proc struct {
	Name string
	Port int
	Pid  int
	// Admin is the edge's admin port (0 for the others).
	Admin int
	cmd   *exec.Cmd
	done  chan struct{}
	errf  string
}

// StartProc starts spec and waits up to 20 s for its port to accept.
func StartProc(ctx context.Context, spec ProcSpec) (*Proc, error) {
	argv := spec.Argv
	if spec.Pin != "" {
		// taskset execs the server, so the pid is the server's and every
		// thread and child it makes inherits the mask.
		argv = append([]string{"taskset", "-c", spec.Pin}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), spec.Env...)
	outPath := spec.Stdout
	if outPath == "" {
		outPath = filepath.Join(spec.Dir, spec.Name+".stdout")
	}
	errPath := filepath.Join(spec.Dir, spec.Name+".stderr")
	stdout, err := os.Create(outPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	defer stdout.Close()
	stderr, err := os.Create(errPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A group of its own lets Stop reach nginx's workers; Pdeathsig stops
	// the servers if the harness itself is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p := &Proc{Name: spec.Name, Port: spec.Port, Pid: cmd.Process.Pid, cmd: cmd, done: make(chan struct{}), errf: errPath}
	go func() { cmd.Wait(); close(p.done) }()
	if err := p.waitPort(ctx, 20*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitPort polls the port until it accepts, the process exits or the time is up.
func (p *Proc) waitPort(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	addr := "127.0.0.1:" + strconv.Itoa(p.Port)
	for time.Now().Before(deadline) {
		if p.Exited() {
			return fmt.Errorf("%s exited at start: %s", p.Name, p.StderrTail())
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: port %d not open after %v: %s", p.Name, p.Port, limit, p.StderrTail())
}

// StderrTail returns the last lines the process wrote to stderr.
func (p *Proc) StderrTail() string {
	b, _ := os.ReadFile(p.errf)
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}

// Signal sends sig to the process (not its group).
func (p *Proc) Signal(sig syscall.Signal) error {
	return syscall.Kill(p.Pid, sig)
}

// Stop sends SIGTERM to the process group, and SIGKILL if it has not ended
// after 5 s.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	syscall.Kill(-p.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.Pid, syscall.SIGKILL)
		<-p.done
	}
	// nginx's worker may outlive its master by a moment; it is in the group.
	syscall.Kill(-p.Pid, syscall.SIGKILL)
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// errSkip marks a target or scenario the harness could not run, with the reason.
var errSkip = errors.New("skipped")
