package fsblob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"selfhost.dev/edgeapp/app"
)

var _ app.BlobLister = (*Store)(nil)

// ListBlobs calls fn for every file under prefix (a key prefix ending in
// "/", or "" for all) with its modification time. Temp files of writes in
// progress or cut by a crash are not keys and are skipped. A missing
// prefix directory lists nothing.
func (s *Store) ListBlobs(ctx context.Context, prefix string, fn func(key string, modTime time.Time) error) error {
	root := s.dir
	if prefix != "" {
		if !strings.HasSuffix(prefix, "/") {
			return app.Errorf(app.EINVALID, "list prefix %q must end with /", prefix)
		}
		p, err := s.path(strings.TrimSuffix(prefix, "/"))
		if err != nil {
			return err
		}
		root = p
	}
	err := filepath.WalkDir(root, func(name string, de fs.DirEntry, err error) error {
		if err != nil {
			if name == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if de.IsDir() || !de.Type().IsRegular() || strings.HasPrefix(de.Name(), tempPrefix) {
			return nil
		}
		info, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed since the directory was read
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(s.dir, name)
		if err != nil {
			return err
		}
		return fn(filepath.ToSlash(rel), info.ModTime())
	})
	if err != nil {
		return fmt.Errorf("list blobs %q: %w", prefix, err)
	}
	return nil
}
