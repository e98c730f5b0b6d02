package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"selfhost.dev/edgeapp/app"
)

// DoneJobRetention is how long a done job's row is kept: long enough to
// see what the outbox did lately, short enough that the table stays small.
const DoneJobRetention = 7 * 24 * time.Hour

// pruneEvery is how often ClaimJobs, which the worker calls all the time,
// also prunes done jobs.
const pruneEvery = time.Hour

// ClaimJobs leases up to n due jobs, oldest first. FOR UPDATE SKIP LOCKED
// lets instances claiming at the same moment each take different rows
// instead of queueing behind one another; the lease (leased_until, on the
// database's clock so that instances' clocks need not agree) hides a job
// from other claims until it expires, when a dead worker's job comes back.
func (db *DB) ClaimJobs(ctx context.Context, n int, lease time.Duration) ([]*app.Job, error) {
	if n <= 0 {
		return nil, nil
	}
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	if last := db.lastPrune.Load(); time.Since(time.Unix(0, last)) > pruneEvery &&
		db.lastPrune.CompareAndSwap(last, time.Now().UnixNano()) {
		if _, err := db.PruneDoneJobs(ctx, DoneJobRetention); err != nil {
			return nil, err
		}
	}
	rows, err := db.pool.Query(ctx, `UPDATE jobs
		SET attempts = attempts + 1, leased_until = now() + make_interval(secs => $2)
		WHERE id IN (
			SELECT id FROM jobs
			WHERE done_at IS NULL AND run_at <= now() AND (leased_until IS NULL OR leased_until <= now())
			ORDER BY run_at, id
			LIMIT $1
			FOR UPDATE SKIP LOCKED
		)
		RETURNING id, kind, payload, attempts, run_at, last_error`, n, lease.Seconds())
	if err != nil {
		return nil, dbError("claim jobs", err)
	}
	defer rows.Close()
	var jobs []*app.Job
	for rows.Next() {
		j := new(app.Job)
		var payload []byte
		if err := rows.Scan(&j.ID, &j.Kind, &payload, &j.Attempts, &j.RunAt, &j.LastError); err != nil {
			return nil, dbError("claim jobs", err)
		}
		j.Payload = payload
		j.RunAt = j.RunAt.UTC()
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("claim jobs", err)
	}
	// RETURNING does not keep the subquery's order.
	slices.SortFunc(jobs, func(a, b *app.Job) int {
		if c := a.RunAt.Compare(b.RunAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return jobs, nil
}

// CompleteJob marks the job done, or returns ENOTFOUND if it already is
// (another instance finished it after this one's lease ran out) or never
// existed.
func (db *DB) CompleteJob(ctx context.Context, id int64) error {
	if err := db.ready(ctx); err != nil {
		return err
	}
	tag, err := db.pool.Exec(ctx, `UPDATE jobs SET done_at = now(), leased_until = NULL
		WHERE id = $1 AND done_at IS NULL`, id)
	if err != nil {
		return dbError("complete job", err)
	}
	if tag.RowsAffected() == 0 {
		return app.Errorf(app.ENOTFOUND, "job %d not found or already done", id)
	}
	return nil
}

// RetryJob ends the job's lease and makes it due again at runAt.
func (db *DB) RetryJob(ctx context.Context, id int64, runAt time.Time, lastErr string) error {
	if err := db.ready(ctx); err != nil {
		return err
	}
	tag, err := db.pool.Exec(ctx, `UPDATE jobs SET run_at = $2, last_error = $3, leased_until = NULL
		WHERE id = $1 AND done_at IS NULL`, id, runAt, lastErr)
	if err != nil {
		return dbError("retry job", err)
	}
	if tag.RowsAffected() == 0 {
		return app.Errorf(app.ENOTFOUND, "job %d not found or already done", id)
	}
	return nil
}

// RenewLease extends a held lease to now()+lease, on the database's clock
// like ClaimJobs; see app.JobStore.
func (db *DB) RenewLease(ctx context.Context, id int64, attempts int, lease time.Duration) error {
	if err := db.ready(ctx); err != nil {
		return err
	}
	tag, err := db.pool.Exec(ctx, `UPDATE jobs SET leased_until = now() + make_interval(secs => $3)
		WHERE id = $1 AND attempts = $2 AND done_at IS NULL AND leased_until IS NOT NULL`, id, attempts, lease.Seconds())
	if err != nil {
		return dbError("renew job lease", err)
	}
	if tag.RowsAffected() == 0 {
		return app.Errorf(app.ENOTFOUND, "job %d is no longer held by this claim (claimed again, released or done)", id)
	}
	return nil
}

// ReclaimJobs ends every lease; see app.JobStore. With several instances
// on one database it would hand a live instance's jobs to another, so the
// app never calls it on PostgreSQL: there, short leases and the worker's
// heartbeat bring a dead instance's jobs back.
func (db *DB) ReclaimJobs(ctx context.Context) (int, error) {
	if err := db.ready(ctx); err != nil {
		return 0, err
	}
	tag, err := db.pool.Exec(ctx, `UPDATE jobs SET leased_until = NULL WHERE done_at IS NULL AND leased_until IS NOT NULL`)
	if err != nil {
		return 0, dbError("reclaim jobs", err)
	}
	return int(tag.RowsAffected()), nil
}

// PruneDoneJobs deletes the jobs done more than olderThan ago and returns
// how many it deleted.
func (db *DB) PruneDoneJobs(ctx context.Context, olderThan time.Duration) (int64, error) {
	tag, err := db.pool.Exec(ctx, "DELETE FROM jobs WHERE done_at < now() - make_interval(secs => $1)", olderThan.Seconds())
	if err != nil {
		return 0, dbError("prune done jobs", err)
	}
	return tag.RowsAffected(), nil
}

// PendingJobs counts the jobs not yet done.
func (db *DB) PendingJobs(ctx context.Context) (int, error) {
	if err := db.ready(ctx); err != nil {
		return 0, err
	}
	var n int
	err := db.pool.QueryRow(ctx, "SELECT count(*) FROM jobs WHERE done_at IS NULL").Scan(&n)
	return n, dbError("count pending jobs", err)
}

// inTx runs fn in a transaction, committing if it returns nil.
func (db *DB) inTx(ctx context.Context, op string, fn func(pgx.Tx) error) error {
	if err := db.ready(ctx); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, db.pool, fn)
	return dbError(op, err)
}

// insertJobs stores jobs in tx in one round trip, setting their ID and
// RunAt. A payload whose idKey is 0 gets id (app.SetRowID): the row the
// jobs follow has no id until it is inserted in the same transaction.
func insertJobs(ctx context.Context, tx pgx.Tx, jobs []*app.Job, idKey string, id int64) error {
	if len(jobs) == 0 {
		return nil
	}
	if err := app.SetRowID(jobs, idKey, id); err != nil {
		return err
	}
	var batch pgx.Batch
	for _, j := range jobs {
		if len(j.Payload) == 0 {
			j.Payload = json.RawMessage("{}")
		}
		batch.Queue(`INSERT INTO jobs (kind, payload, run_at) VALUES ($1, $2, coalesce($3, now()))
			RETURNING id, run_at`, j.Kind, string(j.Payload), nullTime(j.RunAt)).QueryRow(func(row pgx.Row) error {
			if err := row.Scan(&j.ID, &j.RunAt); err != nil {
				return err
			}
			j.RunAt = j.RunAt.UTC()
			return nil
		})
	}
	return tx.SendBatch(ctx, &batch).Close()
}
