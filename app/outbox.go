package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The kinds of outbox job.
const (
	JobIndexContact   = "index_contact"   // payload: ContactPayload
	JobNotifyContact  = "notify_contact"  // payload: ContactPayload
	JobIndexDocument  = "index_document"  // payload: DocumentPayload
	JobDeleteDocument = "delete_document" // payload: DocumentPayload (remove from index, then the blob)
)

// Job is an outbox entry: work that must happen after a write commits, such
// as indexing or sending mail, stored in the same transaction as the write
// so that it is never lost, and delivered by a Worker with retries.
type Job struct {
	ID       int64           `json:"id"`
	Kind     string          `json:"kind"`
	Payload  json.RawMessage `json:"payload"`
	Attempts int             `json:"attempts"` // deliveries tried so far, including the current one once claimed
	RunAt    time.Time       `json:"run_at"`
	// LastError is the error of the last failed attempt.
	LastError string `json:"last_error,omitempty"`
}

// ContactPayload is the payload of contact jobs.
type ContactPayload struct {
	ContactID int64 `json:"contact_id"`
}

// DocumentPayload is the payload of document jobs.
type DocumentPayload struct {
	DocumentID int64 `json:"document_id"`
	// StoragePath is set on delete_document jobs: the blob to remove once
	// the row is gone, so that a blob store that is down delays the removal
	// instead of leaving an orphan.
	StoragePath string `json:"storage_path,omitempty"`
}

// NewJob returns a job of the given kind whose payload is v as JSON.
func NewJob(kind string, v any) *Job {
	b, err := json.Marshal(v)
	if err != nil {
		panic("app: job payload: " + err.Error()) // payloads are our own structs
	}
	return &Job{Kind: kind, Payload: b}
}

// JobStore is the outbox's queue. Jobs are added by the writes of
// ContactStore and DocumentStore; a Worker claims and settles them.
//
// Claiming leases a job to one worker until the lease expires, so that
// several app instances sharing one database do not run one job at the
// same time (PostgreSQL: FOR UPDATE SKIP LOCKED) and a job whose worker
// died is picked up again once its lease ends. Leases are short and the
// worker renews them while it holds the job (RenewLease). Delivery is
// therefore at-least-once, not exactly-once: a worker that dies after a
// job's effect but before CompleteJob, or that cannot renew for a whole
// lease, leaves the job to run again. Jobs must be idempotent where they
// can be (indexing is an upsert by id); mail cannot, and carries a stable
// Message.ID instead.
type JobStore interface {
	// ClaimJobs leases up to n jobs whose RunAt has passed, oldest first,
	// increments their Attempts and hides them from other claims until now+lease.
	ClaimJobs(ctx context.Context, n int, lease time.Duration) ([]*Job, error)
	// CompleteJob marks a claimed job done. It returns ENOTFOUND if the job
	// is already done, so that each job is marked done exactly once.
	CompleteJob(ctx context.Context, id int64) error
	// RetryJob records a failed attempt and makes the job claimable again at runAt.
	RetryJob(ctx context.Context, id int64, runAt time.Time, lastErr string) error
	// PendingJobs counts jobs not yet done.
	PendingJobs(ctx context.Context) (int, error)
	// RenewLease extends the lease of a job the caller holds to now+lease:
	// the worker's heartbeat, so that leases can be short (a dead worker's
	// jobs come back soon) while a slow but live worker keeps its job. The
	// claim is named by the job's ID and its Attempts as ClaimJobs returned
	// them, since every claim increments Attempts: a job claimed again since
	// (by another worker, after this lease ran out), handed back with
	// RetryJob, or done is not renewed and ENOTFOUND says the caller no
	// longer holds it. A lease that ran out but that nobody claimed is
	// still the caller's and is renewed.
	RenewLease(ctx context.Context, id int64, attempts int, lease time.Duration) error
	// ReclaimJobs ends every lease at once, so that every job not done is
	// claimable again at its RunAt, and returns how many leases it ended.
	// It is only safe when no other worker can be running: the embedded
	// SQLite default calls it at start, when it owns the database file.
	ReclaimJobs(ctx context.Context) (int, error)
}

// SetRowID gives each job whose payload holds key with the value 0 the id
// of the row created in the same transaction. A service builds a contact's
// or a document's jobs before the row exists, so only the Store, inside its
// transaction, knows the id: CreateContact calls it with "contact_id" and
// CreateDocument with "document_id". Payloads without the key, or with a
// non-zero value, are left as they are.
func SetRowID(jobs []*Job, key string, id int64) error {
	for _, j := range jobs {
		if len(j.Payload) == 0 {
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(j.Payload, &fields); err != nil {
			return fmt.Errorf("job %s payload: %w", j.Kind, err)
		}
		if !bytes.Equal(bytes.TrimSpace(fields[key]), []byte("0")) {
			continue
		}
		fields[key] = json.RawMessage(strconv.FormatInt(id, 10))
		b, err := json.Marshal(fields)
		if err != nil {
			return fmt.Errorf("job %s payload: %w", j.Kind, err)
		}
		j.Payload = b
	}
	return nil
}
