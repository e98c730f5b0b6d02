package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// migrations are the schema's versions, NNNN_name.sql, applied in order.
// A released file is never edited: a change is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the pg_advisory_lock key that serialises migrations
// between app instances starting at the same time ("edgeapp" in ASCII).
const migrationLock int64 = 0x6564676561707000

type migration struct {
	version int
	name    string
	sql     string
}

// Migrate brings the schema up to date: it applies, each in its own
// transaction, the embedded migrations newer than the version recorded in
// schema_version. It holds an advisory lock meanwhile, so instances that
// start together apply each migration once and the others wait for it.
// A database newer than this binary is left alone.
func (db *DB) Migrate(ctx context.Context) error {
	db.migrateMu.Lock()
	defer db.migrateMu.Unlock()
	if db.migrated {
		return nil
	}
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return dbError("migrate: connect", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return dbError("migrate: lock", err)
	}
	// The lock belongs to the session: release it on the same connection,
	// even if ctx is done, or the next instance would wait forever.
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock)

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return dbError("migrate: create schema_version", err)
	}
	var current int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_version").Scan(&current); err != nil {
		return dbError("migrate: read schema_version", err)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return dbError("migrate: begin", err)
		}
		_, err = tx.Exec(ctx, m.sql)
		if err == nil {
			_, err = tx.Exec(ctx, "INSERT INTO schema_version (version, name) VALUES ($1, $2)", m.version, m.name)
		}
		if err == nil {
			err = tx.Commit(ctx)
		}
		if err != nil {
			tx.Rollback(ctx)
			return dbError(fmt.Sprintf("migrate: apply %s", m.name), err)
		}
	}
	db.migrated = true
	return nil
}

// SchemaVersion returns the version of the newest migration applied.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_version").Scan(&v)
	return v, dbError("read schema version", err)
}

func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, path := range names {
		name := strings.TrimPrefix(path, "migrations/")
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migrate: %s: name must be NNNN_name.sql", name)
		}
		b, err := migrations.ReadFile(path)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrate: %s and %s have the same version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}
