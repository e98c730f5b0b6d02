package apptest

import (
	"errors"
	"testing"
	"time"

	"selfhost.dev/edgeapp/app"
)

// The lease contract (app.JobStore's RenewLease and ReclaimJobs), run by
// TestStore:
//   - RenewLease keeps a job hidden from claims past its first lease, for
//     as long as it is renewed.
//   - A renewal names the claim (ID and Attempts): once the job has been
//     claimed again, released with RetryJob or completed, the old claim's
//     renewal is ENOTFOUND and changes nothing.
//   - ReclaimJobs makes every leased job claimable at once, counts the
//     leases it ended, and leaves done and waiting (RunAt in the future)
//     jobs as they are.

func testRenewLease(t *testing.T, s app.Store) {
	mustCreateContact(t, s, newContact(1), app.NewJob(app.JobNotifyContact, app.ContactPayload{ContactID: 1}))
	const lease = 300 * time.Millisecond
	jobs := claim(t, s, 10, lease)
	if len(jobs) != 1 {
		t.Fatalf("claimed %d jobs, want 1", len(jobs))
	}
	j := jobs[0]
	// Renew for a minute, then wait past the first lease: the job must
	// stay hidden.
	if err := s.RenewLease(t.Context(), j.ID, j.Attempts, time.Minute); err != nil {
		t.Fatalf("RenewLease: %v", err)
	}
	time.Sleep(2 * lease)
	if got := claim(t, s, 10, time.Minute); len(got) != 0 {
		t.Fatalf("a renewed lease was claimed by another worker after the first lease ended: %v", got)
	}
	// A lease that ran out but that nobody claimed is still the holder's.
	if err := s.RenewLease(t.Context(), j.ID, j.Attempts, time.Millisecond); err != nil {
		t.Fatalf("RenewLease (short): %v", err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := s.RenewLease(t.Context(), j.ID, j.Attempts, time.Minute); err != nil {
		t.Errorf("RenewLease of a lapsed lease nobody claimed: %v, want nil", err)
	}
	if err := s.CompleteJob(t.Context(), j.ID); err != nil {
		t.Fatalf("CompleteJob: %v", err)
	}
	wantCode(t, "RenewLease(done)", s.RenewLease(t.Context(), j.ID, j.Attempts, time.Minute), app.ENOTFOUND)
	wantCode(t, "RenewLease(missing)", s.RenewLease(t.Context(), j.ID+1000, 1, time.Minute), app.ENOTFOUND)
	if n := pending(t, s); n != 0 {
		t.Errorf("a renewal of a done job changed it: PendingJobs = %d, want 0", n)
	}
}

func testRenewLeaseLost(t *testing.T, s app.Store) {
	mustCreateContact(t, s, newContact(1), app.NewJob(app.JobNotifyContact, app.ContactPayload{ContactID: 1}))
	jobs := claim(t, s, 10, 50*time.Millisecond)
	if len(jobs) != 1 {
		t.Fatalf("claimed %d jobs, want 1", len(jobs))
	}
	old := jobs[0]
	// The lease runs out and another worker claims the job.
	var taken *app.Job
	eventually(t, func() error {
		got := claim(t, s, 10, time.Minute)
		if len(got) == 0 {
			return errors.New("a job whose lease ended was not claimable again")
		}
		taken = got[0]
		return nil
	})
	wantCode(t, "RenewLease by the claim that lost the job", s.RenewLease(t.Context(), old.ID, old.Attempts, time.Hour), app.ENOTFOUND)
	if err := s.RenewLease(t.Context(), taken.ID, taken.Attempts, 50*time.Millisecond); err != nil {
		t.Fatalf("RenewLease by the new holder: %v", err)
	}
	// The new holder hands it back: its own old claim can no longer renew.
	if err := s.RetryJob(t.Context(), taken.ID, time.Now(), "handed back"); err != nil {
		t.Fatalf("RetryJob: %v", err)
	}
	wantCode(t, "RenewLease after RetryJob", s.RenewLease(t.Context(), taken.ID, taken.Attempts, time.Hour), app.ENOTFOUND)
	if got := claim(t, s, 10, time.Minute); len(got) != 1 || got[0].Attempts != 3 {
		t.Errorf("after a refused renewal and a retry, claimed %v, want the job with 3 attempts", got)
	}
}

func testReclaimJobs(t *testing.T, s app.Store) {
	for i := range 4 {
		mustCreateContact(t, s, newContact(i), app.NewJob(app.JobNotifyContact, app.ContactPayload{ContactID: int64(i)}))
	}
	jobs := claim(t, s, 10, time.Hour)
	if len(jobs) != 4 {
		t.Fatalf("claimed %d jobs, want 4", len(jobs))
	}
	// One done, one waiting an hour to retry, two still leased (their
	// worker died).
	if err := s.CompleteJob(t.Context(), jobs[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RetryJob(t.Context(), jobs[1].ID, time.Now().Add(time.Hour), "later"); err != nil {
		t.Fatal(err)
	}
	n, err := s.ReclaimJobs(t.Context())
	if err != nil {
		t.Fatalf("ReclaimJobs: %v", err)
	}
	if n != 2 {
		t.Errorf("ReclaimJobs ended %d leases, want 2", n)
	}
	got := claim(t, s, 10, time.Minute)
	if len(got) != 2 || got[0].ID != jobs[2].ID || got[1].ID != jobs[3].ID {
		t.Fatalf("after ReclaimJobs claimed %v, want jobs %d and %d at once", got, jobs[2].ID, jobs[3].ID)
	}
	if got[0].Attempts != 2 {
		t.Errorf("reclaimed job has %d attempts, want 2 (the interrupted one counts)", got[0].Attempts)
	}
	wantCode(t, "RenewLease by the dead worker's claim", s.RenewLease(t.Context(), jobs[2].ID, jobs[2].Attempts, time.Hour), app.ENOTFOUND)
	if n := pending(t, s); n != 3 {
		t.Errorf("PendingJobs = %d, want 3", n)
	}
	if n, err := s.ReclaimJobs(t.Context()); err != nil || n != 2 {
		t.Errorf("second ReclaimJobs = %d, %v; want 2 (the new claims), nil", n, err)
	}
}
