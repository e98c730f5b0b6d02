package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// BlobLister is implemented by blob stores that can list their keys
// (app/fsblob). The worker uses it to remove staged uploads a crash left
// without a document row; a store without it is not swept.
type BlobLister interface {
	// ListBlobs calls fn for every key under prefix with the time its
	// object was last written, in no particular order, and stops at fn's
	// first error, returning it.
	ListBlobs(ctx context.Context, prefix string, fn func(key string, modTime time.Time) error) error
}

// StoragePathStore is implemented by document stores that can tell which
// blob keys a document row references (app/sqlite, app/postgres).
type StoragePathStore interface {
	// DocumentStoragePaths returns the keys among keys that some document
	// row has as its StoragePath.
	DocumentStoragePaths(ctx context.Context, keys []string) (map[string]bool, error)
}

// sweepBatch is how many keys one DocumentStoragePaths call checks.
const sweepBatch = 200

// SweepStagedMargin is how much older than the start of the worker a blob
// must be for the start sweep to remove it when no row references it. The
// sweep runs while this process already takes uploads, whose staged blobs
// are written after its start; the margin keeps them safe from a clock
// stepped back. An upload cut by a crash in the last minute before it
// stays until the next start.
const SweepStagedMargin = time.Minute

// sweepStaged removes the blobs under documents/ written before cutoff that
// no document row references: the file of an upload staged (StageDocument)
// by a process that died before Commit or Abort. It is only safe when no
// other process can be staging uploads into the same store, so the worker
// runs it only with Reclaim (it owns the database). A blob whose row was
// deleted and whose delete_document job is still pending is removed too;
// the job then finds nothing to delete.
func (w *Worker) sweepStaged(ctx context.Context, cutoff time.Time) {
	lister, ok := w.Blobs.(BlobLister)
	if !ok {
		return
	}
	paths, ok := w.Store.(StoragePathStore)
	if !ok {
		return
	}
	removed, err := sweepOrphans(ctx, lister, paths, w.Blobs, cutoff)
	if err != nil {
		w.log(ctx, slog.LevelWarn, "sweep staged uploads left by a crash", slog.Int("removed", removed), slog.Any("error", err))
		return
	}
	if removed > 0 {
		w.log(ctx, slog.LevelInfo, "removed staged uploads a crash left without a document", slog.Int("blobs", removed))
	}
}

func sweepOrphans(ctx context.Context, lister BlobLister, paths StoragePathStore, blobs BlobStore, cutoff time.Time) (int, error) {
	var batch []string
	removed := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		kept, err := paths.DocumentStoragePaths(ctx, batch)
		if err != nil {
			return fmt.Errorf("document storage paths: %w", err)
		}
		for _, key := range batch {
			if kept[key] {
				continue
			}
			if err := blobs.Delete(ctx, key); err != nil {
				return err
			}
			removed++
		}
		batch = batch[:0]
		return nil
	}
	err := lister.ListBlobs(ctx, "documents/", func(key string, modTime time.Time) error {
		if !modTime.Before(cutoff) {
			return nil
		}
		batch = append(batch, key)
		if len(batch) >= sweepBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return removed, err
}
