package app_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/sqlite"
)

func openDB(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func addContact(t *testing.T, db *sqlite.DB, email string) {
	t.Helper()
	if err := db.CreateContact(t.Context(), &app.Contact{Name: "x", Email: email, Message: "m"},
		app.NewJob(app.JobNotifyContact, app.ContactPayload{})); err != nil {
		t.Fatal(err)
	}
}

// slowMailer blocks each send until release is closed or ctx ends, and
// records each attempt's Message ID.
type slowMailer struct {
	app.Mailer
	started   chan struct{}
	release   chan struct{}
	mu        sync.Mutex
	ids       []string
	fail      int // fail this many attempts first
	cancelled int // sends ended by their context
}

func (m *slowMailer) Send(ctx context.Context, msg *app.Message) error {
	m.mu.Lock()
	m.ids = append(m.ids, msg.ID)
	fail := len(m.ids) <= m.fail
	m.mu.Unlock()
	if fail {
		return app.Unavailable("mail", errors.New("421 try again later"))
	}
	select {
	case m.started <- struct{}{}:
	default:
	}
	select {
	case <-m.release:
		return nil
	case <-ctx.Done():
		m.mu.Lock()
		m.cancelled++
		m.mu.Unlock()
		return ctx.Err()
	}
}

// TestWorkerHeartbeatKeepsSlowJob: a job running for many leases is
// renewed by the heartbeat, so no other worker claims it meanwhile, and
// it is sent once.
func TestWorkerHeartbeatKeepsSlowJob(t *testing.T) {
	db := openDB(t)
	addContact(t, db, "slow@example.com")
	w := newWorker(t, db, nil, newDeliveries())
	m := &slowMailer{started: make(chan struct{}, 1), release: make(chan struct{})}
	w.Mailer = m
	// A renewal may come 450 ms late before the lease is lost: a loaded
	// 2-core CI machine under -race delayed one past 160 ms.
	w.Lease, w.Heartbeat = 500*time.Millisecond, 50*time.Millisecond
	w.Start(context.Background())
	defer w.Stop(context.Background())
	<-m.started
	for range 10 { // three leases
		if jobs, err := db.ClaimJobs(t.Context(), 10, time.Minute); err != nil || len(jobs) != 0 {
			t.Fatalf("another worker claimed %v (%v) while the job ran under a renewed lease", jobs, err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	close(m.release)
	waitFor(t, "job done", func() error {
		if n, _ := db.PendingJobs(t.Context()); n != 0 {
			return fmt.Errorf("%d pending", n)
		}
		return nil
	})
	if len(m.ids) != 1 {
		t.Errorf("sent %d times, want 1", len(m.ids))
	}
}

// TestWorkerLostLease: when the job a worker runs is claimed by another
// worker (its lease ran out), the heartbeat's refused renewal cancels the
// job, and the worker records nothing that would end the new holder's
// lease.
func TestWorkerLostLease(t *testing.T) {
	db := openDB(t)
	addContact(t, db, "lost@example.com")
	w := newWorker(t, db, nil, newDeliveries())
	m := &slowMailer{started: make(chan struct{}, 1), release: make(chan struct{})}
	w.Mailer = m
	w.Lease, w.Heartbeat = time.Hour, 20*time.Millisecond
	w.Start(context.Background())
	defer w.Stop(context.Background())
	<-m.started
	// Another process steals it: the lease ends and a new claim takes it.
	if _, err := db.ReclaimJobs(t.Context()); err != nil {
		t.Fatal(err)
	}
	jobs, err := db.ClaimJobs(t.Context(), 10, time.Hour)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("ClaimJobs = %v, %v; want the job", jobs, err)
	}
	waitFor(t, "the first worker's send cancelled by its heartbeat", func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.cancelled != 1 {
			return fmt.Errorf("%d sends cancelled", m.cancelled)
		}
		return nil
	})
	// The new holder's lease survives: no RetryJob cleared it.
	time.Sleep(200 * time.Millisecond)
	if again, err := db.ClaimJobs(t.Context(), 10, time.Hour); err != nil || len(again) != 0 {
		t.Errorf("after the old holder gave up, the job was claimable again (%v, %v): its failure ended the new lease", again, err)
	}
	if err := db.RenewLease(t.Context(), jobs[0].ID, jobs[0].Attempts, time.Hour); err != nil {
		t.Errorf("the new holder's renewal: %v", err)
	}
	if n, _ := db.PendingJobs(t.Context()); n != 1 {
		t.Errorf("PendingJobs = %d, want 1 (the new holder has not finished)", n)
	}
}

// TestWorkerReclaim: a worker with Reclaim runs the jobs a crashed process
// left leased at once, not after their (here one-hour) lease.
func TestWorkerReclaim(t *testing.T) {
	db := openDB(t)
	addContact(t, db, "crash@example.com")
	if jobs, err := db.ClaimJobs(t.Context(), 10, time.Hour); err != nil || len(jobs) != 1 {
		t.Fatalf("ClaimJobs = %v, %v", jobs, err)
	}
	d := newDeliveries()
	w := newWorker(t, db, nil, d)
	w.Reclaim = true
	w.Start(context.Background())
	defer w.Stop(context.Background())
	waitFor(t, "the crashed process's job done after a restart", func() error {
		if n, _ := db.PendingJobs(t.Context()); n != 0 {
			return fmt.Errorf("%d pending", n)
		}
		return nil
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mailed["crash@example.com"] != 1 {
		t.Errorf("mailed %d times, want 1", d.mailed["crash@example.com"])
	}
}

// TestNotificationIDStable: every attempt at one notification carries the
// same Message ID, built from the contact and the job; another contact's
// differs.
func TestNotificationIDStable(t *testing.T) {
	db := openDB(t)
	addContact(t, db, "a@example.com")
	w := newWorker(t, db, nil, newDeliveries())
	m := &slowMailer{started: make(chan struct{}, 1), release: make(chan struct{}), fail: 2}
	close(m.release)
	w.Mailer = m
	w.Start(context.Background())
	defer w.Stop(context.Background())
	waitFor(t, "sent after two failures", func() error {
		if n, _ := db.PendingJobs(t.Context()); n != 0 {
			return fmt.Errorf("%d pending", n)
		}
		return nil
	})
	addContact(t, db, "b@example.com")
	w.Kick()
	waitFor(t, "second contact sent", func() error {
		if n, _ := db.PendingJobs(t.Context()); n != 0 {
			return fmt.Errorf("%d pending", n)
		}
		return nil
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.ids) != 4 {
		t.Fatalf("%d attempts, want 4: %q", len(m.ids), m.ids)
	}
	if m.ids[0] != m.ids[1] || m.ids[1] != m.ids[2] {
		t.Errorf("attempts of one notification carry different IDs: %q", m.ids[:3])
	}
	if m.ids[3] == m.ids[0] {
		t.Errorf("two contacts' notifications share the ID %q", m.ids[0])
	}
	if !strings.HasPrefix(m.ids[0], "contact-1.") || !strings.HasSuffix(m.ids[0], "@example.com") {
		t.Errorf("ID %q, want contact-1.…@example.com (NotifyFrom's domain)", m.ids[0])
	}
}
