package bench

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// WrkResult is what one wrk run reports.
type WrkResult struct {
	Requests     int64
	Duration     time.Duration
	RPS          float64
	P50, P99     time.Duration
	Non2xx       int64   // wrk's "Non-2xx or 3xx responses"
	SocketErrors int64   // connect + read + write + timeout
	BytesRead    float64 // "…, 1.18GB read": what the client received, headers included
}

// Errors returns the failed requests: non-2xx/3xx answers and socket errors.
func (r WrkResult) Errors() int64 { return r.Non2xx + r.SocketErrors }

// ParseWrk reads the text wrk prints with --latency.
func ParseWrk(out string) (WrkResult, error) {
	var r WrkResult
	var haveRPS, haveReqs bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "50%":
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("p50: %w", err)
			}
			r.P50 = d
		case len(f) == 2 && f[0] == "99%":
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("p99: %w", err)
			}
			r.P99 = d
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("request count: %w", err)
			}
			d, err := parseWrkDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return r, fmt.Errorf("run time: %w", err)
			}
			r.Requests, r.Duration, haveReqs = n, d, true
			if len(f) >= 6 && f[5] == "read" {
				r.BytesRead = parseWrkBytes(f[4])
			}
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("requests/sec: %w", err)
			}
			r.RPS, haveRPS = v, true
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 2; i+1 < len(f); i += 2 {
				n, err := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				if err != nil {
					return r, fmt.Errorf("socket errors: %w", err)
				}
				r.SocketErrors += n
			}
		case len(f) == 5 && f[0] == "Non-2xx":
			n, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil {
				return r, fmt.Errorf("non-2xx: %w", err)
			}
			r.Non2xx = n
		}
	}
	if !haveRPS || !haveReqs {
		return r, fmt.Errorf("not wrk output (no request count or Requests/sec): %q", firstLines(out, 3))
	}
	return r, nil
}

// parseWrkDuration reads wrk's units: us, ms, s, m, h.
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"m", time.Minute}, {"h", time.Hour}, {"s", time.Second}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("bad duration %q", s)
			}
			return time.Duration(v * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("bad duration %q", s)
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// parseWrkBytes reads wrk's byte counts ("1.18GB", "512.00KB", "100B"),
// in powers of 1024 as wrk prints them; 0 if unreadable.
func parseWrkBytes(s string) float64 {
	mult := 1.0
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return v * mult
}
