package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/extract"
	"selfhost.dev/edgeapp/app/fsblob"
	"selfhost.dev/edgeapp/app/logmail"
	"selfhost.dev/edgeapp/app/meili"
	"selfhost.dev/edgeapp/app/postgres"
	"selfhost.dev/edgeapp/app/s3"
	"selfhost.dev/edgeapp/app/ses"
	"selfhost.dev/edgeapp/app/smtp"
	"selfhost.dev/edgeapp/app/sqlite"
)

// backends are the adapters the configuration selects. Only this file
// knows the adapter packages; everything else sees app's interfaces.
type backends struct {
	store     app.Store
	blobs     app.BlobStore
	index     app.SearchIndex
	mailer    app.Mailer
	extractor app.TextExtractor
	closers   []func() error // run in reverse order by close
}

// openBackends opens every backend, or none: on error, those already open
// are closed.
func openBackends(ctx context.Context, cfg *Config, logger *slog.Logger) (b *backends, err error) {
	b = &backends{extractor: extract.New()}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if b.store, err = openStore(ctx, cfg, logger); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	b.closers = append(b.closers, b.store.Close)
	if b.blobs, err = openBlobs(ctx, cfg, logger); err != nil {
		return nil, fmt.Errorf("open blob storage: %w", err)
	}
	if b.index, err = openIndex(ctx, cfg, b.store, logger); err != nil {
		return nil, fmt.Errorf("open search: %w", err)
	}
	if b.mailer, err = openMailer(ctx, cfg, logger); err != nil {
		return nil, fmt.Errorf("open mailer: %w", err)
	}
	return b, nil
}

// close closes what openBackends opened, last first.
func (b *backends) close() error {
	var errs []error
	for i := len(b.closers) - 1; i >= 0; i-- {
		errs = append(errs, b.closers[i]())
	}
	b.closers = nil
	return errors.Join(errs...)
}

// openStore picks the database: PostgreSQL when DATABASE_URL is set, else
// SQLite in DATA_DIR. Migrations run at open; a PostgreSQL server that is
// down at start does not stop the app (see postgres.Open).
func openStore(ctx context.Context, cfg *Config, logger *slog.Logger) (app.Store, error) {
	if cfg.DatabaseURL != "" {
		logger.Info("database: PostgreSQL", "url", redactURL(cfg.DatabaseURL))
		db, err := postgres.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, err
		}
		warnIfDown(ctx, logger, "database", db)
		return db, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create DATA_DIR: %w", err)
	}
	path := filepath.Join(cfg.DataDir, "app.db")
	logger.Info("database: SQLite", "path", path)
	return sqlite.Open(ctx, path)
}

// openBlobs picks the blob store: S3/MinIO when S3_ENDPOINT is set (the
// bucket is created if missing, once the server answers), else files
// under DATA_DIR/blobs.
func openBlobs(ctx context.Context, cfg *Config, logger *slog.Logger) (app.BlobStore, error) {
	if cfg.S3.Endpoint != "" {
		logger.Info("blob storage: S3", "endpoint", cfg.S3.Endpoint, "bucket", cfg.S3.Bucket, "ssl", cfg.S3.UseSSL)
		blobs, err := s3.New(ctx, s3.Config{
			Endpoint: cfg.S3.Endpoint, AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey,
			Bucket: cfg.S3.Bucket, Region: cfg.S3.Region, UseSSL: cfg.S3.UseSSL,
		})
		if err != nil {
			return nil, err
		}
		warnIfDown(ctx, logger, "object storage", blobs)
		return blobs, nil
	}
	dir := filepath.Join(cfg.DataDir, "blobs")
	logger.Info("blob storage: local files", "dir", dir)
	return fsblob.New(dir)
}

// openIndex picks the search index: Meilisearch when MEILI_URL is set,
// else the store's own full-text search (PostgreSQL tsvector or SQLite
// FTS5).
func openIndex(ctx context.Context, cfg *Config, store app.Store, logger *slog.Logger) (app.SearchIndex, error) {
	if cfg.MeiliURL != "" {
		logger.Info("search: Meilisearch", "url", cfg.MeiliURL)
		index, err := meili.New(cfg.MeiliURL, cfg.MeiliMasterKey)
		if err != nil {
			return nil, err
		}
		warnIfDown(ctx, logger, "search", index)
		return index, nil
	}
	switch db := store.(type) {
	case *postgres.DB:
		logger.Info("search: PostgreSQL full-text search")
		return postgres.NewIndex(db), nil
	case *sqlite.DB:
		logger.Info("search: SQLite FTS5")
		return sqlite.NewIndex(db), nil
	default:
		return nil, fmt.Errorf("no built-in search for a %T store", store)
	}
}

// openMailer picks the mailer, first match wins: SES when SES_REGION is
// set, SMTP when SMTP_ADDR is set, else one that logs each message.
// (parseConfig refuses SES_REGION and SMTP_ADDR together.)
func openMailer(ctx context.Context, cfg *Config, logger *slog.Logger) (app.Mailer, error) {
	switch {
	case cfg.SESRegion != "":
		logger.Info("mail: Amazon SES", "region", cfg.SESRegion)
		m, err := ses.New(ctx, cfg.SESRegion, cfg.NotifyFrom)
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := m.CheckCredentials(cctx); err != nil {
			logger.Warn("mail: SES has no usable credentials; notifications wait in the outbox until it has: "+err.Error(), "region", cfg.SESRegion)
		}
		return m, nil
	case cfg.SMTPAddr != "":
		logger.Info("mail: SMTP", "addr", cfg.SMTPAddr, "auth", cfg.SMTPUser != "")
		return smtp.New(smtp.Config{Addr: cfg.SMTPAddr, User: cfg.SMTPUser, Password: cfg.SMTPPassword, From: cfg.NotifyFrom}), nil
	}
	logger.Info("mail: logged, not sent")
	return logmail.New(logger), nil
}

// warnIfDown logs a backend that cannot be reached at start. The app
// starts all the same (its adapter connects, migrates or creates its
// bucket or indexes once the server is back, and /health/ready names it
// meanwhile), but the operator should hear of it now.
func warnIfDown(ctx context.Context, logger *slog.Logger, name string, p app.Pinger) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.Ping(ctx); err != nil {
		logger.Warn(name+" is unreachable at start; requests that need it answer 503 until it is back", "error", err)
	}
}
