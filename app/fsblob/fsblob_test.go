package fsblob_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/apptest"
	"selfhost.dev/edgeapp/app/fsblob"
)

func newStore(t *testing.T) (*fsblob.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := fsblob.New(dir + "/blobs")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, dir
}

func TestBlobStore(t *testing.T) {
	apptest.TestBlobStore(t, func(t *testing.T) app.BlobStore {
		s, dir := newStore(t)
		t.Cleanup(func() { noTempFiles(t, dir) })
		return s
	})
}

// noTempFiles fails t if a Put left a temp file behind.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	err := walk(dir, func(name string) {
		if strings.Contains(name, "/.put-") {
			t.Errorf("temp file left behind: %s", name)
		}
	})
	if err != nil {
		t.Error(err)
	}
}

func walk(dir string, fn func(string)) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := dir + "/" + e.Name()
		fn(name)
		if e.IsDir() {
			if err := walk(name, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestBadKeys(t *testing.T) {
	s, dir := newStore(t)
	os.WriteFile(dir+"/secret", []byte("outside the store"), 0o600)
	for _, key := range []string{
		"", "/etc/passwd", "../secret", "a/../../secret", "a/..", "..", ".", "./a", "a//b", "a/", `a\b`, `..\secret`,
		"a\x00b", ".put-123", "a/.put-x", strings.Repeat("x", 1025),
	} {
		ctx := t.Context()
		if err := s.Put(ctx, key, strings.NewReader("x"), 1, "text/plain"); app.ErrorCode(err) != app.EINVALID {
			t.Errorf("Put(%q) = %v, want EINVALID", key, err)
		}
		if _, err := s.Get(ctx, key); app.ErrorCode(err) != app.EINVALID {
			t.Errorf("Get(%q) = %v, want EINVALID", key, err)
		}
		if err := s.Delete(ctx, key); app.ErrorCode(err) != app.EINVALID {
			t.Errorf("Delete(%q) = %v, want EINVALID", key, err)
		}
	}
	if b, err := os.ReadFile(dir + "/secret"); err != nil || string(b) != "outside the store" {
		t.Errorf("file outside the store changed: %q, %v", b, err)
	}
}

func TestCancelledPut(t *testing.T) {
	s, dir := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, "k", strings.NewReader("body"), 4, "text/plain"); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
	if _, err := s.Get(t.Context(), "k"); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("Get after a cancelled Put = %v, want ENOTFOUND", err)
	}
	noTempFiles(t, dir)
}

func TestSizeMismatch(t *testing.T) {
	s, dir := newStore(t)
	for _, size := range []int64{3, 5} {
		if err := s.Put(t.Context(), "k", strings.NewReader("four"), size, "text/plain"); err == nil {
			t.Errorf("Put of 4 bytes declared as %d succeeded", size)
		}
	}
	if _, err := s.Get(t.Context(), "k"); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("Get after failed Puts = %v, want ENOTFOUND", err)
	}
	noTempFiles(t, dir)
}

func TestFileAsDirectory(t *testing.T) {
	s, _ := newStore(t)
	if err := s.Put(t.Context(), "file", strings.NewReader("x"), 1, "text/plain"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), "file/below"); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("Get(file/below) = %v, want ENOTFOUND", err)
	}
	if err := s.Delete(t.Context(), "file/below"); err != nil {
		t.Errorf("Delete(file/below) = %v, want nil", err)
	}
}

func TestGetDirectory(t *testing.T) {
	s, _ := newStore(t)
	if err := s.Put(t.Context(), "dir/file", strings.NewReader("x"), 1, "text/plain"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), "dir"); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("Get(a directory) = %v, want ENOTFOUND", err)
	}
}

func TestPing(t *testing.T) {
	s, dir := newStore(t)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	os.RemoveAll(dir + "/blobs")
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping succeeded with the directory gone")
	}
}
