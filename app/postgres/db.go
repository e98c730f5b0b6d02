// Package postgres implements app.Store and app.SearchIndex on PostgreSQL
// with pgx: several app instances can share one database, starting at the
// same time (migrations run under an advisory lock) and sharing the outbox
// (jobs are claimed with FOR UPDATE SKIP LOCKED under a lease).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"selfhost.dev/edgeapp/app"
)

// backend names this adapter in app.Unavailable errors and /health/ready.
const backend = "database"

// DB is a PostgreSQL database holding the app's store and, for Index, its
// full-text search tables.
type DB struct {
	pool *pgxpool.Pool

	migrateMu sync.Mutex
	migrated  bool // guarded by migrateMu; read through ready

	lastPrune atomic.Int64 // unix nanoseconds of the last PruneDoneJobs by ClaimJobs
}

var _ app.Store = (*DB)(nil)

// Open connects to the database at url (postgres://user:pass@host:port/db)
// and applies the embedded migrations.
//
// If the server cannot be reached, Open still returns a DB so that the app
// can start and report the database as down on /health/ready; the
// migrations then run on the first call that reaches the server, and every
// call until then returns an EUNAVAILABLE error. Any other failure (a bad
// URL, wrong credentials, a migration that fails) is returned.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The message may contain the password: say only what is wrong.
		return nil, errors.New("postgres: invalid DATABASE_URL (want postgres://user:password@host:port/dbname)")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := &DB{pool: pool}
	if err := db.Migrate(ctx); err != nil && app.ErrorCode(err) != app.EUNAVAILABLE {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the connections.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping reports whether the server answers (and the schema is in place).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.ready(ctx); err != nil {
		return err
	}
	return dbError("ping", db.pool.Ping(ctx))
}

// ready runs the migrations if Open could not, so that a database that was
// down at start is usable once it is back.
func (db *DB) ready(ctx context.Context) error {
	db.migrateMu.Lock()
	done := db.migrated
	db.migrateMu.Unlock()
	if done {
		return nil
	}
	return db.Migrate(ctx)
}

// dbError wraps err, the failure of op, marking a server that cannot be
// reached (refused, reset, shutting down, starting up) as EUNAVAILABLE so
// that the HTTP layer answers 503 with Retry-After.
func dbError(op string, err error) error {
	if err == nil {
		return nil
	}
	var ae *app.Error
	if errors.As(err, &ae) {
		return err
	}
	if unreachable(err) {
		return app.Unavailable(backend, fmt.Errorf("%s: %w", op, err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

func unreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08": // connection exception
			return true
		case "57": // operator intervention: shutdown, cannot connect now
			return pgErr.Code != "57014" // query_canceled is the caller's doing
		case "53": // insufficient resources: too many connections, out of memory
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	// pgconn reports a connection it already knows to be broken with a
	// plain error; SafeToRetry marks those that never reached the server.
	return pgconn.SafeToRetry(err)
}
