// Command edgeprof is cmd/edge's "run" with a CPU profile: the same
// package edge server, metrics registry and access log, written so that the
// harness's -profile step can say where the edge's CPU goes under
// scenario 1's load. The profile is written when SIGTERM or SIGINT stops it.
//
//	edgeprof -config routes.yaml -cpuprofile edge-cpu.pprof
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"selfhost.dev/edgeapp/edge"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "edgeprof:", err)
		os.Exit(1)
	}
}

func run() error {
	path := flag.String("config", "routes.yaml", "the routes file")
	out := flag.String("cpuprofile", "edge-cpu.pprof", "where the CPU profile goes")
	flag.Parse()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := edge.LoadFile(*path, os.LookupEnv)
	if err != nil {
		return err
	}
	// The same collectors as cmd/edge, so the profile holds what users run.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := edge.New(cfg, edge.Options{Logger: logger, Registry: reg})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	f, err := os.Create(*out)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	serveErr := srv.ListenAndServe(ctx)
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return serveErr
}
