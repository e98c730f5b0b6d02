package app

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// heartbeat renews the leases of one claimed batch while the worker runs
// it, so that leases can be short: a dead worker's jobs come back within
// one lease, and a slow but live one keeps its jobs however long they take.
//
// Every job of the batch is renewed, not only the running one, since the
// jobs waiting their turn are leased too. A renewal that ENOTFOUND refuses
// means the job was claimed again by another worker (our lease ran out:
// this process stalled, or could not reach the database for a whole
// lease), handed back, or done. The job is then marked lost: if it is
// running, its context is cancelled, since the worker that took it runs it
// too; if it waits, it is skipped; either way this worker records no
// outcome but a success, so that it cannot end the new holder's lease
// with a retry. A renewal that fails otherwise (the database is down) is
// logged and tried again at the next beat: the job keeps running, and if
// the lease runs out meanwhile, another worker may run it at the same time
// (see README, "The outbox after a crash").
type heartbeat struct {
	w        *Worker
	lease    time.Duration
	interval time.Duration

	mu   sync.Mutex
	held map[int64]*heldJob

	stopc chan struct{}
	done  chan struct{}
}

// heldJob is one claim the heartbeat keeps alive.
type heldJob struct {
	attempts int
	end      time.Time          // when the lease ends if not renewed again, on this process's clock
	lost     bool               // a renewal was refused: another worker may hold it
	settling bool               // its outcome is being recorded; a refusal then is expected
	cancel   context.CancelFunc // cancels the running job; nil while it waits
}

// startHeartbeat starts renewing jobs, claimed at claimedAt for lease.
func (w *Worker) startHeartbeat(ctx context.Context, jobs []*Job, claimedAt time.Time, lease time.Duration) *heartbeat {
	hb := &heartbeat{
		w: w, lease: lease, interval: w.heartbeatInterval(lease),
		held:  make(map[int64]*heldJob, len(jobs)),
		stopc: make(chan struct{}), done: make(chan struct{}),
	}
	for _, j := range jobs {
		hb.held[j.ID] = &heldJob{attempts: j.Attempts, end: claimedAt.Add(lease)}
	}
	go hb.run(ctx)
	return hb
}

// heartbeatInterval is Heartbeat, or a third of the lease if Heartbeat is
// zero or not shorter than the lease (a beat per lease would let every
// lease lapse before it is renewed).
func (w *Worker) heartbeatInterval(lease time.Duration) time.Duration {
	if w.Heartbeat > 0 && w.Heartbeat < lease {
		return w.Heartbeat
	}
	return max(lease/3, time.Millisecond)
}

func (hb *heartbeat) run(ctx context.Context) {
	defer close(hb.done)
	t := time.NewTicker(hb.interval)
	defer t.Stop()
	for {
		select {
		case <-hb.stopc:
			return
		case <-t.C:
			hb.beat(ctx)
		}
	}
}

// beat renews every job still held.
func (hb *heartbeat) beat(ctx context.Context) {
	type claim struct {
		id       int64
		attempts int
	}
	hb.mu.Lock()
	claims := make([]claim, 0, len(hb.held))
	for id, h := range hb.held {
		if !h.lost {
			claims = append(claims, claim{id, h.attempts})
		}
	}
	hb.mu.Unlock()
	for _, c := range claims {
		select {
		case <-hb.stopc:
			return
		default:
		}
		// A hard Stop cancels ctx, but the job still runs until it sees
		// that: keep its lease meanwhile.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hb.interval)
		start := time.Now()
		err := hb.w.Store.RenewLease(rctx, c.id, c.attempts, hb.lease)
		cancel()
		hb.mu.Lock()
		h := hb.held[c.id]
		switch {
		case h == nil: // settled meanwhile
		case err == nil:
			h.end = start.Add(hb.lease)
		case ErrorCode(err) == ENOTFOUND:
			h.lost = true
			if h.cancel != nil {
				h.cancel()
			}
			if !h.settling {
				hb.w.log(ctx, slog.LevelWarn, "outbox job lease lost: another worker may have taken it; this one stops it and records nothing",
					slog.Int64("job_id", c.id), slog.Int("attempts", c.attempts))
			}
		default:
			hb.w.log(ctx, slog.LevelWarn, "renew outbox job lease", slog.Int64("job_id", c.id),
				slog.Time("lease_ends", h.end), slog.Any("error", err))
		}
		hb.mu.Unlock()
	}
}

// running marks a job as running with cancel, and returns false if its
// lease is already lost (the job must not run).
func (hb *heartbeat) running(id int64, cancel context.CancelFunc) bool {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	h := hb.held[id]
	if h == nil || h.lost {
		return false
	}
	h.cancel = cancel
	return true
}

// settling says the job ran and its outcome is being recorded, and
// reports whether its lease was lost meanwhile.
func (hb *heartbeat) settling(id int64) (lost bool) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	h := hb.held[id]
	if h == nil {
		return true
	}
	h.settling, h.cancel = true, nil
	return h.lost
}

// leaseEnd is when the job's lease ends if it is not renewed again, or
// the zero time if it is lost.
func (hb *heartbeat) leaseEnd(id int64) time.Time {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if h := hb.held[id]; h != nil && !h.lost {
		return h.end
	}
	return time.Time{}
}

// drop stops renewing a job whose outcome is recorded.
func (hb *heartbeat) drop(id int64) {
	hb.mu.Lock()
	delete(hb.held, id)
	hb.mu.Unlock()
}

// stop ends the heartbeat and waits for a beat in progress.
func (hb *heartbeat) stop() {
	close(hb.stopc)
	<-hb.done
}
