package apptest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"

	"selfhost.dev/edgeapp/app"
)

// TestBlobStore runs the app.BlobStore contract against the stores open
// returns; each call must return a fresh, empty store.
//
// Bodies are several MiB and come from a plain io.Reader (no Seek, no
// WriterTo, no Len), so an adapter that buffers or sniffs its input whole
// is caught by its memory profile rather than by luck. A reader that fails
// midway must leave nothing new stored and keep what was stored before.
func TestBlobStore(t *testing.T, open func(t *testing.T) app.BlobStore) {
	t.Run("Ping", func(t *testing.T) {
		if err := open(t).Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		const size int64 = 3<<20 + 12345
		for _, tc := range []struct {
			key  string
			size int64
		}{
			{"known-size.bin", size},
			{"unknown-size.bin", -1},
			{"nested/dir/2026/file.pdf", size},
			{"empty.txt", 0},
		} {
			n := size
			if tc.size == 0 {
				n = 0
			}
			if err := s.Put(t.Context(), tc.key, patternReader(n, 1), tc.size, "application/octet-stream"); err != nil {
				t.Fatalf("Put(%q, size %d): %v", tc.key, tc.size, err)
			}
			if got, want := getSum(t, s, tc.key), readerSum(patternReader(n, 1)); got != want {
				t.Errorf("Get(%q) returned other bytes than Put stored", tc.key)
			}
		}
	})
	t.Run("Missing", func(t *testing.T) {
		_, err := open(t).Get(t.Context(), "no/such/key")
		wantCode(t, "Get(missing)", err, app.ENOTFOUND)
	})
	t.Run("Overwrite", func(t *testing.T) {
		s := open(t)
		put(t, s, "k.txt", "first version")
		put(t, s, "k.txt", "second")
		if got := get(t, s, "k.txt"); got != "second" {
			t.Errorf("after overwrite Get = %q, want %q", got, "second")
		}
	})
	t.Run("FailingReader", func(t *testing.T) {
		s := open(t)
		for _, size := range []int64{2 << 20, -1} {
			err := s.Put(t.Context(), "broken.bin", failingReader(1<<20+17), size, "application/pdf")
			if !errors.Is(err, errReaderBroke) {
				t.Fatalf("Put from a failing reader (size %d) = %v, want the reader's error wrapped", size, err)
			}
			_, err = s.Get(t.Context(), "broken.bin")
			wantCode(t, "Get after a failed Put", err, app.ENOTFOUND)
		}
		put(t, s, "kept.txt", "stored before")
		if err := s.Put(t.Context(), "kept.txt", failingReader(1<<20), -1, "text/plain"); err == nil {
			t.Fatal("Put from a failing reader succeeded")
		}
		if got := get(t, s, "kept.txt"); got != "stored before" {
			t.Errorf("a failed overwrite left %q, want the earlier %q", got, "stored before")
		}
	})
	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		put(t, s, "a/gone.txt", "bye")
		put(t, s, "a/stays.txt", "hi")
		for range 2 { // idempotent
			if err := s.Delete(t.Context(), "a/gone.txt"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
		}
		if err := s.Delete(t.Context(), "never/was.txt"); err != nil {
			t.Errorf("Delete(missing) = %v, want nil", err)
		}
		_, err := s.Get(t.Context(), "a/gone.txt")
		wantCode(t, "Get(deleted)", err, app.ENOTFOUND)
		if got := get(t, s, "a/stays.txt"); got != "hi" {
			t.Errorf("Get(neighbour) = %q, want %q", got, "hi")
		}
	})
}

var errReaderBroke = errors.New("apptest: reader broke midway")

// patternReader returns n deterministic, incompressible-looking bytes
// through a bare io.Reader.
func patternReader(n int64, seed uint64) io.Reader {
	return io.LimitReader(&pattern{x: seed*0x9E3779B97F4A7C15 + 1}, n)
}

type pattern struct{ x uint64 }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		p.x ^= p.x << 13 // xorshift64
		p.x ^= p.x >> 7
		p.x ^= p.x << 17
		b[i] = byte(p.x)
	}
	return len(b), nil
}

// failingReader yields n bytes and then errReaderBroke.
func failingReader(n int64) io.Reader {
	return io.MultiReader(patternReader(n, 2), errorReader{})
}

type errorReader struct{}

func (errorReader) Read([]byte) (int, error) { return 0, errReaderBroke }

func readerSum(r io.Reader) [sha256.Size]byte {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		panic(err)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

func getSum(t *testing.T, s app.BlobStore, key string) [sha256.Size]byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

func put(t *testing.T, s app.BlobStore, key, body string) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewBufferString(body), int64(len(body)), "text/plain"); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t *testing.T, s app.BlobStore, key string) string {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return string(b)
}
