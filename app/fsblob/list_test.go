package fsblob

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestListBlobs lists keys under a prefix with their times, skips the temp
// files of writes a crash cut, lists nothing under a missing prefix and
// refuses a prefix that escapes the root.
func TestListBlobs(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"documents/a.pdf", "documents/sub/b.txt", "other/c.txt"} {
		if err := s.Put(t.Context(), k, strings.NewReader("x"), 1, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "documents", tempPrefix+"123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	var keys []string
	err = s.ListBlobs(t.Context(), "documents/", func(key string, mod time.Time) error {
		if time.Since(mod) > time.Minute {
			t.Errorf("%s: mod time %v", key, mod)
		}
		keys = append(keys, key)
		return nil
	})
	slices.Sort(keys)
	if err != nil || !slices.Equal(keys, []string{"documents/a.pdf", "documents/sub/b.txt"}) {
		t.Errorf("ListBlobs(documents/) = %v, %v", keys, err)
	}
	if err := s.ListBlobs(t.Context(), "missing/", func(string, time.Time) error { t.Error("called"); return nil }); err != nil {
		t.Errorf("missing prefix: %v", err)
	}
	for _, bad := range []string{"../", "documents", "/etc/"} {
		if err := s.ListBlobs(t.Context(), bad, func(string, time.Time) error { return nil }); err == nil {
			t.Errorf("ListBlobs(%q) accepted", bad)
		}
	}
}
