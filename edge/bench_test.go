package edge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Benchmarks of the edge. The proxy benchmarks use a canned upstream that
// allocates nothing, so allocs/op is the edge's own (and its Transport's).
//
//	go test ./edge -run '^$' -bench . -benchmem
//	go test ./edge -run '^$' -bench ProxySmallGET/handler -cpuprofile cpu.out && go tool pprof -top edge.test cpu.out

// cannedUpstream answers every request on a keep-alive connection with a
// fixed 1 KiB response, without allocating per request.
func cannedUpstream(b testing.TB) string { return cannedUpstreamTLS(b, nil) }

// cannedUpstreamTLS is cannedUpstream over TLS with tc (nil: plain).
func cannedUpstreamTLS(b testing.TB, tc *tls.Config) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	scheme := "http://"
	if tc != nil {
		l, scheme = tls.NewListener(l, tc), "https://"
	}
	b.Cleanup(func() { l.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("x", 1024))
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReaderSize(c, 16<<10)
				for {
					for {
						line, err := r.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return scheme + l.Addr().String()
}

// benchServer is an edge with the access log on (to io.Discard, through the
// real queue and writer goroutine), as in production.
func benchServer(b testing.TB, yaml string, env map[string]string) *Server {
	e := map[string]string{"HASH": testHash}
	for k, v := range env {
		e[k] = v
	}
	cfg, err := Load(strings.NewReader(yaml), envLookup(e))
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(cfg, Options{
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registry:  prometheus.NewRegistry(),
		AccessLog: io.Discard,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.alog.Close() })
	return s
}

// discardWriter is a ResponseWriter that keeps nothing, reused across
// iterations so that the benchmark measures the edge, not the recorder.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

const benchRoutes = `
users: { admins: [ { user: admin, hash: "${HASH}" } ] }
routes:
  - { path: /grafana,      to: "${UP}", auth: admins }
  - { path: /prometheus,   to: "${UP}", auth: admins }
  - { path: /alertmanager, to: "${UP}", auth: admins }
  - { path: /minio,        to: "${UP}", auth: admins, strip_prefix: true }
  - { path: /,             to: "${UP}", max_body: 50MiB }
`

func benchHandler(b *testing.B, path string, headers ...string) {
	s := benchServer(b, benchRoutes, map[string]string{"UP": cannedUpstream(b)})
	w := &discardWriter{h: make(http.Header)}
	req := httptest.NewRequest("GET", path, nil)
	req.RemoteAddr = "127.0.0.1:40000"
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", "bench")
	hdr := req.Header.Clone()
	serve := func() {
		clear(w.h)
		r := *req // ServeHTTP records the request ID in the header
		r.Header = hdr.Clone()
		s.ServeHTTP(w, &r)
	}
	serve() // warm the pool and the auth cache
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		r := *req
		r.Header = hdr.Clone()
		s.ServeHTTP(w, &r)
	}
}

// BenchmarkProxySmallGET proxies a GET with a 1 KiB answer.
//
// handler: the edge's ServeHTTP called directly (one request at a time);
// allocs/op is the edge's plus its Transport's, less one header clone the
// benchmark itself makes per request.
// loopback: a real client, the edge's listener and the upstream, over TCP,
// with parallel clients.
func BenchmarkProxySmallGET(b *testing.B) {
	b.Run("handler", func(b *testing.B) { benchHandler(b, "/api/v1/contacts") })
	b.Run("loopback", func(b *testing.B) {
		s := benchServer(b, benchRoutes, map[string]string{"UP": cannedUpstream(b)})
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := s.httpServer(s)
		go func() { _ = srv.Serve(l) }()
		b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
		url := "http://" + l.Addr().String() + "/api/v1/contacts"
		b.ReportAllocs()
		b.ResetTimer()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res, err := client.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
	})
}

// BenchmarkProxyHTTPSUpstream proxies a GET with a 1 KiB answer to an
// https:// upstream, on the fast path (its idle connections proven clean
// through the TLS layer too) and on http.Transport (fast=off), side by
// side: handler mode, as BenchmarkProxySmallGET.
func BenchmarkProxyHTTPSUpstream(b *testing.B) {
	up := cannedUpstreamTLS(b, &tls.Config{Certificates: testTLSCert(b)})
	ca := testCertFile(b)
	for _, mode := range []string{"on", "off"} {
		b.Run("fast="+mode, func(b *testing.B) {
			b.Setenv(fastHTTP1Env, mode)
			s := benchServer(b, "access_log: \"off\"\nupstream: { tls_ca: \"${CA}\" }\nroutes: [ { path: /, to: \"${UP}\" } ]\n", map[string]string{"UP": up, "CA": ca})
			w := &discardWriter{h: make(http.Header)}
			req := httptest.NewRequest("GET", "/api/v1/contacts", nil)
			req.RemoteAddr = "127.0.0.1:40000"
			serve := func() {
				clear(w.h)
				r := *req
				r.Header = make(http.Header)
				s.ServeHTTP(w, &r)
			}
			serve()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				serve()
			}
		})
	}
}

// BenchmarkProxyAuthCached proxies to a Basic Auth route with credentials
// that the verification cache already holds: no bcrypt per request.
func BenchmarkProxyAuthCached(b *testing.B) {
	benchHandler(b, "/prometheus/api/v1/query", basic(testUser, testPassword))
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, p := range []struct{ name, path string }{
		{"clean", "/grafana/api/dashboards/uid/abc123"},
		{"dirty", "//grafana/./api/../api/dashboards/%75id/abc123"},
	} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = normalizePath(p.path)
			}
		})
	}
}

func BenchmarkTableLookup(b *testing.B) {
	s := benchServer(b, benchRoutes+`  - { path: /grafana, to: "${UP}", host: dash.example.com }
`, map[string]string{"UP": "http://127.0.0.1:1"})
	t := s.cur.Load()
	paths := []string{"/grafana/api/live/ws", "/api/v1/contacts/123", "/minio/browser", "/prometheus", "/alertmanagerx"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if t.lookup("edge.example.com", paths[i%len(paths)]) == nil {
			b.Fatal("no route")
		}
		i++
	}
}

// BenchmarkUpload streams a 256 MiB body through the edge to an upstream
// that discards it, and reports the edge process's peak heap in use and
// the bytes allocated per upload: both stay flat, whatever the body size.
func BenchmarkUpload(b *testing.B) {
	const size = 256 << 20
	var got atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Store(n)
	}))
	b.Cleanup(up.Close)
	s := benchServer(b, `routes: [ { path: /, to: "${UP}", max_body: 1GiB } ]`, map[string]string{"UP": up.URL})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := s.httpServer(s)
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	url := "http://" + l.Addr().String() + "/upload"
	chunk := bytes.Repeat([]byte("u"), 1<<20)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}
	}()
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		pr, pw := io.Pipe()
		go func() {
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := pw.Write(chunk); err != nil {
					return
				}
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", url, pr)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || got.Load() != size {
			b.Fatalf("status %d, upstream got %d bytes", res.StatusCode, got.Load())
		}
	}
	b.StopTimer()
	close(stop)
	<-sampled
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "alloc-MiB/op")
}

// BenchmarkAccessLog is the per-request cost of the access log: formatting
// the line and handing it to the writer, from parallel requests.
func BenchmarkAccessLog(b *testing.B) {
	l := newAccessLog(io.Discard, nil)
	defer l.Close()
	e := &logEntry{start: time.Now(), requestID: "89e4ee32778b-2ujl", clientIP: "203.0.113.7", method: "GET",
		host: "edge.example.com", path: "/api/v1/contacts", status: 200, bytesOut: 1024, duration: time.Millisecond,
		route: "/", upstream: "http://127.0.0.1:8000", userAgent: "Mozilla/5.0 (X11; Linux x86_64)", cfRay: "8f1c2d3e4f5a6b7c-LHR"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.log(e)
		}
	})
}

// BenchmarkIdleClean is the peek that guards every reuse of a fast-path
// upstream connection (one recv(MSG_PEEK|MSG_DONTWAIT) on an idle socket):
// the price of never handing out a desynchronized connection.
func BenchmarkIdleClean(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p := newSocketPeeker(c)
	b.ReportAllocs()
	for b.Loop() {
		if !p.idleClean() {
			b.Fatal("an idle connection with nothing pending is not clean")
		}
	}
}
