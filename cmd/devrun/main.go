// Command devrun is what `make run` executes: it starts bin/app and
// bin/edge together on the embedded backends (SQLite, local files,
// built-in search, logged mail), generating the keys and the dashboard
// password that are not set in the environment, prints the URL to open
// and a curl line to try, and stops both on Ctrl-C or SIGTERM. If either
// exits on its own, it stops the other and exits non-zero.
//
//	devrun [-bin bin] [-data ./data] [-listen 127.0.0.1:8080] [-app 127.0.0.1:8000]
//	       [-metrics 127.0.0.1:9091] [-edge-admin 127.0.0.1:9180]
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long the children get to drain before being killed.
const stopGrace = 30 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devrun:", err)
		os.Exit(1)
	}
}

// options are devrun's flags.
type options struct {
	bin, data                       string
	listen, app, metrics, edgeAdmin string
}

// secrets are the credentials of the run, from the environment or made up.
type secrets struct {
	publicKey, adminKey, adminPassword, adminHash string
	generated                                     map[string]bool
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.bin, "bin", "bin", "directory holding the app and edge binaries")
	fs.StringVar(&o.data, "data", "./data", "DATA_DIR of the app, also where the generated routes file goes")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "the edge's public address")
	fs.StringVar(&o.app, "app", "127.0.0.1:8000", "the app's address (APP_ADDR)")
	fs.StringVar(&o.metrics, "metrics", "127.0.0.1:9091", "the app's metrics address (METRICS_ADDR)")
	fs.StringVar(&o.edgeAdmin, "edge-admin", "127.0.0.1:9180", "the edge's admin address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	appBin, edgeBin := filepath.Join(o.bin, "app"), filepath.Join(o.bin, "edge")
	for _, b := range []string{appBin, edgeBin} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%s is missing: run `make build` first", b)
		}
	}
	// Before anything is made or printed: a second `make run` must not
	// print keys that the first run's edge, still on the port, would
	// refuse.
	if err := checkPortsFree(o); err != nil {
		return err
	}
	if err := os.MkdirAll(o.data, 0o750); err != nil {
		return err
	}

	s, err := makeSecrets(ctx, edgeBin, getenv)
	if err != nil {
		return err
	}
	routes := filepath.Join(o.data, "devrun-routes.yaml")
	if err := os.WriteFile(routes, []byte(routesYAML(o)), 0o640); err != nil {
		return fmt.Errorf("write %s: %w", routes, err)
	}

	env := os.Environ()
	app := command(appBin, nil, appEnvironment(env, o, s, getenv), stdout, stderr)
	edge := command(edgeBin, []string{"run", "-config", routes}, append(env, "EDGE_ADMIN_HASH="+s.adminHash), stdout, stderr)

	if err := app.Start(); err != nil {
		return fmt.Errorf("start app: %w", err)
	}
	exited := make(chan string, 2)
	go func() { app.Wait(); exited <- "app" }()
	if err := edge.Start(); err != nil {
		stopAll(exited, 1, app)
		return fmt.Errorf("start edge: %w", err)
	}
	go func() { edge.Wait(); exited <- "edge" }()
	fmt.Fprintf(stdout, "devrun: started app (pid %d) and edge (pid %d)\n", app.Process.Pid, edge.Process.Pid)

	url := "http://" + browsable(o.listen) + "/"
	ready := make(chan error, 1)
	go func() { ready <- waitReady(ctx, url+"health") }()
	select {
	case err := <-ready:
		if err != nil && ctx.Err() == nil {
			stopAll(exited, 2, app, edge)
			return fmt.Errorf("not ready: %w", err)
		}
		if err == nil {
			printBanner(stdout, url, s)
		}
	case name := <-exited:
		stopAll(exited, 1, app, edge)
		return fmt.Errorf("%s exited during start-up", name)
	}

	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "devrun: stopping app and edge")
		stopAll(exited, 2, app, edge)
		return nil
	case name := <-exited:
		fmt.Fprintf(stderr, "devrun: %s exited; stopping the other\n", name)
		stopAll(exited, 1, app, edge)
		return fmt.Errorf("%s exited", name)
	}
}

// appEnvironment is the app's environment: devrun's, plus the addresses,
// the data directory and the keys of this run. Notifications go to
// NOTIFY_EMAIL_TO, else SES_TO_EMAIL (as the app itself reads them), else
// to admin@localhost, so that the log mailer shows each one.
func appEnvironment(env []string, o options, s *secrets, getenv func(string) string) []string {
	out := append(env[:len(env):len(env)],
		"APP_ADDR="+o.app, "METRICS_ADDR="+o.metrics, "DATA_DIR="+o.data,
		"PUBLIC_API_KEY="+s.publicKey, "ADMIN_API_KEY="+s.adminKey)
	if getenv("NOTIFY_EMAIL_TO") == "" && getenv("SES_TO_EMAIL") == "" {
		out = append(out, "NOTIFY_EMAIL_TO=admin@localhost")
	}
	return out
}

// checkPortsFree fails, naming the address and its flag, if any address of
// the run is already taken: most often by a `make run` still running.
func checkPortsFree(o options) error {
	for _, a := range []struct{ flag, addr string }{
		{"-listen", o.listen}, {"-app", o.app}, {"-metrics", o.metrics}, {"-edge-admin", o.edgeAdmin},
	} {
		ln, err := net.Listen("tcp", a.addr)
		if err != nil {
			return fmt.Errorf("%s is taken (%v): is another `make run` still running? Stop it, or choose another address with %s", a.addr, err, a.flag)
		}
		ln.Close()
	}
	return nil
}

// command prepares a child in its own process group, so that a Ctrl-C
// reaches devrun alone and the children stop in order, on devrun's signal.
func command(bin string, args, env []string, stdout, stderr io.Writer) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = sysProcAttr()
	return cmd
}

// stopAll sends SIGTERM to the children still running, waits for the
// remaining n exits (as reported on exited), and kills what is left after
// stopGrace.
func stopAll(exited <-chan string, n int, cmds ...*exec.Cmd) {
	for _, c := range cmds {
		c.Process.Signal(syscall.SIGTERM)
	}
	timeout := time.After(stopGrace)
	for range n {
		select {
		case <-exited:
		case <-timeout:
			for _, c := range cmds {
				c.Process.Kill()
			}
			timeout = nil
			<-exited
		}
	}
}

// makeSecrets takes the keys and the dashboard password from the
// environment, making up those that are missing, and hashes the password
// with `edge hash-password` unless EDGE_ADMIN_HASH is given.
func makeSecrets(ctx context.Context, edgeBin string, getenv func(string) string) (*secrets, error) {
	s := &secrets{generated: map[string]bool{}}
	pick := func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		s.generated[name] = true
		return randomHex(16)
	}
	s.publicKey = pick("PUBLIC_API_KEY")
	s.adminKey = pick("ADMIN_API_KEY")
	s.adminHash = getenv("EDGE_ADMIN_HASH")
	if s.adminHash != "" {
		return s, nil
	}
	s.adminPassword = pick("EDGE_ADMIN_PASSWORD")
	cmd := exec.CommandContext(ctx, edgeBin, "hash-password")
	cmd.Stdin = strings.NewReader(s.adminPassword + "\n")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("edge hash-password: %w", err)
	}
	s.adminHash = strings.TrimSpace(string(out))
	return s, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// routesYAML is the edge configuration of a development run: the app at
// /, and the app's metrics at /metrics behind the dashboard password, so
// that Basic Auth can be tried too. The hash comes from the environment.
func routesYAML(o options) string {
	return fmt.Sprintf(`# Generated by devrun for `+"`make run`"+`; rewritten at each start.
listen: %q
admin: %q
access_log: stdout
users:
  admins:
    - { user: admin, hash: "${EDGE_ADMIN_HASH}" }
routes:
  - { path: /metrics, to: "http://%s", auth: admins }
  - { path: /, to: "http://%s", max_body: 64MiB }
`, o.listen, o.edgeAdmin, o.metrics, o.app)
}

// browsable turns a listen address into one a browser can open.
func browsable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch host {
	case "", "0.0.0.0", "::", "127.0.0.1", "::1":
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// waitReady polls url until it answers 200 through the edge, which means
// both processes are up.
func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.Join(errors.New("no answer within 60s"), last)
}

func printBanner(w io.Writer, url string, s *secrets) {
	show := func(name, value string) string {
		if s.generated[name] {
			return value + "   (generated; set " + name + " to choose)"
		}
		return "(from " + name + ")"
	}
	key := s.publicKey
	if !s.generated["PUBLIC_API_KEY"] {
		key = "$PUBLIC_API_KEY"
	}
	fmt.Fprintf(w, `
  edge + app are running on the embedded backends. Ctrl-C stops both.

  open       %s
  API key    %s
  admin key  %s
`, url, show("PUBLIC_API_KEY", s.publicKey), show("ADMIN_API_KEY", s.adminKey))
	if s.adminPassword != "" {
		fmt.Fprintf(w, "  dashboards user admin, password %s\n             app metrics at %smetrics\n", show("EDGE_ADMIN_PASSWORD", s.adminPassword), url)
	}
	fmt.Fprintf(w, `
  This run routes / (the app) and /metrics only. /grafana, /prometheus,
  /alertmanager and /minio are routed by the full stack's routes.yaml
  (docker compose up), not here.
`)
	fmt.Fprintf(w, `
  try:
  curl -sS -X POST %scontact -H "X-API-Key: %s" -H "Content-Type: application/json" -d '{"name":"Ada","email":"ada@example.com","message":"Hello"}'

`, url, key)
}
