package apptest

import (
	"context"
	"encoding/json"
	"errors"
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

func newDocument(i int) *app.Document {
	return &app.Document{
		Filename:     fmt.Sprintf("report-%d.pdf", i),
		DocumentType: "report",
		ContentType:  "application/pdf",
		Size:         int64(1000 + i),
		SHA256:       fmt.Sprintf("%064x", i),
		StoragePath:  fmt.Sprintf("documents/%d.pdf", i),
	}
}

func mustCreateDocument(t *testing.T, s app.Store, d *app.Document, jobs ...*app.Job) {
	t.Helper()
	if err := s.CreateDocument(t.Context(), d, jobs...); err != nil {
		t.Fatalf("CreateDocument: %v", err)
	}
	if d.ID == 0 {
		t.Fatal("CreateDocument did not set ID")
	}
	if d.CreatedAt.IsZero() {
		t.Fatal("CreateDocument did not set CreatedAt")
	}
}

func sameDocument(a, b *app.Document) bool {
	return a.ID == b.ID && a.Filename == b.Filename && a.DocumentType == b.DocumentType &&
		a.ContentType == b.ContentType && a.Size == b.Size && a.SHA256 == b.SHA256 &&
		a.StoragePath == b.StoragePath && sameTime(a.CreatedAt, b.CreatedAt)
}

func testDocuments(t *testing.T, s app.Store) {
	d := newDocument(1)
	d.Filename = "Ünïcode naïve résumé (final).pdf"
	mustCreateDocument(t, s, d, app.NewJob(app.JobIndexDocument, app.DocumentPayload{}))
	got, err := s.Document(t.Context(), d.ID)
	if err != nil {
		t.Fatalf("Document(%d): %v", d.ID, err)
	}
	if !sameDocument(got, d) {
		t.Errorf("Document(%d) = %+v, want %+v", d.ID, got, d)
	}
	_, err = s.Document(t.Context(), d.ID+1000)
	wantCode(t, "Document(missing)", err, app.ENOTFOUND)
	if n := pending(t, s); n != 1 {
		t.Errorf("PendingJobs = %d, want 1", n)
	}
	for _, j := range claim(t, s, 10, time.Minute) {
		var p app.DocumentPayload
		if err := json.Unmarshal(j.Payload, &p); err != nil || p.DocumentID != d.ID {
			t.Errorf("%s job payload %s (%v): want the new document's id %d (app.SetRowID)", j.Kind, j.Payload, err, d.ID)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.CreateDocument(ctx, newDocument(2), app.NewJob(app.JobIndexDocument, app.DocumentPayload{})); err == nil {
		t.Fatal("CreateDocument with a cancelled context succeeded")
	}
	if n := pending(t, s); n != 1 {
		t.Errorf("after a failed CreateDocument, PendingJobs = %d, want 1", n)
	}
}

func testDocumentsByID(t *testing.T, s app.Store) {
	var ds []*app.Document
	for i := range 5 {
		d := newDocument(i)
		mustCreateDocument(t, s, d)
		ds = append(ds, d)
	}
	got, err := s.DocumentsByID(t.Context(), []int64{ds[4].ID, ds[1].ID, ds[4].ID + 1000, ds[1].ID})
	if err != nil {
		t.Fatalf("DocumentsByID: %v", err)
	}
	if len(got) != 2 {
		t.Errorf("DocumentsByID returned %d documents, want 2", len(got))
	}
	for _, d := range []*app.Document{ds[4], ds[1]} {
		if g := got[d.ID]; g == nil || !sameDocument(g, d) {
			t.Errorf("DocumentsByID()[%d] = %+v, want %+v", d.ID, g, d)
		}
	}
	for _, ids := range [][]int64{nil, {}, {ds[4].ID + 1000}} {
		got, err := s.DocumentsByID(t.Context(), ids)
		if err != nil {
			t.Fatalf("DocumentsByID(%v): %v", ids, err)
		}
		if len(got) != 0 {
			t.Errorf("DocumentsByID(%v) = %v, want none", ids, got)
		}
	}
	many := make([]int64, 0, 1000)
	for i := range 1000 {
		many = append(many, ds[0].ID+int64(i))
	}
	got, err = s.DocumentsByID(t.Context(), many)
	if err != nil {
		t.Fatalf("DocumentsByID(1000 ids): %v", err)
	}
	if len(got) != 5 {
		t.Errorf("DocumentsByID(1000 ids) returned %d documents, want 5", len(got))
	}
}

func testDeleteDocument(t *testing.T, s app.Store) {
	d, keep := newDocument(1), newDocument(2)
	mustCreateDocument(t, s, d)
	mustCreateDocument(t, s, keep)
	del := app.NewJob(app.JobDeleteDocument, app.DocumentPayload{DocumentID: d.ID, StoragePath: d.StoragePath})
	if err := s.DeleteDocument(t.Context(), d.ID, del); err != nil {
		t.Fatalf("DeleteDocument: %v", err)
	}
	_, err := s.Document(t.Context(), d.ID)
	wantCode(t, "Document(deleted)", err, app.ENOTFOUND)
	if _, err := s.Document(t.Context(), keep.ID); err != nil {
		t.Errorf("Document(other): %v", err)
	}
	jobs := claim(t, s, 10, time.Minute)
	if len(jobs) != 1 || jobs[0].Kind != app.JobDeleteDocument {
		t.Fatalf("after DeleteDocument, claimed %d jobs (%v), want the delete job", len(jobs), jobs)
	}
	var p app.DocumentPayload
	if err := json.Unmarshal(jobs[0].Payload, &p); err != nil || p.DocumentID != d.ID || p.StoragePath != d.StoragePath {
		t.Errorf("delete job payload %s (%v), want document %d at %q", jobs[0].Payload, err, d.ID, d.StoragePath)
	}

	again := app.NewJob(app.JobDeleteDocument, app.DocumentPayload{DocumentID: d.ID})
	err = s.DeleteDocument(t.Context(), d.ID, again)
	wantCode(t, "DeleteDocument(deleted)", err, app.ENOTFOUND)
	if n := pending(t, s); n != 1 {
		t.Errorf("a failed DeleteDocument stored its job: PendingJobs = %d, want 1", n)
	}
}

func testClaimOrder(t *testing.T, s app.Store) {
	want := []int64{101, 102, 103} // payloads in the order their jobs must be claimed
	for i, id := range want {
		mustCreateContact(t, s, newContact(i), app.NewJob(app.JobIndexContact, app.ContactPayload{ContactID: id}))
	}
	jobs := claim(t, s, 2, time.Minute)
	jobs = append(jobs, claim(t, s, 10, time.Minute)...)
	if len(jobs) != 3 {
		t.Fatalf("claimed %d jobs, want 3", len(jobs))
	}
	var got []int64
	for i, j := range jobs {
		got = append(got, contactID(t, j))
		if j.Kind != app.JobIndexContact {
			t.Errorf("job %d kind %q, want %q", j.ID, j.Kind, app.JobIndexContact)
		}
		if j.Attempts != 1 {
			t.Errorf("first claim of job %d: Attempts = %d, want 1", j.ID, j.Attempts)
		}
		if j.ID == 0 || i > 0 && j.ID <= jobs[i-1].ID {
			t.Errorf("job ids %d then %d: want increasing", jobs[max(i-1, 0)].ID, j.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("claimed jobs for contacts %v, want oldest first %v", got, want)
	}
	if more := claim(t, s, 10, time.Minute); len(more) != 0 {
		t.Errorf("claimed %d more jobs while all are leased", len(more))
	}
	if n := pending(t, s); n != 3 {
		t.Errorf("PendingJobs = %d, want 3 (leased jobs are pending)", n)
	}
}

func testClaimLease(t *testing.T, s app.Store) {
	mustCreateContact(t, s, newContact(1), app.NewJob(app.JobNotifyContact, app.ContactPayload{ContactID: 7}))
	const lease = 500 * time.Millisecond
	start := time.Now()
	first := claim(t, s, 10, lease)
	if len(first) != 1 {
		t.Fatalf("claimed %d jobs, want 1", len(first))
	}
	again := claim(t, s, 10, lease)
	if time.Since(start) < lease && len(again) != 0 { // a slow machine may outrun the lease
		t.Fatalf("a leased job was claimed again before its lease ended")
	}
	var j *app.Job
	eventually(t, func() error {
		jobs := claim(t, s, 10, time.Minute)
		if len(jobs) == 0 {
			return errors.New("a job whose lease ended was not claimable again")
		}
		j = jobs[0]
		return nil
	})
	if j.ID != first[0].ID || j.Attempts != 2 || contactID(t, j) != 7 {
		t.Errorf("reclaimed job %d with %d attempts and payload %s, want job %d, 2 attempts, contact 7",
			j.ID, j.Attempts, j.Payload, first[0].ID)
	}
	if err := s.CompleteJob(t.Context(), j.ID); err != nil {
		t.Fatalf("CompleteJob: %v", err)
	}
}

func testCompleteOnce(t *testing.T, s app.Store) {
	mustCreateContact(t, s, newContact(1), contactJobs(1)...)
	jobs := claim(t, s, 10, 50*time.Millisecond)
	if len(jobs) != 2 {
		t.Fatalf("claimed %d jobs, want 2", len(jobs))
	}
	if err := s.CompleteJob(t.Context(), jobs[0].ID); err != nil {
		t.Fatalf("CompleteJob: %v", err)
	}
	wantCode(t, "second CompleteJob", s.CompleteJob(t.Context(), jobs[0].ID), app.ENOTFOUND)
	wantCode(t, "CompleteJob(missing)", s.CompleteJob(t.Context(), jobs[1].ID+1000), app.ENOTFOUND)
	wantCode(t, "RetryJob(done)", s.RetryJob(t.Context(), jobs[0].ID, time.Now(), "late worker"), app.ENOTFOUND)
	wantCode(t, "RetryJob(missing)", s.RetryJob(t.Context(), jobs[1].ID+1000, time.Now(), "x"), app.ENOTFOUND)
	if n := pending(t, s); n != 1 {
		t.Errorf("PendingJobs = %d, want 1", n)
	}
	// Once the short lease ends only the job not done comes back.
	eventually(t, func() error {
		got := claim(t, s, 10, time.Minute)
		if len(got) == 0 {
			return errors.New("the job not completed did not come back after its lease")
		}
		if len(got) != 1 || got[0].ID != jobs[1].ID {
			return fmt.Errorf("claimed %v, want only job %d (job %d is done)", got, jobs[1].ID, jobs[0].ID)
		}
		return nil
	})
	if err := s.CompleteJob(t.Context(), jobs[1].ID); err != nil {
		t.Fatalf("CompleteJob: %v", err)
	}
	if n := pending(t, s); n != 0 {
		t.Errorf("PendingJobs = %d, want 0", n)
	}
}

func testRetry(t *testing.T, s app.Store) {
	mustCreateContact(t, s, newContact(1), app.NewJob(app.JobNotifyContact, app.ContactPayload{ContactID: 1}))
	mustCreateContact(t, s, newContact(2), app.NewJob(app.JobNotifyContact, app.ContactPayload{ContactID: 2}))
	jobs := claim(t, s, 10, time.Minute)
	if len(jobs) != 2 {
		t.Fatalf("claimed %d jobs, want 2", len(jobs))
	}
	later, soon := jobs[0], jobs[1]
	if err := s.RetryJob(t.Context(), later.ID, time.Now().Add(time.Hour), "mail server down"); err != nil {
		t.Fatalf("RetryJob: %v", err)
	}
	start := time.Now()
	const delay = 500 * time.Millisecond
	if err := s.RetryJob(t.Context(), soon.ID, start.Add(delay), "timeout"); err != nil {
		t.Fatalf("RetryJob: %v", err)
	}
	if got := claim(t, s, 10, time.Minute); time.Since(start) < delay && len(got) != 0 {
		t.Fatalf("claimed %d jobs before their RunAt", len(got))
	}
	if n := pending(t, s); n != 2 {
		t.Errorf("PendingJobs = %d, want 2 (jobs waiting to retry are pending)", n)
	}
	var j *app.Job
	eventually(t, func() error {
		got := claim(t, s, 10, time.Minute)
		if len(got) == 0 {
			return errors.New("a retried job was not claimable after its RunAt")
		}
		j = got[0]
		if len(got) != 1 || j.ID != soon.ID {
			return fmt.Errorf("claimed %v, want only job %d (job %d runs in an hour)", got, soon.ID, later.ID)
		}
		return nil
	})
	if j.Attempts != 2 || j.LastError != "timeout" || contactID(t, j) != 2 {
		t.Errorf("retried job: Attempts %d, LastError %q, payload %s; want 2, %q, contact 2",
			j.Attempts, j.LastError, j.Payload, "timeout")
	}
	if j.RunAt.Before(start.Add(delay - time.Millisecond)) {
		t.Errorf("retried job RunAt = %v, want %v", j.RunAt, start.Add(delay))
	}
}

func testConcurrentClaims(t *testing.T, s app.Store) {
	const jobs, workers = 200, 8
	for i := range jobs / 2 {
		mustCreateContact(t, s, newContact(i), contactJobs(int64(i))...)
	}
	var (
		mu   sync.Mutex
		seen = map[int64]int{}
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				got, err := s.ClaimJobs(t.Context(), 5, time.Minute)
				if err != nil {
					t.Errorf("concurrent ClaimJobs: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				for _, j := range got {
					mu.Lock()
					seen[j.ID]++
					mu.Unlock()
					if err := s.CompleteJob(t.Context(), j.ID); err != nil {
						t.Errorf("CompleteJob(%d): %v", j.ID, err)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != jobs {
		t.Errorf("%d workers claimed %d distinct jobs, want %d", workers, len(seen), jobs)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("job %d claimed %d times", id, n)
		}
	}
	if n := pending(t, s); n != 0 {
		t.Errorf("PendingJobs = %d, want 0", n)
	}
}
