// Package fsblob implements app.BlobStore on a directory of local files.
package fsblob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"selfhost.dev/edgeapp/app"
)

// tempPrefix marks files being written; a crash can leave them behind and
// they are never valid keys.
const tempPrefix = ".put-"

// Store keeps each blob as a file under its key, relative to a root
// directory. It implements app.BlobStore.
//
// Put writes to a temp file in the destination's directory, fsyncs it and
// renames it into place, so a reader sees the old file or the whole new
// one, and a failed upload leaves nothing.
type Store struct {
	dir string
}

// New returns a store rooted at dir, creating dir if needed.
func New(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob dir %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("blob dir: %w", err)
	}
	return &Store{dir: abs}, nil
}

// path validates key and returns its file name. A key is a relative,
// slash-separated path with no empty, "." or ".." elements, no
// backslashes, no NUL and no element starting with the temp prefix.
func (s *Store) path(key string) (string, error) {
	bad := key == "" || len(key) > 1024 || strings.ContainsAny(key, "\\\x00") || strings.HasPrefix(key, "/")
	if !bad {
		for _, elem := range strings.Split(key, "/") {
			if elem == "" || elem == "." || elem == ".." || strings.HasPrefix(elem, tempPrefix) {
				bad = true
				break
			}
		}
	}
	if bad {
		return "", app.Errorf(app.EINVALID, "invalid blob key %q", key)
	}
	return filepath.Join(s.dir, filepath.FromSlash(key)), nil
}

// Put streams r into the file for key. If size is not -1 and r holds a
// different number of bytes, Put fails and stores nothing. contentType is
// not kept: the document's row has it.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	name, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
		return fmt.Errorf("put blob %q: %w", key, err)
	}
	f, err := os.CreateTemp(filepath.Dir(name), tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("put blob %q: %w", key, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return fmt.Errorf("put blob %q: %w", key, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("put blob %q: read %d bytes, want %d", key, n, size)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("put blob %q: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("put blob %q: %w", key, err)
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return fmt.Errorf("put blob %q: %w", key, err)
	}
	ok = true
	syncDir(filepath.Dir(name)) // make the rename itself durable
	return nil
}

// Get opens the file for key.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	name, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, app.Errorf(app.ENOTFOUND, "blob %q not found", key)
	}
	if err != nil {
		return nil, fmt.Errorf("get blob %q: %w", key, err)
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, app.Errorf(app.ENOTFOUND, "blob %q not found", key)
	}
	return f, nil
}

// Delete removes the file for key; a missing file is not an error. Empty
// parent directories are left in place: another Put may be about to use them.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("delete blob %q: %w", key, err)
	}
	return nil
}

// Ping checks that the root directory exists and is writable.
func (s *Store) Ping(ctx context.Context) error {
	f, err := os.CreateTemp(s.dir, tempPrefix+"ping-*")
	if err != nil {
		return fmt.Errorf("ping blob dir: %w", err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// syncDir fsyncs a directory so that a rename in it survives a crash. It is
// best effort: some file systems do not support it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// ctxReader stops a copy once ctx is done, so that a cancelled request
// does not keep writing a large upload.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

var _ app.BlobStore = (*Store)(nil)
