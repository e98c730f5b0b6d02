package main

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"selfhost.dev/edgeapp/app/apptest"
	"selfhost.dev/edgeapp/app/fsblob"
	"selfhost.dev/edgeapp/app/postgres"
	"selfhost.dev/edgeapp/app/s3"
	"selfhost.dev/edgeapp/app/sqlite"
	"selfhost.dev/edgeapp/internal/testserver"
)

// The upload contract (apptest.TestUpload) runs here, where the pairs of
// adapters a deployment uses can be wired together: adapters never import
// each other.

// TestUploadEmbedded: SQLite and local files, the defaults.
func TestUploadEmbedded(t *testing.T) {
	apptest.TestUpload(t, func(t *testing.T) apptest.UploadBackends {
		dir := t.TempDir()
		db, err := sqlite.Open(t.Context(), filepath.Join(dir, "app.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		blobs, err := fsblob.New(filepath.Join(dir, "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		return apptest.UploadBackends{Store: db, Blobs: blobs}
	})
}

var uploadBuckets atomic.Int64

// TestUploadPostgresMinIO: real PostgreSQL (a cluster of its own, so that
// it can be stopped mid-upload) and real MinIO.
func TestUploadPostgresMinIO(t *testing.T) {
	pg := testserver.StartPostgres(t)
	endpoint, access, secret := testserver.MinIO(t)
	apptest.TestUpload(t, func(t *testing.T) apptest.UploadBackends {
		db, err := postgres.Open(t.Context(), pg.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		bucket := fmt.Sprintf("upload-%d-%d", time.Now().UnixNano()%1e9, uploadBuckets.Add(1))
		blobs, err := s3.New(t.Context(), s3.Config{Endpoint: endpoint, AccessKey: access, SecretKey: secret, Bucket: bucket})
		if err != nil {
			t.Fatal(err)
		}
		return apptest.UploadBackends{Store: db, Blobs: blobs, StopDatabase: func(t *testing.T) func() {
			pg.Stop(t)
			return func() { pg.Start(t) }
		}}
	})
}
