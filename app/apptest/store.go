package apptest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"selfhost.dev/edgeapp/app"
)

// TestStore runs the app.Store contract against the stores open returns;
// each call must return a fresh, empty store.
//
// The contract, beyond the interface's doc comments:
//   - CreateContact and CreateDocument fill in ID (increasing) and CreatedAt
//     (set to now if zero; read back within a millisecond, since PostgreSQL
//     keeps microseconds), and a zero contact_id/document_id in their jobs'
//     payloads (app.SetRowID).
//   - Contacts lists newest first (ties broken by id, descending).
//   - Jobs created with a zero RunAt are claimable at once; claims return
//     jobs oldest first by RunAt, then by id.
//   - Payloads round-trip as JSON values, not bytes (jsonb reformats them).
//   - RetryJob and CompleteJob on a job that is done (or never existed)
//     return ENOTFOUND and change nothing, so a worker whose lease ran out
//     cannot undo another worker's completion.
//
// Persistence across a reopen is the adapter's own test: only it knows how
// to reopen.
func TestStore(t *testing.T, open func(t *testing.T) app.Store) {
	t.Run("Ping", func(t *testing.T) {
		if err := open(t).Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("CreateContact", func(t *testing.T) { testCreateContact(t, open(t)) })
	t.Run("CreateContactCancelled", func(t *testing.T) { testCreateContactCancelled(t, open(t)) })
	t.Run("ContactsPaging", func(t *testing.T) { testContactsPaging(t, open(t)) })
	t.Run("ContactsIDs", func(t *testing.T) { testContactsIDs(t, open(t)) })
	t.Run("ParallelContacts", func(t *testing.T) { testParallelContacts(t, open(t)) })
	t.Run("Documents", func(t *testing.T) { testDocuments(t, open(t)) })
	t.Run("DocumentsByID", func(t *testing.T) { testDocumentsByID(t, open(t)) })
	t.Run("DeleteDocument", func(t *testing.T) { testDeleteDocument(t, open(t)) })
	t.Run("TextStatus", func(t *testing.T) { testTextStatus(t, open(t)) })
	t.Run("DocumentStoragePaths", func(t *testing.T) { testDocumentStoragePaths(t, open(t)) })
	t.Run("ClaimOrder", func(t *testing.T) { testClaimOrder(t, open(t)) })
	t.Run("ClaimLease", func(t *testing.T) { testClaimLease(t, open(t)) })
	t.Run("CompleteOnce", func(t *testing.T) { testCompleteOnce(t, open(t)) })
	t.Run("Retry", func(t *testing.T) { testRetry(t, open(t)) })
	t.Run("ConcurrentClaims", func(t *testing.T) { testConcurrentClaims(t, open(t)) })
	t.Run("RenewLease", func(t *testing.T) { testRenewLease(t, open(t)) })
	t.Run("RenewLeaseLost", func(t *testing.T) { testRenewLeaseLost(t, open(t)) })
	t.Run("ReclaimJobs", func(t *testing.T) { testReclaimJobs(t, open(t)) })
}

func newContact(i int) *app.Contact {
	return &app.Contact{
		Name:    fmt.Sprintf("Person %d", i),
		Email:   fmt.Sprintf("person%d@example.com", i),
		Message: fmt.Sprintf("Message number %d — with ünïcode.", i),
	}
}

func contactJobs(id int64) []*app.Job {
	p := app.ContactPayload{ContactID: id}
	return []*app.Job{app.NewJob(app.JobIndexContact, p), app.NewJob(app.JobNotifyContact, p)}
}

func mustCreateContact(t *testing.T, s app.Store, c *app.Contact, jobs ...*app.Job) {
	t.Helper()
	if err := s.CreateContact(t.Context(), c, jobs...); err != nil {
		t.Fatalf("CreateContact: %v", err)
	}
	if c.ID == 0 {
		t.Fatal("CreateContact did not set ID")
	}
	if c.CreatedAt.IsZero() {
		t.Fatal("CreateContact did not set CreatedAt")
	}
}

func wantCode(t *testing.T, what string, err error, code app.Code) {
	t.Helper()
	if got := app.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v has code %q, want %q", what, err, got, code)
	}
}

func sameTime(a, b time.Time) bool {
	d := a.Sub(b)
	return d < time.Millisecond && d > -time.Millisecond
}

func pending(t *testing.T, s app.Store) int {
	t.Helper()
	n, err := s.PendingJobs(t.Context())
	if err != nil {
		t.Fatalf("PendingJobs: %v", err)
	}
	return n
}

func claim(t *testing.T, s app.Store, n int, lease time.Duration) []*app.Job {
	t.Helper()
	jobs, err := s.ClaimJobs(t.Context(), n, lease)
	if err != nil {
		t.Fatalf("ClaimJobs: %v", err)
	}
	return jobs
}

func contactID(t *testing.T, j *app.Job) int64 {
	t.Helper()
	var p app.ContactPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		t.Fatalf("job %d payload %q: %v", j.ID, j.Payload, err)
	}
	return p.ContactID
}

func testCreateContact(t *testing.T, s app.Store) {
	before := time.Now()
	c := newContact(1)
	mustCreateContact(t, s, c, contactJobs(0)...)
	if c.CreatedAt.Before(before.Add(-time.Minute)) || c.CreatedAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("CreatedAt = %v, want about %v", c.CreatedAt, before)
	}
	got, total, err := s.Contacts(t.Context(), app.ContactFilter{Limit: 10})
	if err != nil {
		t.Fatalf("Contacts: %v", err)
	}
	if total != 1 || len(got) != 1 {
		t.Fatalf("Contacts = %d contacts, total %d; want 1, 1", len(got), total)
	}
	g := got[0]
	if g.ID != c.ID || g.Name != c.Name || g.Email != c.Email || g.Message != c.Message || !sameTime(g.CreatedAt, c.CreatedAt) {
		t.Errorf("Contacts returned %+v, want %+v", g, c)
	}
	if n := pending(t, s); n != 2 {
		t.Errorf("PendingJobs = %d, want 2 (the contact's jobs)", n)
	}
	// The jobs were built before the row existed: the store fills in its id.
	for _, j := range claim(t, s, 10, time.Minute) {
		if id := contactID(t, j); id != c.ID {
			t.Errorf("%s job payload %s: contact_id %d, want the new contact's %d (app.SetRowID)", j.Kind, j.Payload, id, c.ID)
		}
	}
}

func testCreateContactCancelled(t *testing.T, s app.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.CreateContact(ctx, newContact(1), contactJobs(0)...); err == nil {
		t.Fatal("CreateContact with a cancelled context succeeded")
	}
	_, total, err := s.Contacts(t.Context(), app.ContactFilter{Limit: 10})
	if err != nil {
		t.Fatalf("Contacts: %v", err)
	}
	if total != 0 {
		t.Errorf("after a failed CreateContact, %d contacts are stored", total)
	}
	if n := pending(t, s); n != 0 {
		t.Errorf("after a failed CreateContact, %d jobs are pending", n)
	}
}

func testContactsPaging(t *testing.T, s app.Store) {
	var ids []int64
	for i := range 5 {
		c := newContact(i)
		mustCreateContact(t, s, c)
		if len(ids) > 0 && c.ID <= ids[len(ids)-1] {
			t.Fatalf("contact ids not increasing: %d after %d", c.ID, ids[len(ids)-1])
		}
		ids = append(ids, c.ID)
	}
	slices.Reverse(ids) // newest first
	for _, tc := range []struct {
		limit, offset int
		want          []int64
	}{
		{2, 0, ids[0:2]},
		{2, 2, ids[2:4]},
		{2, 4, ids[4:5]},
		{10, 0, ids},
		{2, 5, nil},
		{2, 100, nil},
	} {
		got, total, err := s.Contacts(t.Context(), app.ContactFilter{Limit: tc.limit, Offset: tc.offset})
		if err != nil {
			t.Fatalf("Contacts(limit %d, offset %d): %v", tc.limit, tc.offset, err)
		}
		if total != 5 {
			t.Errorf("Contacts(limit %d, offset %d): total %d, want 5", tc.limit, tc.offset, total)
		}
		if g := contactIDs(got); !slices.Equal(g, tc.want) {
			t.Errorf("Contacts(limit %d, offset %d) = ids %v, want %v", tc.limit, tc.offset, g, tc.want)
		}
	}
}

func contactIDs(cs []*app.Contact) []int64 {
	var ids []int64
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

func testContactsIDs(t *testing.T, s app.Store) {
	var cs []*app.Contact
	for i := range 4 {
		c := newContact(i)
		mustCreateContact(t, s, c)
		cs = append(cs, c)
	}
	f := app.ContactFilter{IDs: []int64{cs[0].ID, cs[2].ID, cs[3].ID + 1000}, Limit: 10}
	got, total, err := s.Contacts(t.Context(), f)
	if err != nil {
		t.Fatalf("Contacts(%+v): %v", f, err)
	}
	if want := []int64{cs[2].ID, cs[0].ID}; !slices.Equal(contactIDs(got), want) || total != 2 {
		t.Errorf("Contacts(%+v) = ids %v, total %d; want %v, total 2", f, contactIDs(got), total, want)
	}
	f = app.ContactFilter{IDs: []int64{cs[0].ID, cs[2].ID}, Limit: 1, Offset: 1}
	got, total, err = s.Contacts(t.Context(), f)
	if err != nil {
		t.Fatalf("Contacts(%+v): %v", f, err)
	}
	if want := []int64{cs[0].ID}; !slices.Equal(contactIDs(got), want) || total != 2 {
		t.Errorf("Contacts(%+v) = ids %v, total %d; want %v, total 2", f, contactIDs(got), total, want)
	}
}

func testParallelContacts(t *testing.T, s app.Store) {
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	idc := make(chan int64, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				c := newContact(w*each + i)
				if err := s.CreateContact(t.Context(), c, contactJobs(0)...); err != nil {
					errs <- err
					continue
				}
				idc <- c.ID
			}
		})
	}
	wg.Wait()
	close(errs)
	close(idc)
	for err := range errs {
		t.Errorf("parallel CreateContact: %v", err)
	}
	seen := map[int64]bool{}
	for id := range idc {
		if seen[id] {
			t.Errorf("id %d given to two contacts", id)
		}
		seen[id] = true
	}
	_, total, err := s.Contacts(t.Context(), app.ContactFilter{Limit: 1})
	if err != nil {
		t.Fatalf("Contacts: %v", err)
	}
	if total != workers*each {
		t.Errorf("after %d parallel inserts, %d contacts are stored", workers*each, total)
	}
	if n := pending(t, s); n != 2*workers*each {
		t.Errorf("after %d parallel inserts, %d jobs are pending, want %d", workers*each, n, 2*workers*each)
	}
}
