package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the Worker's tuning fields.
const (
	DefaultBatchSize    = 10
	DefaultLease        = 30 * time.Second
	DefaultPollInterval = 2 * time.Second
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = 5 * time.Minute
)

// WorkerMetrics are the outbox's Prometheus metrics.
type WorkerMetrics struct {
	Pending  prometheus.Gauge       // outbox_jobs_pending
	Failures *prometheus.CounterVec // outbox_job_failures_total{kind}
}

// NewWorkerMetrics creates the outbox metrics and registers them with reg.
func NewWorkerMetrics(reg prometheus.Registerer) *WorkerMetrics {
	m := &WorkerMetrics{
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outbox_jobs_pending",
			Help: "Outbox jobs not yet done, as of the worker's last look.",
		}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outbox_job_failures_total",
			Help: "Failed attempts at outbox jobs, by kind.",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.Pending, m.Failures)
	return m
}

// Worker delivers outbox jobs: it claims batches under a lease, runs each
// job by kind, and marks it done or schedules a retry with exponential
// backoff and jitter. Several workers, in one process or many, may share a
// Store: the lease, renewed by a heartbeat while the worker holds the job
// (heartbeat.go), keeps them from running one job at the same time unless
// a worker is cut off from the store for a whole lease.
//
// A Worker is configured through its fields, then started once with Start
// and stopped once with Stop.
type Worker struct {
	Store     Store         // required
	Blobs     BlobStore     // required
	Index     SearchIndex   // required
	Mailer    Mailer        // required
	Extractor TextExtractor // required

	// NotifyFrom and NotifyTo address the notification of a new contact.
	// If NotifyTo is empty, notify_contact jobs are done without sending.
	NotifyFrom string
	NotifyTo   []string

	// Logger receives one line per failed attempt. If nil, nothing is logged.
	Logger *slog.Logger
	// Metrics, if not nil, are kept up to date.
	Metrics *WorkerMetrics

	// BatchSize is how many jobs one claim takes. If zero, DefaultBatchSize.
	BatchSize int
	// Lease is how long a claimed job is hidden from other workers unless
	// renewed. The worker renews the leases of the batch it is running
	// every Heartbeat, so a job may take longer than Lease; the lease only
	// bounds how long the jobs of a worker that died (or cannot reach the
	// database) stay hidden. If zero, DefaultLease.
	Lease time.Duration
	// Heartbeat is how often the leases of the running batch are renewed.
	// It must be well under Lease, so that one failed renewal does not
	// lose a job. If zero (or not under Lease), Lease/3.
	Heartbeat time.Duration
	// Reclaim makes Start end every lease before the first claim
	// (JobStore.ReclaimJobs), so that the jobs a crashed process held run
	// at once instead of after their lease. Set it only when no other
	// worker can be using the store: the embedded SQLite default, in the
	// process that owns the database file. It also removes the files of
	// uploads that a crash cut between staging and commit (see
	// SweepStagedMargin), when the stores allow it (BlobLister,
	// StoragePathStore).
	Reclaim bool
	// PollInterval is how often an idle worker looks for jobs that Kick
	// did not announce (other instances' writes, retries coming due).
	// If zero, DefaultPollInterval.
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the delay before a failed job is
	// retried; it doubles with each attempt. If zero, DefaultMinBackoff
	// and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// TempDir is where documents are spooled for text extraction, which
	// needs random access. If empty, os.TempDir().
	TempDir string

	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	cancel   context.CancelFunc
	initOnce sync.Once
	stopOnce sync.Once
}

func (w *Worker) init() {
	w.initOnce.Do(func() {
		w.kick = make(chan struct{}, 1)
		w.stop = make(chan struct{})
		w.done = make(chan struct{})
	})
}

// Kick makes the worker look for jobs now. It never blocks; it is meant as
// Service.Kick.
func (w *Worker) Kick() {
	w.init()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Start runs the worker in a new goroutine until Stop is called. ctx
// carries values only: cancelling it does not stop the worker, so that a
// request's context can never interrupt a job.
func (w *Worker) Start(ctx context.Context) {
	w.init()
	ctx, w.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go w.run(ctx, time.Now())
}

// Stop stops claiming jobs, hands back the claimed jobs not yet started,
// and waits for the running job to finish. If ctx ends first, the running
// job's context is cancelled (it will be retried) and Stop returns
// ctx.Err() once the worker has exited.
func (w *Worker) Stop(ctx context.Context) error {
	w.init()
	w.stopOnce.Do(func() { close(w.stop) })
	if w.cancel == nil { // never started
		return nil
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		w.cancel()
		<-w.done
		return ctx.Err()
	}
}

func (w *Worker) stopping() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

func (w *Worker) run(ctx context.Context, started time.Time) {
	defer close(w.done)
	defer w.cancel()
	if w.Reclaim {
		w.reclaim(ctx)
		w.sweepStaged(ctx, started.Add(-SweepStagedMargin))
	}
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		full, claimed := w.runBatch(ctx)
		if claimed {
			w.updatePending(ctx)
		}
		if w.stopping() {
			return
		}
		if full {
			continue // more may be waiting
		}
		poll.Reset(durationOr(w.PollInterval, DefaultPollInterval))
		select {
		case <-w.stop:
			return
		case <-w.kick:
		case <-poll.C:
		}
	}
}

// runBatch claims and runs one batch and reports whether it was full and
// whether the claim worked at all (if not, the database is likely down and
// the pending count would fail too).
func (w *Worker) runBatch(ctx context.Context) (full, claimed bool) {
	n := w.BatchSize
	if n <= 0 {
		n = DefaultBatchSize
	}
	lease := durationOr(w.Lease, DefaultLease)
	claimedAt := time.Now()
	jobs, err := w.Store.ClaimJobs(ctx, n, lease)
	if err != nil {
		w.log(ctx, slog.LevelError, "claim outbox jobs", slog.Any("error", err))
		return false, false
	}
	if len(jobs) == 0 {
		return false, true
	}
	hb := w.startHeartbeat(ctx, jobs, claimedAt, lease)
	defer hb.stop()
	for i, j := range jobs {
		if w.stopping() {
			w.release(ctx, hb, jobs[i:])
			return false, true
		}
		w.runJob(ctx, j, hb)
	}
	return len(jobs) == n, true
}

// reclaim ends the leases a crashed process left, so that its jobs run
// now rather than when their leases end.
func (w *Worker) reclaim(ctx context.Context) {
	n, err := w.Store.ReclaimJobs(ctx)
	if err != nil {
		w.log(ctx, slog.LevelWarn, "reclaim outbox jobs: they run when their leases end", slog.Any("error", err))
		return
	}
	if n > 0 {
		w.log(ctx, slog.LevelInfo, "reclaimed outbox jobs leased before a restart", slog.Int("jobs", n))
	}
}

// release makes claimed jobs that will not run now claimable again at
// once, instead of after their lease.
func (w *Worker) release(ctx context.Context, hb *heartbeat, jobs []*Job) {
	ctx, cancel := settleContext(ctx)
	defer cancel()
	for _, j := range jobs {
		if hb.settling(j.ID) {
			continue // lost: not ours to hand back
		}
		if err := w.Store.RetryJob(ctx, j.ID, time.Now(), "worker stopped before running it"); err != nil {
			w.log(ctx, slog.LevelWarn, "release outbox job", slog.Int64("job_id", j.ID), slog.Any("error", err))
		}
	}
}

// settleContext is for recording a job's outcome: a hard Stop cancels the
// job's context, but what happened must still be written down, or a job
// that succeeded would run again once its lease ends.
func settleContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

// Bounds on the pause between attempts to record a job's outcome.
const (
	settleMinWait = 100 * time.Millisecond
	settleMaxWait = 5 * time.Second
)

// settle records a job's outcome with write, trying again while the
// database cannot be reached: an outcome that is not written leaves the
// job leased, hidden from every worker, until its lease ends. It gives up
// when the lease is about to end anyway (the job will be claimed again),
// when it is lost, on a hard Stop, or on ENOTFOUND (another worker settled
// it after our lease ran out).
func (w *Worker) settle(ctx context.Context, j *Job, hb *heartbeat, what string, write func(context.Context) error) {
	wait := settleMinWait
	for {
		wctx, cancel := settleContext(ctx)
		err := write(wctx)
		cancel()
		if err == nil {
			return
		}
		attrs := []slog.Attr{slog.Int64("job_id", j.ID), slog.String("kind", j.Kind), slog.Any("error", err)}
		if ErrorCode(err) == ENOTFOUND || ctx.Err() != nil || time.Now().Add(wait).After(hb.leaseEnd(j.ID)) {
			w.log(ctx, slog.LevelWarn, what+" outbox job: giving up", attrs...)
			return
		}
		w.log(ctx, slog.LevelWarn, what+" outbox job", append(attrs, slog.Duration("retry_in", wait))...)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		wait = min(2*wait, settleMaxWait)
	}
}

// runJob runs a job and records its outcome. The outcome of a job whose
// lease was lost while it ran (the heartbeat found another claim) is
// recorded only if it succeeded, which is true whoever else runs it;
// a failure is left to the worker that now holds it, since a RetryJob
// from here would end that worker's lease.
func (w *Worker) runJob(ctx context.Context, j *Job, hb *heartbeat) {
	defer hb.drop(j.ID)
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !hb.running(j.ID, cancel) {
		w.log(ctx, slog.LevelWarn, "outbox job lease lost before it ran: skipped", slog.Int64("job_id", j.ID), slog.String("kind", j.Kind))
		return
	}
	err := w.do(jctx, j)
	lost := hb.settling(j.ID)
	complete := func(ctx context.Context) error { return w.Store.CompleteJob(ctx, j.ID) }
	if err == nil {
		w.settle(ctx, j, hb, "complete", complete)
		return
	}
	if w.Metrics != nil {
		w.Metrics.Failures.WithLabelValues(j.Kind).Inc()
	}
	if lost {
		w.log(ctx, slog.LevelWarn, "outbox job failed after its lease was lost: left to the worker that took it",
			slog.Int64("job_id", j.ID), slog.String("kind", j.Kind), slog.Any("error", err))
		return
	}
	if permanent(err) {
		// Retrying cannot help (a corrupt PDF, an unknown kind): settle it
		// and say so, rather than retry it forever.
		w.log(ctx, slog.LevelError, "outbox job failed for good", slog.Int64("job_id", j.ID), slog.String("kind", j.Kind), slog.Int("attempts", j.Attempts), slog.Any("error", err))
		w.settle(ctx, j, hb, "complete", complete)
		return
	}
	delay := backoff(j.Attempts, durationOr(w.MinBackoff, DefaultMinBackoff), durationOr(w.MaxBackoff, DefaultMaxBackoff))
	w.log(ctx, slog.LevelWarn, "outbox job failed", slog.Int64("job_id", j.ID), slog.String("kind", j.Kind), slog.Int("attempts", j.Attempts), slog.Duration("retry_in", delay), slog.Any("error", err))
	w.settle(ctx, j, hb, "retry", func(sctx context.Context) error {
		return w.Store.RetryJob(sctx, j.ID, time.Now().Add(delay), err.Error())
	})
}

// permanent reports whether err says the job can never succeed.
func permanent(err error) bool {
	switch ErrorCode(err) {
	case EINVALID, EUNSUPPORTED, EVALIDATION:
		return true
	}
	return false
}

// backoff returns the delay before retry number attempts: min doubled per
// earlier attempt, capped at max, with "equal jitter" (half fixed, half
// random) so that jobs failing together do not retry together.
func backoff(attempts int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < attempts && d < max; i++ {
		d *= 2
	}
	d = clampDuration(d, min, max)
	half := d / 2
	return half + rand.N(half+1)
}

func clampDuration(d, lo, hi time.Duration) time.Duration {
	return max(lo, min(d, hi))
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (w *Worker) updatePending(ctx context.Context) {
	if w.Metrics == nil {
		return
	}
	n, err := w.Store.PendingJobs(ctx)
	if err != nil {
		w.log(ctx, slog.LevelWarn, "count pending outbox jobs", slog.Any("error", err))
		return
	}
	w.Metrics.Pending.Set(float64(n))
}

func (w *Worker) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if w.Logger != nil {
		w.Logger.LogAttrs(ctx, level, msg, attrs...)
	}
}

// do runs one job. A job whose row no longer exists has nothing left to do
// and succeeds.
func (w *Worker) do(ctx context.Context, j *Job) error {
	switch j.Kind {
	case JobIndexContact, JobNotifyContact:
		var p ContactPayload
		if err := json.Unmarshal(j.Payload, &p); err != nil {
			return &Error{Code: EINVALID, Message: "bad payload", Err: err}
		}
		cs, _, err := w.Store.Contacts(ctx, ContactFilter{IDs: []int64{p.ContactID}, Limit: 1})
		if err != nil {
			return fmt.Errorf("load contact %d: %w", p.ContactID, err)
		}
		if len(cs) == 0 {
			return nil
		}
		if j.Kind == JobIndexContact {
			if err := w.Index.IndexContact(ctx, cs[0]); err != nil {
				return fmt.Errorf("index contact %d: %w", p.ContactID, err)
			}
			return nil
		}
		return w.notify(ctx, j, cs[0])
	case JobIndexDocument, JobDeleteDocument:
		var p DocumentPayload
		if err := json.Unmarshal(j.Payload, &p); err != nil {
			return &Error{Code: EINVALID, Message: "bad payload", Err: err}
		}
		if j.Kind == JobIndexDocument {
			return w.indexDocument(ctx, p.DocumentID)
		}
		if err := w.Index.RemoveDocument(ctx, p.DocumentID); err != nil {
			return fmt.Errorf("remove document %d from index: %w", p.DocumentID, err)
		}
		if p.StoragePath != "" {
			if err := w.Blobs.Delete(ctx, p.StoragePath); err != nil {
				return fmt.Errorf("delete blob %q: %w", p.StoragePath, err)
			}
		}
		return nil
	default:
		return Errorf(EINVALID, "unknown job kind %q", j.Kind)
	}
}

func (w *Worker) notify(ctx context.Context, j *Job, c *Contact) error {
	if len(w.NotifyTo) == 0 {
		return nil
	}
	m := &Message{
		ID:      notificationID(j, c, w.NotifyFrom),
		From:    w.NotifyFrom,
		To:      w.NotifyTo,
		Subject: "New contact from " + oneLine(c.Name),
		Text: fmt.Sprintf("Name: %s\nEmail: %s\nReceived: %s\n\n%s\n",
			c.Name, c.Email, c.CreatedAt.UTC().Format(time.RFC3339), c.Message),
	}
	if err := w.Mailer.Send(ctx, m); err != nil {
		return fmt.Errorf("send notification of contact %d: %w", c.ID, err)
	}
	return nil
}

// notificationID is the Message-ID of a contact's notification: the same
// on every attempt of its job, so that a repeat (mail is at-least-once)
// can be collapsed by the receiver. The job id alone would repeat across
// databases (a restored backup, a fresh install numbering from 1 again),
// and some receivers drop a message whose Message-ID they have seen, so
// the contact's creation time, which does not change, is part of it.
func notificationID(j *Job, c *Contact, from string) string {
	// The sender's domain, reduced to what a msg-id may hold whatever
	// NOTIFY_EMAIL_FROM looks like.
	domain := strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return r
		}
		return -1
	}, from[strings.LastIndexByte(from, '@')+1:])
	if domain == "" {
		domain = "localhost"
	}
	return fmt.Sprintf("contact-%d.%d.job-%d@%s", c.ID, c.CreatedAt.UnixNano(), j.ID, domain)
}

// oneLine keeps a header value on one line whatever the user typed.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func (w *Worker) indexDocument(ctx context.Context, id int64) error {
	d, err := w.Store.Document(ctx, id)
	if ErrorCode(err) == ENOTFOUND {
		return nil // deleted since: its delete job cleans up
	}
	if err != nil {
		return fmt.Errorf("load document %d: %w", id, err)
	}
	text, err := w.extract(ctx, d)
	if ErrorCode(err) == ENOTFOUND {
		if _, derr := w.Store.Document(ctx, id); ErrorCode(derr) == ENOTFOUND {
			return nil // the blob went with a delete that raced us
		}
		// The row is there and its file is not (a blob store restored
		// from an older backup, a file removed by hand): no retry brings
		// it back, and "pending" for ever would hide it from the user.
		err = &Error{Code: EINVALID, Message: "the stored file is missing", Err: err}
	}
	status, reason := textStatus(text, err)
	if err != nil && status != TextFailed {
		return err // transient: retried
	}
	// A file without text is still indexed, so that its name and type
	// find it; the status tells the user why its words do not.
	if err := w.Index.IndexDocument(ctx, d, text); err != nil {
		return fmt.Errorf("index document %d: %w", id, err)
	}
	if err := w.Store.SetTextStatus(ctx, id, status, reason); err != nil && ErrorCode(err) != ENOTFOUND {
		return fmt.Errorf("set text status of document %d: %w", id, err)
	}
	if status == TextFailed {
		return err // the outbox logs it and settles the job for good
	}
	return nil
}

// textStatus is what a document's extraction gives the user to see
// (Document.TextStatus, TextReason): failed for an error that retrying
// cannot fix, no_text for a file without text, indexed otherwise.
func textStatus(text string, err error) (status, reason string) {
	switch {
	case err != nil && permanent(err):
		return TextFailed, ErrorMessage(err)
	case err != nil:
		return "", ""
	case strings.TrimSpace(text) == "":
		return TextNoText, "the file has no text to extract (a scanned image?)"
	}
	return TextIndexed, ""
}

// extract spools the document to a temp file, since extraction needs
// random access and blobs stream, and extracts its text.
func (w *Worker) extract(ctx context.Context, d *Document) (string, error) {
	rc, err := w.Blobs.Get(ctx, d.StoragePath)
	if err != nil {
		return "", fmt.Errorf("get blob %q: %w", d.StoragePath, err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(w.TempDir, "extract-*")
	if err != nil {
		return "", fmt.Errorf("spool document %d: %w", d.ID, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, rc)
	if err != nil {
		return "", fmt.Errorf("spool document %d: %w", d.ID, err)
	}
	text, err := w.Extractor.ExtractText(ctx, f, n, d.ContentType)
	if err != nil {
		return "", fmt.Errorf("extract text of document %d: %w", d.ID, err)
	}
	return text, nil
}
