// Command app is the API server: contact submissions and documents,
// searchable, behind the edge. Configuration comes from environment
// variables (see config.go and README.md).
//
// Usage:
//
//	app [serve]   run the API (the default)
//	app migrate   open the database, applying its migrations, and exit
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"selfhost.dev/edgeapp/app"
	apphttp "selfhost.dev/edgeapp/app/http"
)

// shutdownGrace bounds how long in-flight requests and the running outbox
// job get to finish on SIGTERM.
const shutdownGrace = 20 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(1)
	}
}

const usage = `usage: app [serve|migrate]
  serve    run the API server (the default)
  migrate  apply database migrations and exit
Configuration is read from environment variables; see README.md.`

// run is main without the process: it returns when ctx is cancelled (by
// SIGTERM or SIGINT) after a graceful shutdown, or on a fatal error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	if len(args) > 1 {
		return fmt.Errorf("%s takes no arguments\n%s", cmd, usage)
	}
	switch cmd {
	case "serve", "migrate":
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}

	cfg, err := parseConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	logger := slog.New(slog.NewJSONHandler(stdout, nil))

	if cmd == "migrate" {
		// Migrations run when the store first reaches its server. Open
		// tolerates a server that is down (so serve can start), so Ping
		// here: migrate must fail, not report success, when nothing ran.
		store, err := openStore(ctx, cfg, logger)
		if err != nil {
			return fmt.Errorf("open database: %w", err)
		}
		if err := store.Ping(ctx); err != nil {
			store.Close()
			return fmt.Errorf("migrate: %w", err)
		}
		logger.Info("migrations applied")
		return store.Close()
	}
	return serve(ctx, cfg, logger)
}

func serve(ctx context.Context, cfg *Config, logger *slog.Logger) error {
	logger.Info("starting", "config", cfg)
	if cfg.AdminAPIKey == "" {
		logger.Warn("ADMIN_API_KEY is not set: DELETE /documents/{id} and GET /contacts refuse every request")
	}
	if len(cfg.NotifyTo) == 0 {
		logger.Warn("NOTIFY_EMAIL_TO is not set: no contact notifications are sent")
	}

	b, err := openBackends(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := b.close(); err != nil {
			logger.Error("close backends", "error", err)
		}
	}()

	reg := apphttp.NewRegistry()
	worker := &app.Worker{
		Store: b.store, Blobs: b.blobs, Index: b.index, Mailer: b.mailer, Extractor: b.extractor,
		NotifyFrom: cfg.NotifyFrom, NotifyTo: cfg.NotifyTo,
		Logger:  logger.With("component", "outbox"),
		Metrics: app.NewWorkerMetrics(reg),
		TempDir: os.TempDir(),

		Lease: cfg.Outbox.Lease, Heartbeat: cfg.Outbox.Heartbeat, PollInterval: cfg.Outbox.PollInterval,
	}
	if cfg.DatabaseURL == "" {
		release, owned, err := lockOwner(filepath.Join(cfg.DataDir, "app.db.owner"))
		switch {
		case err != nil:
			return err
		case owned:
			defer release()
			worker.Reclaim = true // alone on the database: leases found at start are a crash's
		default:
			logger.Warn("another process serves this DATA_DIR: outbox jobs a crash left leased come back when their lease ends (OUTBOX_LEASE), not at start")
		}
	}
	svc := &app.Service{
		Store: b.store, Blobs: b.blobs, Index: b.index, Mailer: b.mailer,
		MaxUploadBytes: cfg.MaxUploadBytes,
		Kick:           worker.Kick,
	}
	api := &apphttp.Server{
		Service: svc, PublicKey: cfg.PublicAPIKey, AdminKey: cfg.AdminAPIKey,
		Logger: logger, Metrics: apphttp.NewMetrics(reg),
	}

	apiLn, err := net.Listen("tcp", cfg.AppAddr)
	if err != nil {
		return fmt.Errorf("listen on APP_ADDR: %w", err)
	}
	metricsLn, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("listen on METRICS_ADDR: %w", err)
	}
	errorLog := slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	apiSrv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          errorLog,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	metricsSrv := &http.Server{
		Handler:           apphttp.MetricsHandler(reg),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          errorLog,
	}

	worker.Start(ctx)
	serveErr := make(chan error, 2)
	go func() { serveErr <- apiSrv.Serve(apiLn) }()
	go func() { serveErr <- metricsSrv.Serve(metricsLn) }()
	logger.Info("listening", "addr", apiLn.Addr().String(), "metrics_addr", metricsLn.Addr().String())

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-serveErr:
		runErr = fmt.Errorf("serve: %w", err)
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	// Requests first, so that nothing queues new jobs; then the worker,
	// which finishes the job it is running.
	if err := apiSrv.Shutdown(sctx); err != nil {
		logger.Error("shutdown API listener", "error", err)
	}
	if err := metricsSrv.Shutdown(sctx); err != nil {
		logger.Error("shutdown metrics listener", "error", err)
	}
	if err := worker.Stop(sctx); err != nil {
		logger.Error("stop outbox worker", "error", err)
	}
	if runErr != nil && !errors.Is(runErr, http.ErrServerClosed) {
		return runErr
	}
	logger.Info("stopped")
	return nil
}
