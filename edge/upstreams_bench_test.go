package edge

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkProxyPool proxies the GET of BenchmarkProxySmallGET/handler
// through a pool of two upstreams: the cost of picking one and of the
// bookkeeping (in-flight count, metrics) over the single-upstream path.
//
//	go test ./edge -run '^$' -bench 'ProxySmallGET/handler|ProxyPool' -benchmem
func BenchmarkProxyPool(b *testing.B) {
	for _, lb := range []string{"round_robin", "least_conn"} {
		b.Run(lb, func(b *testing.B) {
			s := benchServer(b, `routes: [ { path: /, to: ["${A}", "${B}"], lb: `+lb+` } ]`,
				map[string]string{"A": cannedUpstream(b), "B": cannedUpstream(b)})
			w := &discardWriter{h: make(http.Header)}
			req := httptest.NewRequest("GET", "/api/v1/contacts", nil)
			req.RemoteAddr = "127.0.0.1:40000"
			req.Header.Set("User-Agent", "bench")
			hdr := req.Header.Clone()
			serve := func() {
				clear(w.h)
				r := *req
				r.Header = hdr.Clone()
				s.ServeHTTP(w, &r)
			}
			serve()
			serve()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				serve()
			}
			b.StopTimer()
			if !strings.Contains(s.Routes()[0], "/") {
				b.Fatal("no route")
			}
		})
	}
}
