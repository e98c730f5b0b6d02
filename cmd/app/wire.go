package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/extract"
	"selfhost.dev/edgeapp/app/fsblob"
	"selfhost.dev/edgeapp/app/logmail"
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

// openStore picks the database. Backend: SQLite in DATA_DIR (PostgreSQL
// when DATABASE_URL is set comes with the production backends).
// Migrations run at open.
func openStore(ctx context.Context, cfg *Config, logger *slog.Logger) (app.Store, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create DATA_DIR: %w", err)
	}
	path := filepath.Join(cfg.DataDir, "app.db")
	logger.Info("database: SQLite", "path", path)
	return sqlite.Open(ctx, path)
}

// openBlobs picks the blob store. Backend: files under DATA_DIR/blobs
// (S3/MinIO when S3_ENDPOINT is set comes with the production backends).
func openBlobs(ctx context.Context, cfg *Config, logger *slog.Logger) (app.BlobStore, error) {
	dir := filepath.Join(cfg.DataDir, "blobs")
	logger.Info("blob storage: local files", "dir", dir)
	return fsblob.New(dir)
}

// openIndex picks the search index. Backend: SQLite FTS5 in the SQLite
// store (Meilisearch when MEILI_URL is set, PostgreSQL full-text search
// with a PostgreSQL store, come with the production backends).
func openIndex(ctx context.Context, cfg *Config, store app.Store, logger *slog.Logger) (app.SearchIndex, error) {
	switch db := store.(type) {
	case *sqlite.DB:
		logger.Info("search: SQLite FTS5")
		return sqlite.NewIndex(db), nil
	default:
		return nil, fmt.Errorf("no built-in search for a %T store", store)
	}
}

// openMailer picks the mailer. Backend: one that logs each message (SES
// when SES_REGION is set, SMTP when SMTP_ADDR is set, come with the
// production backends).
func openMailer(ctx context.Context, cfg *Config, logger *slog.Logger) (app.Mailer, error) {
	logger.Info("mail: logged, not sent")
	return logmail.New(logger), nil
}
