package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"selfhost.dev/edgeapp/app"
)

// insertJobs adds jobs to the outbox within tx, setting their IDs.
func insertJobs(ctx context.Context, tx *sql.Tx, jobs []*app.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx,
		`INSERT INTO jobs (kind, payload, run_at, created_at) VALUES (?, ?, ?, ?) RETURNING id`)
	if err != nil {
		return fmt.Errorf("insert jobs: %w", err)
	}
	defer stmt.Close()
	t := now()
	for _, j := range jobs {
		runAt := j.RunAt
		if runAt.IsZero() {
			runAt = t
		}
		payload := string(j.Payload)
		if payload == "" {
			payload = "null"
		}
		if err := stmt.QueryRowContext(ctx, j.Kind, payload, unixNano(runAt), unixNano(t)).Scan(&j.ID); err != nil {
			return fmt.Errorf("insert %s job: %w", j.Kind, err)
		}
		j.RunAt = runAt
	}
	return nil
}

// ClaimJobs leases up to n due jobs, oldest first, in one statement.
func (db *DB) ClaimJobs(ctx context.Context, n int, lease time.Duration) ([]*app.Job, error) {
	if n <= 0 {
		return nil, nil
	}
	t := unixNano(now())
	rows, err := db.write.QueryContext(ctx, `
		UPDATE jobs SET attempts = attempts + 1, locked_until = ?1
		WHERE id IN (
			SELECT id FROM jobs
			WHERE done_at IS NULL AND run_at <= ?2 AND (locked_until IS NULL OR locked_until <= ?2)
			ORDER BY run_at, id LIMIT ?3)
		RETURNING id, kind, payload, attempts, run_at, last_error`,
		t+int64(lease), t, n)
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	defer rows.Close()
	var jobs []*app.Job
	for rows.Next() {
		var j app.Job
		var payload string
		var runAt int64
		if err := rows.Scan(&j.ID, &j.Kind, &payload, &j.Attempts, &runAt, &j.LastError); err != nil {
			return nil, fmt.Errorf("claim jobs: %w", err)
		}
		j.Payload, j.RunAt = []byte(payload), fromUnixNano(runAt)
		jobs = append(jobs, &j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	// RETURNING follows no ORDER BY; restore the claim order.
	slices.SortFunc(jobs, func(a, b *app.Job) int {
		if c := a.RunAt.Compare(b.RunAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return jobs, nil
}

// CompleteJob marks a job done, or returns ENOTFOUND if it already is.
func (db *DB) CompleteJob(ctx context.Context, id int64) error {
	res, err := db.write.ExecContext(ctx,
		`UPDATE jobs SET done_at = ?, locked_until = NULL WHERE id = ? AND done_at IS NULL`, unixNano(now()), id)
	return settled(res, err, "complete job %d", id)
}

// RetryJob makes a job not yet done claimable again at runAt.
func (db *DB) RetryJob(ctx context.Context, id int64, runAt time.Time, lastErr string) error {
	res, err := db.write.ExecContext(ctx,
		`UPDATE jobs SET run_at = ?, locked_until = NULL, last_error = ? WHERE id = ? AND done_at IS NULL`,
		unixNano(runAt), lastErr, id)
	return settled(res, err, "retry job %d", id)
}

// settled checks that an update of one job found it not done.
func settled(res sql.Result, err error, format string, id int64) error {
	if err != nil {
		return fmt.Errorf(format+": %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf(format+": %w", id, err)
	}
	if n == 0 {
		return app.Errorf(app.ENOTFOUND, "job %d not found or already done", id)
	}
	return nil
}

// RenewLease extends a held lease to now+lease; see app.JobStore.
func (db *DB) RenewLease(ctx context.Context, id int64, attempts int, lease time.Duration) error {
	res, err := db.write.ExecContext(ctx,
		`UPDATE jobs SET locked_until = ? WHERE id = ? AND attempts = ? AND done_at IS NULL AND locked_until IS NOT NULL`,
		unixNano(now())+int64(lease), id, attempts)
	if err != nil {
		return fmt.Errorf("renew lease of job %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("renew lease of job %d: %w", id, err)
	} else if n == 0 {
		return app.Errorf(app.ENOTFOUND, "job %d is no longer held by this claim (claimed again, released or done)", id)
	}
	return nil
}

// ReclaimJobs ends every lease; see app.JobStore. Attempts are kept: a job
// that a crash interrupted counts that attempt.
func (db *DB) ReclaimJobs(ctx context.Context) (int, error) {
	res, err := db.write.ExecContext(ctx,
		`UPDATE jobs SET locked_until = NULL WHERE done_at IS NULL AND locked_until IS NOT NULL`)
	if err != nil {
		return 0, fmt.Errorf("reclaim jobs: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("reclaim jobs: %w", err)
	}
	return int(n), nil
}

// PendingJobs counts jobs not yet done.
func (db *DB) PendingJobs(ctx context.Context) (int, error) {
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE done_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending jobs: %w", err)
	}
	return n, nil
}
