package apptest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"selfhost.dev/edgeapp/app"
)

// The Store contract for the outbox: claim order, leases, completion, retries, concurrent workers.

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
