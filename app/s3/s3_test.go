package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/apptest"
	"selfhost.dev/edgeapp/app/s3"
	"selfhost.dev/edgeapp/internal/testserver"
)

var buckets atomic.Int64

// bucketName is unique per test and run: tests share one MinIO server.
func bucketName() string {
	return fmt.Sprintf("edgeapp-test-%d-%d", time.Now().UnixNano()%1e9, buckets.Add(1))
}

func TestBlobStore(t *testing.T) {
	apptest.TestBlobStore(t, func(t *testing.T) app.BlobStore {
		endpoint, access, secret := testserver.MinIO(t)
		s, err := s3.New(t.Context(), s3.Config{Endpoint: endpoint, AccessKey: access, SecretKey: secret, Bucket: bucketName()})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return s
	})
}

// TestServerDown stops the real server: Put answers EUNAVAILABLE and
// leaves nothing; once the server is back the same store works again.
func TestServerDown(t *testing.T) {
	srv := testserver.StartMinIO(t)
	cfg := s3.Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Bucket: bucketName()}
	s, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "before.txt", "kept")

	srv.Stop(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.Ping(ctx); app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Errorf("Ping with the server down = %v, want EUNAVAILABLE", err)
	}
	for _, size := range []int64{5, -1} {
		err := s.Put(ctx, "during.txt", strings.NewReader("lost?"), size, "text/plain")
		if app.ErrorCode(err) != app.EUNAVAILABLE {
			t.Errorf("Put(size %d) with the server down = %v, want EUNAVAILABLE", size, err)
		}
	}
	if _, err := s.Get(ctx, "before.txt"); app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Errorf("Get with the server down = %v, want EUNAVAILABLE", err)
	}
	if err := s.Delete(ctx, "before.txt"); app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Errorf("Delete with the server down = %v, want EUNAVAILABLE", err)
	}

	srv.Start(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
	if _, err := s.Get(ctx, "during.txt"); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("a Put that failed while the server was down left an object: Get = %v", err)
	}
	if got := get(t, s, "before.txt"); got != "kept" {
		t.Errorf("after restart Get(before.txt) = %q, want %q", got, "kept")
	}
	put(t, s, "after.txt", "works")
}

// TestDownAtStart creates the store while the server is stopped: New
// succeeds so the app can start, and the bucket is created once the
// server is up.
func TestDownAtStart(t *testing.T) {
	srv := testserver.StartMinIO(t)
	srv.Stop(t)
	cfg := s3.Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Bucket: bucketName()}
	s, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New with the server down = %v, want a store that reports it", err)
	}
	if err := s.Ping(t.Context()); app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Errorf("Ping = %v, want EUNAVAILABLE", err)
	}
	srv.Start(t)
	put(t, s, "first.txt", "the bucket is created on first use")
	if got := get(t, s, "first.txt"); got != "the bucket is created on first use" {
		t.Errorf("Get = %q", got)
	}
}

// TestBadCredentials is an error the operator must fix, not an outage.
func TestBadCredentials(t *testing.T) {
	endpoint, access, _ := testserver.MinIO(t)
	_, err := s3.New(t.Context(), s3.Config{Endpoint: endpoint, AccessKey: access, SecretKey: "wrong-secret", Bucket: bucketName()})
	if err == nil || app.ErrorCode(err) == app.EUNAVAILABLE {
		t.Errorf("New with a wrong secret = %v, want a plain error", err)
	}
}

func put(t *testing.T, s *s3.Store, key, body string) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewBufferString(body), int64(len(body)), "text/plain"); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t *testing.T, s *s3.Store, key string) string {
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
