package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// UploadResult is what one streamed upload measured.
type UploadResult struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	Status  int     `json:"status"`
	// Received is what arrived: what the upstream says it drained for an
	// upload, what the client read for a download.
	Received int64 `json:"received"`
}

// sizedZeros yields n bytes without touching them: the content does not
// matter, the upstream discards it, and filling buffers would make the
// client the bottleneck.
type sizedZeros struct{ n int64 }

func (z *sizedZeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	z.n -= int64(len(p))
	return len(p), nil
}

// Upload POSTs size bytes to url with a Content-Length, streaming them, and
// times it until the response has been read.
func Upload(ctx context.Context, url string, size int64) (UploadResult, error) {
	tr := &http.Transport{WriteBufferSize: 256 << 10, ReadBufferSize: 64 << 10, DisableCompression: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, &sizedZeros{n: size})
	if err != nil {
		return UploadResult{}, fmt.Errorf("upload: %w", err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return UploadResult{}, fmt.Errorf("upload: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	res := UploadResult{Bytes: size, Seconds: time.Since(start).Seconds(), Status: resp.StatusCode}
	if err != nil {
		return res, fmt.Errorf("upload response: %w", err)
	}
	res.Received, _ = strconv.ParseInt(strings.TrimSpace(string(body)), 10, 64)
	return res, nil
}

// Download GETs url and reads its body to the end with 64 KiB reads,
// timing it until the last byte; size is the length expected.
func Download(ctx context.Context, url string, size int64) (UploadResult, error) {
	tr := &http.Transport{ReadBufferSize: 64 << 10, DisableCompression: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return UploadResult{}, fmt.Errorf("download: %w", err)
	}
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return UploadResult{}, fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64<<10)
	n, err := io.CopyBuffer(onlyWriter{io.Discard}, resp.Body, buf)
	res := UploadResult{Bytes: n, Seconds: time.Since(start).Seconds(), Status: resp.StatusCode, Received: n}
	if err != nil {
		return res, fmt.Errorf("download body after %d of %d bytes: %w", n, size, err)
	}
	return res, nil
}

// onlyWriter hides io.Discard's ReaderFrom so that CopyBuffer uses our
// 64 KiB buffer rather than io.Discard's 8 KiB one.
type onlyWriter struct{ io.Writer }

// UploadMain is the harness's hidden "upload" and "download" subcommands
// (cmd is which): the transfer runs in a process of its own so that it can
// be pinned to the load generator's CPU. It prints one UploadResult as JSON.
func UploadMain(cmd string, args []string) int {
	if len(args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: harness %s URL BYTES\n", cmd)
		return 2
	}
	size, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: bad size: %v\n", cmd, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	transfer := Upload
	if cmd == "download" {
		transfer = Download
	}
	res, err := transfer(ctx, args[0], size)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// runClient runs UploadMain's cmd ("upload" or "download") in a child
// process, pinned when the fleet is.
func (e *Env) runClient(ctx context.Context, f *Fleet, cmd, url string, size int64) (UploadResult, error) {
	self, err := os.Executable()
	if err != nil {
		return UploadResult{}, fmt.Errorf("%s: %w", cmd, err)
	}
	argv := []string{self, cmd, url, strconv.FormatInt(size, 10)}
	if f.Pinned {
		argv = append([]string{"taskset", "-c", loadCPU}, argv...)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return UploadResult{}, fmt.Errorf("%s: %w: %s", cmd, err, lastLines(ee.Stderr, 3))
		}
		return UploadResult{}, fmt.Errorf("%s: %w", cmd, err)
	}
	var res UploadResult
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("%s output %q: %w", cmd, out, err)
	}
	return res, nil
}
