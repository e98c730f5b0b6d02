package bench

import (
	"testing"
	"time"
)

const wrkOK = `Running 2s test @ http://127.0.0.1:19000/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.01ms  583.28us   5.50ms   64.27%
    Req/Sec    32.31k     2.74k   35.79k    60.00%
  Latency Distribution
     50%    1.01ms
     75%    1.42ms
     90%    1.74ms
     99%  812.00us
  128530 requests in 2.00s, 138.27MB read
Requests/sec:  64205.51
Transfer/sec:     69.07MB
`

const wrkErrors = `Running 1m test @ http://127.0.0.1:18080/
  2 threads and 256 connections
  Latency Distribution
     50%    1.50s
     75%    1.42ms
     90%    1.74ms
     99%    1.00m
  9000 requests in 1.00m, 1.27MB read
  Socket errors: connect 3, read 4, write 0, timeout 12
  Non-2xx or 3xx responses: 17
Requests/sec:    150.00
Transfer/sec:     69.07KB
`

func TestParseWrk(t *testing.T) {
	r, err := ParseWrk(wrkOK)
	if err != nil {
		t.Fatal(err)
	}
	want := WrkResult{Requests: 128530, Duration: 2 * time.Second, RPS: 64205.51,
		P50: 1010 * time.Microsecond, P99: 812 * time.Microsecond, BytesRead: 138.27 * (1 << 20)}
	if r != want {
		t.Errorf("got %+v\nwant %+v", r, want)
	}

	r, err = ParseWrk(wrkErrors)
	if err != nil {
		t.Fatal(err)
	}
	if r.SocketErrors != 19 || r.Non2xx != 17 || r.Errors() != 36 {
		t.Errorf("errors: socket %d non2xx %d total %d, want 19 17 36", r.SocketErrors, r.Non2xx, r.Errors())
	}
	if r.P50 != 1500*time.Millisecond || r.P99 != time.Minute || r.Duration != time.Minute {
		t.Errorf("durations: p50 %v p99 %v run %v", r.P50, r.P99, r.Duration)
	}
}

func TestParseWrkRejects(t *testing.T) {
	for _, out := range []string{
		"",
		"unable to connect to 127.0.0.1:1 Connection refused\n",
		"  10 requests in 1.00s, 1KB read\n", // no Requests/sec
		"  10 requests in 1.00s, 1KB read\n     50%    1.0xs\nRequests/sec: 10\n",
	} {
		if r, err := ParseWrk(out); err == nil {
			t.Errorf("ParseWrk(%q) = %+v, want an error", out, r)
		}
	}
}
