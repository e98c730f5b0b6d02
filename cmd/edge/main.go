// Command edge is the single public port of the stack: a reverse proxy that
// routes by path, guards dashboards with Basic Auth and reloads its routes
// on SIGHUP.
//
//	edge [run] [-config routes.yaml] [-pidfile path]  serve (the default)
//	edge upgrade [-config routes.yaml] replace the running edge by the binary at its path
//	edge validate [-config routes.yaml] check a file: "valid", or every error with its line
//	edge hash-password [-cost N]        read a password (stdin or prompt), print its bcrypt hash
//	edge version
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"

	"selfhost.dev/edgeapp/edge"
)

// version is set with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return serve(args, stderr)
	case "validate":
		return validate(args, stdout, stderr)
	case "upgrade":
		return upgrade(args, stdout, stderr)
	case "hash-password":
		return hashPassword(args, stdin, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "edge: unknown command %q\n", cmd)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  edge [run] [-config routes.yaml] [-pidfile path]
                                       serve; SIGHUP reloads, SIGUSR2 upgrades the binary,
                                       SIGTERM/SIGINT drain and stop
  edge upgrade [-config routes.yaml]   ask the running edge (its admin port) to replace itself
                                       by the binary at its path, without dropping a connection
  edge validate [-config routes.yaml]  print "valid", or every error with its line (exit 1)
  edge hash-password [-cost N]         read a password from stdin (or a prompt), print a bcrypt hash
  edge version
`)
}

func versionString() string {
	if version != "" {
		return "edge " + version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return "edge " + bi.Main.Version
	}
	return "edge dev"
}

func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	path, _, ok := configFlags(name, args, stderr)
	return path, ok
}

// configFlags parses -config and, for run, -pidfile.
func configFlags(name string, args []string, stderr io.Writer) (path, pidfile string, ok bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&path, "config", "routes.yaml", "the routes file")
	if name == "run" {
		fs.StringVar(&pidfile, "pidfile", "", "write the PID of the serving process here (rewritten by each upgrade)")
	}
	if err := fs.Parse(args); err != nil {
		return "", "", false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "edge %s: unexpected argument %q\n", name, fs.Arg(0))
		return "", "", false
	}
	return path, pidfile, true
}

func validate(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("validate", args, stderr)
	if !ok {
		return 2
	}
	if _, err := edge.LoadFile(path, os.LookupEnv); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "valid")
	return 0
}

func serve(args []string, stderr io.Writer) int {
	path, pidfile, ok := configFlags("run", args, stderr)
	if !ok {
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	load := func() (*edge.Config, error) { return edge.LoadFile(path, os.LookupEnv) }
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := edge.RegisterBuildInfo(reg, strings.TrimPrefix(versionString(), "edge ")); err != nil {
		logger.Error("start", "err", err)
		return 1
	}
	// Only now, with routes.yaml valid: a new binary started by an upgrade
	// that cannot load it exits here, and the old process keeps serving.
	upg, err := edge.NewUpgrader(edge.UpgraderOptions{Logger: logger, PIDFile: pidfile})
	if err != nil {
		logger.Error("start", "err", err)
		return 1
	}
	defer upg.Stop()
	srv, err := edge.New(cfg, edge.Options{Logger: logger, Registry: reg, Load: load,
		Listen: upg.Listen, Ready: upg.Ready, Upgrade: upg.Upgrade})
	if err != nil {
		logger.Error("start", "err", err)
		return 1
	}
	go func() {
		<-upg.Exit() // a new process serves (or we are stopping)
		srv.Handover()
	}()
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	go func() {
		for range usr2 {
			_ = upg.Upgrade(context.Background()) // logged by Upgrade
		}
	}()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			_ = srv.Reload() // logged and counted by Reload
		}
	}()
	logger.Info("starting", "version", versionString(), "pid", os.Getpid(), "config", path, "routes", srv.Routes())
	if err := srv.ListenAndServe(ctx); err != nil {
		logger.Error("serve", "err", err)
		return 1
	}
	return 0
}

// upgrade asks the edge serving cfg's admin port to replace itself.
func upgrade(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("upgrade", args, stderr)
	if !ok {
		return 2
	}
	cfg, err := edge.LoadFile(path, os.LookupEnv)
	if err != nil {
		// The new process would refuse it too: say so before trying.
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cfg.Admin == "off" {
		fmt.Fprintln(stderr, "edge upgrade: the admin port is off; send SIGUSR2 to the edge instead")
		return 1
	}
	host, port, _ := net.SplitHostPort(cfg.Admin)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+net.JoinHostPort(host, port)+"/-/upgrade", nil)
	if err != nil {
		fmt.Fprintln(stderr, "edge upgrade:", err)
		return 1
	}
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "edge upgrade:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "edge upgrade: %s\n%s", resp.Status, body)
		return 1
	}
	_, _ = stdout.Write(body)
	return 0
}

func hashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cost := fs.Int("cost", bcrypt.DefaultCost, "bcrypt cost, 4 to 16 (the edge refuses slower hashes)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cost < bcrypt.MinCost || *cost > 16 {
		fmt.Fprintln(stderr, "edge hash-password: -cost must be 4 to 16")
		return 2
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "edge hash-password:", err)
		return 1
	}
	hash, err := bcrypt.GenerateFromPassword(pw, *cost)
	if err != nil {
		fmt.Fprintln(stderr, "edge hash-password:", err)
		return 1
	}
	fmt.Fprintln(stdout, string(hash))
	return 0
}

// readPassword prompts without echo on a terminal, else reads one line.
func readPassword(stdin io.Reader, stderr io.Writer) ([]byte, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		fmt.Fprint(stderr, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		if string(pw) != string(again) {
			return nil, errors.New("the passwords differ")
		}
		return checkPassword(pw)
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return checkPassword([]byte(strings.TrimRight(line, "\r\n")))
}

func checkPassword(pw []byte) ([]byte, error) {
	switch {
	case len(pw) == 0:
		return nil, errors.New("empty password")
	case len(pw) > 72:
		return nil, errors.New("password longer than 72 bytes (bcrypt's limit)")
	}
	return pw, nil
}
