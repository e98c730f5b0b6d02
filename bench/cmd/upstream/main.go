// Command upstream is the benchmark's backend server (see package
// bench/upstream). It listens on -addr, loopback only.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"selfhost.dev/edgeapp/bench/upstream"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:19000", "listen address")
	flag.Parse()
	srv := &http.Server{
		Addr:              *addr,
		Handler:           &upstream.Handler{},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	log.Fatal(srv.ListenAndServe())
}
