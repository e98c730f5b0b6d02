package app_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/extract"
	"selfhost.dev/edgeapp/app/fsblob"
	"selfhost.dev/edgeapp/app/logmail"
	"selfhost.dev/edgeapp/app/sqlite"
)

// deliveries counts what the index and mailer received, per contact, and
// can fail or block on demand.
type deliveries struct {
	mu      sync.Mutex
	indexed map[int64]int
	mailed  map[string]int // by contact email
	failing atomic.Int32   // fail this many more sends
	onSend  func(n int)    // called after each successful send with the total so far
	total   int
}

func newDeliveries() *deliveries {
	return &deliveries{indexed: map[int64]int{}, mailed: map[string]int{}}
}

type recIndex struct {
	app.SearchIndex
	d *deliveries
}

func (r recIndex) IndexContact(ctx context.Context, c *app.Contact) error {
	if err := r.SearchIndex.IndexContact(ctx, c); err != nil {
		return err
	}
	r.d.mu.Lock()
	r.d.indexed[c.ID]++
	r.d.mu.Unlock()
	return nil
}

type recMailer struct {
	app.Mailer
	d *deliveries
}

func (r recMailer) Send(ctx context.Context, m *app.Message) error {
	if r.d.failing.Add(-1) >= 0 {
		return app.Unavailable("mail", errors.New("421 try again later"))
	}
	if err := r.Mailer.Send(ctx, m); err != nil {
		return err
	}
	email := m.Text[strings.Index(m.Text, "Email: ")+7:]
	email = email[:strings.IndexByte(email, '\n')]
	r.d.mu.Lock()
	r.d.mailed[email]++
	r.d.total++
	n, hook := r.d.total, r.d.onSend
	r.d.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	return nil
}

func newWorker(t *testing.T, db *sqlite.DB, blobs app.BlobStore, d *deliveries) *app.Worker {
	return &app.Worker{
		Store: db, Blobs: blobs, Index: recIndex{sqlite.NewIndex(db), d}, Mailer: recMailer{logmail.New(nil), d},
		Extractor: extract.New(), NotifyFrom: "app@example.com", NotifyTo: []string{"owner@example.com"},
		BatchSize: 4, PollInterval: 10 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		TempDir: t.TempDir(),
	}
}

func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWorkerRestartDeliversOnce stops a worker mid-way through the
// outbox, closes and reopens the database, and lets a new worker finish:
// every job is delivered exactly once.
func TestWorkerRestartDeliversOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := fsblob.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	svc := &app.Service{Store: db, Blobs: blobs, Index: sqlite.NewIndex(db)}
	const n = 30
	for i := range n {
		if err := svc.SubmitContact(t.Context(), &app.Contact{Name: "P", Email: fmt.Sprintf("p%d@example.com", i), Message: "m"}); err != nil {
			t.Fatal(err)
		}
	}

	d := newDeliveries()
	halfway := make(chan struct{})
	var once sync.Once
	d.onSend = func(sent int) {
		if sent >= n/3 {
			once.Do(func() { close(halfway) })
		}
	}
	w1 := newWorker(t, db, blobs, d)
	w1.Start(context.Background())
	select {
	case <-halfway:
	case <-time.After(10 * time.Second):
		w1.Stop(context.Background())
		t.Fatalf("no third of the notifications went out within 10s (%d sent)", d.total)
	}
	if err := w1.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	d.mu.Lock()
	stoppedAt := d.total
	d.mu.Unlock()
	if stoppedAt >= n {
		t.Fatalf("worker finished everything (%d) before Stop: the test stopped nothing mid-way", stoppedAt)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w2 := newWorker(t, db, blobs, d)
	w2.Start(context.Background())
	defer w2.Stop(context.Background())
	waitFor(t, "all jobs done", func() error {
		if p, err := db.PendingJobs(t.Context()); err != nil || p != 0 {
			return fmt.Errorf("%d pending (%v)", p, err)
		}
		return nil
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range n {
		if got := d.mailed[fmt.Sprintf("p%d@example.com", i)]; got != 1 {
			t.Errorf("contact %d mailed %d times", i, got)
		}
	}
	for id := int64(1); id <= n; id++ {
		if got := d.indexed[id]; got != 1 {
			t.Errorf("contact %d indexed %d times", id, got)
		}
	}
}

// TestWorkerRetriesThenDelivers: failed sends are retried with backoff,
// counted, and the message goes out once when the mailer recovers.
func TestWorkerRetriesThenDelivers(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d := newDeliveries()
	d.failing.Store(3)
	w := newWorker(t, db, nil, d)
	reg := prometheus.NewRegistry()
	w.Metrics = app.NewWorkerMetrics(reg)
	svc := &app.Service{Store: db, Kick: w.Kick}
	w.Start(context.Background())
	defer w.Stop(context.Background())
	if err := svc.SubmitContact(t.Context(), &app.Contact{Name: "R", Email: "r@example.com", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivered after failures", func() error {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.mailed["r@example.com"] != 1 {
			return fmt.Errorf("mailed %d times", d.mailed["r@example.com"])
		}
		return nil
	})
	if got := gauge(t, reg, "outbox_job_failures_total"); got != 3 {
		t.Errorf("failures{notify_contact} = %v, want 3", got)
	}
	waitFor(t, "pending gauge at 0", func() error {
		if got := gauge(t, reg, "outbox_jobs_pending"); got != 0 {
			return fmt.Errorf("outbox_jobs_pending = %v", got)
		}
		return nil
	})
}

// TestWorkerMissingRowIsDone: a job whose contact or document is gone is
// done at once, not retried forever.
func TestWorkerMissingRowIsDone(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ghost := app.ContactPayload{ContactID: 999}
	err = db.CreateContact(t.Context(), &app.Contact{Name: "x", Email: "x@example.com", Message: "m"},
		app.NewJob(app.JobIndexContact, ghost), app.NewJob(app.JobNotifyContact, ghost),
		app.NewJob(app.JobIndexDocument, app.DocumentPayload{DocumentID: 999}))
	if err != nil {
		t.Fatal(err)
	}
	d := newDeliveries()
	w := newWorker(t, db, nil, d)
	w.Start(context.Background())
	defer w.Stop(context.Background())
	waitFor(t, "ghost jobs done", func() error {
		if p, _ := db.PendingJobs(t.Context()); p != 0 {
			return fmt.Errorf("%d pending", p)
		}
		return nil
	})
	if d.total != 0 || len(d.indexed) != 0 {
		t.Errorf("delivered %d mails, %d index entries for rows that do not exist", d.total, len(d.indexed))
	}
}

// blockingMailer blocks Send until released.
type blockingMailer struct {
	app.Mailer
	started chan struct{}
	release chan struct{}
}

func (b blockingMailer) Send(ctx context.Context, m *app.Message) error {
	close(b.started)
	<-b.release
	return nil
}

// TestWorkerStopFinishesCurrentJob: Stop waits for the running job, which
// then counts as done.
func TestWorkerStopFinishesCurrentJob(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateContact(t.Context(), &app.Contact{Name: "x", Email: "x@example.com", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateContact(t.Context(), &app.Contact{Name: "x", Email: "x@example.com", Message: "m"},
		app.NewJob(app.JobNotifyContact, app.ContactPayload{ContactID: 1})); err != nil {
		t.Fatal(err)
	}
	bm := blockingMailer{started: make(chan struct{}), release: make(chan struct{})}
	w := newWorker(t, db, nil, newDeliveries())
	w.Mailer = bm
	w.Start(context.Background())
	<-bm.started
	stopped := make(chan error)
	go func() { stopped <- w.Stop(context.Background()) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a job was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(bm.release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if p, _ := db.PendingJobs(t.Context()); p != 0 {
		t.Errorf("%d pending after the running job finished", p)
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := time.Second, 5*time.Minute
	for attempts, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 9: 256 * time.Second, 10: hi, 50: hi} {
		for range 20 {
			got := app.Backoff(attempts, lo, hi)
			if got < want/2 || got > want {
				t.Fatalf("Backoff(%d) = %v, want in [%v, %v]", attempts, got, want/2, want)
			}
		}
	}
}

// gauge sums the values of the named metric in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// ctxMailer blocks Send until its context ends.
type ctxMailer struct {
	app.Mailer
	started chan struct{}
}

func (m ctxMailer) Send(ctx context.Context, _ *app.Message) error {
	close(m.started)
	<-ctx.Done()
	return ctx.Err()
}

// TestWorkerHardStop: when Stop's context ends first, the running job is
// cancelled and scheduled for a retry, not left leased.
func TestWorkerHardStop(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateContact(t.Context(), &app.Contact{Name: "x", Email: "x@example.com", Message: "m"},
		app.NewJob(app.JobNotifyContact, app.ContactPayload{ContactID: 1})); err != nil {
		t.Fatal(err)
	}
	w := newWorker(t, db, nil, newDeliveries())
	m := ctxMailer{started: make(chan struct{})}
	w.Mailer = m
	w.Lease = time.Hour
	w.Start(context.Background())
	<-m.started
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := w.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want DeadlineExceeded", err)
	}
	waitFor(t, "job claimable again well before its one-hour lease", func() error {
		jobs, err := db.ClaimJobs(t.Context(), 1, time.Minute)
		if err != nil {
			return err
		}
		if len(jobs) != 1 || jobs[0].Attempts != 2 {
			return fmt.Errorf("claimed %v", jobs)
		}
		return nil
	})
}

// flakySettle is a Store whose CompleteJob fails a few times, as a
// database restarting right after a job ran would.
type flakySettle struct {
	*sqlite.DB
	fails atomic.Int32
}

func (s *flakySettle) CompleteJob(ctx context.Context, id int64) error {
	if s.fails.Add(-1) >= 0 {
		return app.Unavailable("database", errors.New("the database system is shutting down"))
	}
	return s.DB.CompleteJob(ctx, id)
}

// TestWorkerSettleRetries: when recording a job's outcome fails, the
// worker tries again instead of leaving the job leased (here for an hour).
func TestWorkerSettleRetries(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fs := &flakySettle{DB: db}
	fs.fails.Store(2)
	d := newDeliveries()
	w := newWorker(t, db, nil, d)
	w.Store = fs
	w.Lease = time.Hour
	svc := &app.Service{Store: fs, Kick: w.Kick}
	w.Start(context.Background())
	defer w.Stop(context.Background())
	if err := svc.SubmitContact(t.Context(), &app.Contact{Name: "S", Email: "s@example.com", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "jobs done despite failed completions", func() error {
		if p, _ := db.PendingJobs(t.Context()); p != 0 {
			return fmt.Errorf("%d pending", p)
		}
		return nil
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mailed["s@example.com"] != 1 {
		t.Errorf("mailed %d times, want 1", d.mailed["s@example.com"])
	}
}
