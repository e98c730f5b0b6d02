// Package s3 implements app.BlobStore on S3 or any S3-compatible server
// (MinIO) with minio-go.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"selfhost.dev/edgeapp/app"
)

// backend names this adapter in app.Unavailable errors and /health/ready.
const backend = "object storage"

// PartSize is the part size of multipart uploads. An upload of unknown
// size is sent a part at a time, so one part is all it holds in memory;
// with S3's 10,000 parts it allows objects up to about 80 GB.
const PartSize = 8 << 20

// maxRetries bounds minio-go's retries (10 by default, with backoff), so
// that a write to a server that is down fails in a second or so with 503
// instead of holding the request for many.
const maxRetries = 3

// Config says where the bucket is.
type Config struct {
	// Endpoint is the server's host:port, e.g. "127.0.0.1:9000" or
	// "s3.eu-west-1.amazonaws.com".
	Endpoint string
	// AccessKey and SecretKey are the credentials. If both are empty, the
	// AWS chain is used (env vars, shared files, IAM role).
	AccessKey, SecretKey string
	// Bucket is created if it does not exist.
	Bucket string
	// Region is the bucket's region; if empty, the client asks the server.
	Region string
	// UseSSL selects https.
	UseSSL bool
}

// Store is a bucket holding the app's blobs.
type Store struct {
	client *minio.Client
	bucket string
	region string

	mu    sync.Mutex
	ready bool // the bucket is known to exist
}

var _ app.BlobStore = (*Store)(nil)

// New returns the store for cfg's bucket, creating the bucket if it is
// missing. If the server cannot be reached, New still returns the store,
// so that the app starts and reports object storage as down; the bucket
// is then created by the first call that reaches the server.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3: endpoint and bucket are required")
	}
	creds := credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	if cfg.AccessKey == "" && cfg.SecretKey == "" {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}, &credentials.IAM{},
		})
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      creds,
		Secure:     cfg.UseSSL,
		Region:     cfg.Region,
		MaxRetries: maxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	s := &Store{client: client, bucket: cfg.Bucket, region: cfg.Region}
	if err := s.ensureBucket(ctx); err != nil && app.ErrorCode(err) != app.EUNAVAILABLE {
		return nil, err
	}
	return s, nil
}

// ensureBucket creates the bucket unless a previous call saw it.
func (s *Store) ensureBucket(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil
	}
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return s3Error(fmt.Sprintf("check bucket %q", s.bucket), err)
	}
	if !ok {
		err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region})
		if err != nil && !bucketOwned(err) {
			return s3Error(fmt.Sprintf("create bucket %q", s.bucket), err)
		}
	}
	s.ready = true
	return nil
}

// bucketOwned reports a MakeBucket that lost the race to another instance.
func bucketOwned(err error) bool {
	code := minio.ToErrorResponse(err).Code
	return code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists"
}

// Put streams r to key. With size -1 the upload is multipart, PartSize at
// a time. S3 makes an object visible only once it is complete, so a
// reader that fails leaves nothing under key (and an earlier object there
// intact); minio-go aborts the multipart upload.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := s.ensureBucket(ctx); err != nil {
		return err
	}
	_, err := s.client.PutObject(ctx, s.bucket, key, r, size, minio.PutObjectOptions{
		ContentType: contentType,
		PartSize:    PartSize,
	})
	return s3Error(fmt.Sprintf("put object %q", key), err)
}

// Get opens key for reading, or returns ENOTFOUND.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s3Error(fmt.Sprintf("get object %q", key), err)
	}
	// GetObject sends nothing until the first Read or Stat: Stat makes the
	// request now, so a missing key is an error here, not in the middle of
	// a response that has already begun.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, s3Error(fmt.Sprintf("get object %q", key), err)
	}
	return obj, nil
}

// Delete removes key; a missing key or bucket is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	if minio.ToErrorResponse(err).Code == "NoSuchBucket" {
		return nil
	}
	return s3Error(fmt.Sprintf("delete object %q", key), err)
}

// Ping reports whether the server answers and the bucket exists,
// creating it if the server was down when New ran.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.Lock()
	ready := s.ready
	s.mu.Unlock()
	if !ready {
		return s.ensureBucket(ctx)
	}
	_, err := s.client.BucketExists(ctx, s.bucket)
	return s3Error("ping", err)
}

// s3Error wraps err, the failure of op: missing keys and buckets become
// ENOTFOUND and a server that cannot be reached or answers 5xx becomes
// EUNAVAILABLE, so that the HTTP layer answers 404 and 503.
func s3Error(op string, err error) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey" || resp.Code == "NoSuchBucket":
		return &app.Error{Code: app.ENOTFOUND, Message: "file not found", Err: fmt.Errorf("%s: %w", op, err)}
	case resp.StatusCode >= 500 || unreachable(err):
		return app.Unavailable(backend, fmt.Errorf("%s: %w", op, err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// unreachable reports a failure to talk to the server (dial, reset, a
// connection cut midway). Any *url.Error is a net.Error, including one
// that only wraps the caller's failing reader, so that test is not used.
func unreachable(err error) bool {
	var opErr *net.OpError
	var dnsErr *net.DNSError
	return errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
