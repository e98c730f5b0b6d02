package postgres_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/apptest"
	"selfhost.dev/edgeapp/app/postgres"
	"selfhost.dev/edgeapp/internal/testserver"
)

// open opens a fresh database on the real server (see testserver.Postgres).
func open(t *testing.T) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), testserver.Postgres(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	apptest.TestStore(t, func(t *testing.T) app.Store { return open(t) })
}

func TestSearchIndex(t *testing.T) {
	apptest.TestSearchIndex(t, func(t *testing.T) app.SearchIndex { return postgres.NewIndex(open(t)) })
}

// TestReopen checks that what is stored outlives the DB value and that a
// second Open of a migrated database applies nothing.
func TestReopen(t *testing.T) {
	url := testserver.Postgres(t)
	db, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	c := &app.Contact{Name: "Ada", Email: "ada@example.com", Message: "hi"}
	if err := db.CreateContact(t.Context(), c, app.NewJob(app.JobIndexContact, app.ContactPayload{})); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, total, err := db.Contacts(t.Context(), app.ContactFilter{Limit: 10})
	if err != nil || total != 1 || got[0].ID != c.ID {
		t.Fatalf("after reopen Contacts = %v, %d, %v; want contact %d", got, total, err, c.ID)
	}
	jobs, err := db.ClaimJobs(t.Context(), 10, time.Minute)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("after reopen ClaimJobs = %v, %v; want the contact's job", jobs, err)
	}
	// A zero id in the payload is the new row's: the caller cannot know it.
	if want := `"contact_id":` + strconv.FormatInt(c.ID, 10); !strings.Contains(string(jobs[0].Payload), want) {
		t.Errorf("job payload %s, want %s", jobs[0].Payload, want)
	}
}

// TestConcurrentOpen starts four instances at once on a fresh database:
// the advisory lock lets one migrate while the others wait, and all of
// them succeed.
func TestConcurrentOpen(t *testing.T) {
	url := testserver.Postgres(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	dbs := make([]*postgres.DB, 4)
	for i := range dbs {
		wg.Go(func() {
			dbs[i], errs[i] = postgres.Open(t.Context(), url)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open #%d: %v", i, err)
			continue
		}
		defer dbs[i].Close()
		v, err := dbs[i].SchemaVersion(t.Context())
		if err != nil || v < 1 {
			t.Errorf("instance %d: SchemaVersion = %d, %v", i, v, err)
		}
		if err := dbs[i].Ping(t.Context()); err != nil {
			t.Errorf("instance %d: Ping: %v", i, err)
		}
	}
}

// TestTwoInstancesShareJobs claims from two DBs (two app instances) on one
// database at once: SKIP LOCKED and the lease mean no job is claimed twice.
func TestTwoInstancesShareJobs(t *testing.T) {
	url := testserver.Postgres(t)
	a, b := openURL(t, url), openURL(t, url)
	const contacts = 150
	for i := range contacts {
		c := &app.Contact{Name: "n", Email: "e@example.com", Message: "m"}
		if err := a.CreateContact(t.Context(), c,
			app.NewJob(app.JobIndexContact, app.ContactPayload{}), app.NewJob(app.JobNotifyContact, app.ContactPayload{})); err != nil {
			t.Fatalf("contact %d: %v", i, err)
		}
	}
	var mu sync.Mutex
	claimed := map[int64]int{}
	var wg sync.WaitGroup
	for _, db := range []*postgres.DB{a, b, a, b} {
		wg.Go(func() {
			for {
				jobs, err := db.ClaimJobs(t.Context(), 3, time.Minute)
				if err != nil {
					t.Errorf("ClaimJobs: %v", err)
					return
				}
				if len(jobs) == 0 {
					return
				}
				for _, j := range jobs {
					mu.Lock()
					claimed[j.ID]++
					mu.Unlock()
					if err := db.CompleteJob(t.Context(), j.ID); err != nil {
						t.Errorf("CompleteJob(%d): %v", j.ID, err)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(claimed) != 2*contacts {
		t.Errorf("claimed %d distinct jobs, want %d", len(claimed), 2*contacts)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("job %d claimed %d times", id, n)
		}
	}
}

func openURL(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestServerDown stops the real server under an open DB: Ping and writes
// answer EUNAVAILABLE, nothing half-written appears, and everything works
// again once the server is back, without reopening.
func TestServerDown(t *testing.T) {
	srv := testserver.StartPostgres(t)
	db := openURL(t, srv.NewDatabase(t))
	x := postgres.NewIndex(db)
	ctx := t.Context()
	if err := db.CreateContact(ctx, &app.Contact{Name: "before", Email: "a@example.com", Message: "m"}); err != nil {
		t.Fatal(err)
	}

	srv.Stop(t)
	if err := db.Ping(ctx); app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Errorf("Ping with the server down = %v, want EUNAVAILABLE", err)
	}
	err := db.CreateContact(ctx, &app.Contact{Name: "during", Email: "b@example.com", Message: "m"},
		app.NewJob(app.JobIndexContact, app.ContactPayload{}))
	if app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Errorf("CreateContact with the server down = %v, want EUNAVAILABLE", err)
	}
	if _, err := db.ClaimJobs(ctx, 1, time.Minute); app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Errorf("ClaimJobs with the server down = %v, want EUNAVAILABLE", err)
	}
	if _, err := x.SearchDocuments(ctx, app.SearchQuery{Q: "x", Limit: 1}); app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Errorf("SearchDocuments with the server down = %v, want EUNAVAILABLE", err)
	}
	if msg := app.ErrorMessage(err); msg != "database is unavailable" {
		t.Errorf("user-facing message %q leaks more than the backend's name", msg)
	}

	srv.Start(t)
	waitPing(t, db)
	c := &app.Contact{Name: "after", Email: "c@example.com", Message: "m"}
	if err := db.CreateContact(ctx, c); err != nil {
		t.Fatalf("CreateContact after restart: %v", err)
	}
	got, total, err := db.Contacts(ctx, app.ContactFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if total != 2 || got[0].Name != "after" || got[1].Name != "before" {
		t.Errorf("after restart Contacts = %d (%v), want only before and after", total, got)
	}
	if n, err := db.PendingJobs(ctx); err != nil || n != 0 {
		t.Errorf("PendingJobs = %d, %v; want 0 (the failed write's job must not exist)", n, err)
	}
}

// TestDownAtStart opens a DB while the server is stopped: Open succeeds so
// the app can start, Ping says the database is down, and the migrations
// run once the server is up.
func TestDownAtStart(t *testing.T) {
	srv := testserver.StartPostgres(t)
	url := srv.NewDatabase(t)
	srv.Stop(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatalf("Open with the server down = %v, want a DB that reports it", err)
	}
	defer db.Close()
	if err := db.Ping(ctx); app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Errorf("Ping = %v, want EUNAVAILABLE", err)
	}
	srv.Start(t)
	waitPing(t, db)
	if err := db.CreateContact(ctx, &app.Contact{Name: "n", Email: "e@example.com", Message: "m"}); err != nil {
		t.Fatalf("CreateContact once the server is up: %v", err)
	}
}

// TestBadURL checks that a malformed URL is refused without echoing it,
// since it may hold the password.
func TestBadURL(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://user:s3cret@host:notaport/db")
	if err == nil {
		t.Fatal("Open(bad URL) succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the password", err)
	}
}

// waitPing polls Ping: pooled connections the restart cut are replaced on
// use, so the first calls after a restart may still fail.
func waitPing(t *testing.T, db *postgres.DB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := db.Ping(t.Context())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPruneDoneJobs deletes only jobs done long enough ago.
func TestPruneDoneJobs(t *testing.T) {
	db := open(t)
	ctx := t.Context()
	c := &app.Contact{Name: "n", Email: "e@example.com", Message: "m"}
	if err := db.CreateContact(ctx, c, app.NewJob(app.JobIndexContact, app.ContactPayload{}),
		app.NewJob(app.JobNotifyContact, app.ContactPayload{})); err != nil {
		t.Fatal(err)
	}
	jobs, err := db.ClaimJobs(ctx, 1, time.Minute)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("ClaimJobs = %v, %v", jobs, err)
	}
	if err := db.CompleteJob(ctx, jobs[0].ID); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PruneDoneJobs(ctx, time.Hour); err != nil || n != 0 {
		t.Errorf("PruneDoneJobs(1h) right after = %d, %v; want 0", n, err)
	}
	time.Sleep(10 * time.Millisecond)
	if n, err := db.PruneDoneJobs(ctx, time.Millisecond); err != nil || n != 1 {
		t.Errorf("PruneDoneJobs(1ms) = %d, %v; want the done job", n, err)
	}
	if n, err := db.PendingJobs(ctx); err != nil || n != 1 {
		t.Errorf("PendingJobs = %d, %v; want the job not done", n, err)
	}
}
