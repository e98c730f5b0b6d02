// Command rate drives a fixed request rate (GET /, keep-alive) at a proxy
// and prints the CPU one process spent per request, from
// /proc/<pid>/stat. wrk measures a proxy at its own saturation, where a
// slower proxy also pays for waking an idler client more often; at one
// rate for every proxy, the CPU per request compares their own costs.
//
//	taskset -c 1 go run ./bench/cmd/rate -addr 127.0.0.1:8080 -pid $(pgrep -n edge) -rate 2000
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "the proxy's address")
	pid := flag.Int("pid", 0, "the process whose CPU is counted")
	rate := flag.Int("rate", 2000, "requests per second over all connections")
	conns := flag.Int("c", 64, "keep-alive connections")
	d := flag.Duration("d", 10*time.Second, "how long to measure (after a 2 s warm-up)")
	flag.Parse()
	if err := run(*addr, *pid, *rate, *conns, *d); err != nil {
		fmt.Fprintln(os.Stderr, "rate:", err)
		os.Exit(1)
	}
}

func run(addr string, pid, rate, conns int, d time.Duration) error {
	if pid <= 0 || rate <= 0 || conns <= 0 || d <= 0 {
		return errors.New("want -pid, and -rate, -c and -d above 0")
	}
	req := []byte("GET / HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: edgeapp-rate\r\n\r\n")
	every := time.Duration(float64(time.Second) * float64(conns) / float64(rate))
	var done, behind atomic.Int64
	stop := make(chan struct{})
	errc := make(chan error, conns)
	var wg sync.WaitGroup
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReader(c)
			next := time.Now().Add(every * time.Duration(i) / time.Duration(conns)) // spread the starts
			for {
				if w := time.Until(next); w > 0 {
					select {
					case <-stop:
						return
					case <-time.After(w):
					}
				} else {
					behind.Add(1) // the proxy answered later than the rate allows
				}
				next = next.Add(every)
				if _, err := c.Write(req); err != nil {
					errc <- err
					return
				}
				if err := readResponse(br); err != nil {
					errc <- err
					return
				}
				done.Add(1)
			}
		}()
	}
	time.Sleep(2 * time.Second)
	t0, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	r0 := done.Load()
	time.Sleep(d)
	t1, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	n := done.Load() - r0
	close(stop)
	select {
	case err := <-errc:
		return err
	default:
	}
	if n == 0 {
		return errors.New("no request answered")
	}
	fmt.Printf("%.0f req/s, %.1f µs CPU per request, %d requests sent late\n",
		float64(n)/d.Seconds(), float64(t1-t0)*1e6/clockTicks/float64(n), behind.Load())
	return nil
}

// readResponse reads one response with a Content-Length body (all the
// bench upstream sends to GET /).
func readResponse(br *bufio.Reader) error {
	n := int64(-1)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
			if n, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
				return fmt.Errorf("content-length %q", v)
			}
		}
	}
	if n < 0 {
		return errors.New("response without Content-Length")
	}
	_, err := io.CopyN(io.Discard, br, n)
	return err
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times (100 on
// every Linux the harness runs on).
const clockTicks = 100

// cpuTicks returns utime+stime of pid.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + k, nil
}
