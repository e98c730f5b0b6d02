// Command healthcheck is the container healthcheck for the edge and app
// images. They are distroless, with no shell, curl or wget, so Docker's
// HEALTHCHECK runs this instead: it GETs one URL and exits 0 on a 2xx,
// 1 otherwise.
//
//	healthcheck http://127.0.0.1:9180/healthz
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: healthcheck URL")
		os.Exit(2)
	}
	client := &http.Client{
		Timeout: 5 * time.Second,
		// A redirect would be a misconfigured check, not a healthy service.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "unhealthy:", err)
		os.Exit(1)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintln(os.Stderr, "unhealthy:", resp.Status)
		os.Exit(1)
	}
}
