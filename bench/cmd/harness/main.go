// Command harness runs the side-by-side benchmark of the edge against
// Caddy, nginx, HAProxy and the bare upstream (package bench) and writes
// results.json, RESULTS.md and chart.svg.
//
//	go run ./bench/cmd/harness -scenarios all      # make bench, < 15 min
//	go run ./bench/cmd/harness -scenarios 1 -quick # make bench-quick, < 2 min
//	go run ./bench/cmd/harness -scenarios 8 -out bench/results/failover # a pool of 3 upstreams, one killed, < 1 min
//	go run ./bench/cmd/harness -scenarios 1 -layouts pinned -edge-env EDGE_FAST_HTTP1=off # an edge setting side by side
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"selfhost.dev/edgeapp/bench"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "upload" || os.Args[1] == "download") {
		os.Exit(bench.UploadMain(os.Args[1], os.Args[2:]))
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func run() error {
	scenarios := flag.String("scenarios", "all", `scenarios to run: "all" (1–7 and 10; 8, 9 and 11, HTTP/2 over TLS, only when named), "none" (with -profile) or a list such as "1,3"`)
	quick := flag.Bool("quick", false, "short runs, pinned layout and access logs on only (for scenario 1 in under 2 minutes)")
	duration := flag.Duration("duration", 0, "one wrk run (default 3s, 2s with -quick)")
	rounds := flag.Int("rounds", 3, "interleaved rounds")
	extra := flag.Int("headline-extra", -1, "extra rounds for scenario 1's headline table (default 2, 0 with -quick)")
	conns := flag.String("conns", "64,256", "scenario 1's connection counts")
	layouts := flag.String("layouts", "", `of "pinned", "unpinned" (GOMAXPROCS=1, one nginx worker), "unpinned-2" (GOMAXPROCS=2, two nginx workers): "pinned,unpinned-2" (default), "pinned" with -quick`)
	logsOff := flag.Bool("logs-off", true, "also run scenario 1 with access logs off (not with -quick)")
	idle := flag.Int("idle", 10000, "scenario 5's idle connections")
	docs := flag.Int("docs", 100000, "scenario 6's documents")
	uploadMiB := flag.Int64("upload-mib", 1024, "scenario 3's upload size in MiB")
	downloadMiB := flag.Int64("download-mib", 1024, "scenario 10's download size in MiB")
	out := flag.String("out", "", "results dir (default bench/results, or bench/results/tmp/quick with -quick)")
	profile := flag.Duration("profile", 0, "after the scenarios, profile the edge under scenario 1's load this long (e.g. 10s)")
	var variants []string
	flag.Func("edge-env", `add an edge target with these environment variables to scenario 1, e.g. -edge-env "GOGC=400" (repeatable)`, func(v string) error {
		if !strings.Contains(v, "=") {
			return errors.New("want NAME=VALUE [NAME=VALUE ...]")
		}
		variants = append(variants, bench.EdgeVariant(v))
		return nil
	})
	keep := flag.Bool("keep", false, "keep the temp dir with the rendered configs and the logs")
	limit := flag.Duration("timeout", 0, "stop everything after this long (default 14m, 3m with -quick)")
	flag.Parse()

	root, err := moduleRoot()
	if err != nil {
		return err
	}
	opts := bench.Options{
		Duration: *duration, Rounds: *rounds, LogsOff: *logsOff && !*quick,
		IdleConns: *idle, Documents: *docs, UploadMiB: *uploadMiB, DownloadMiB: *downloadMiB, Keep: *keep, ModuleRoot: root,
		Profile: *profile, EdgeVariants: variants,
		Command: "go run ./bench/cmd/harness " + strings.Join(os.Args[1:], " "),
	}
	if *scenarios == "none" {
		*scenarios = ""
	}
	if opts.Scenarios, err = parseInts(*scenarios, "1,2,3,4,5,6,7,10"); err != nil {
		return fmt.Errorf("-scenarios: %w", err)
	}
	if opts.Conns, err = parseInts(*conns, ""); err != nil {
		return fmt.Errorf("-conns: %w", err)
	}
	opts.HeadlineExtra = *extra
	if opts.HeadlineExtra < 0 {
		opts.HeadlineExtra = 2
		if *quick {
			opts.HeadlineExtra = 0
		}
	}
	if opts.Duration == 0 {
		opts.Duration = 3 * time.Second
		if *quick {
			opts.Duration = 2 * time.Second
		}
	}
	opts.Layouts = strings.Split(*layouts, ",")
	if *layouts == "" {
		opts.Layouts = []string{bench.Pinned, bench.Unpinned2}
		if *quick {
			opts.Layouts = []string{"pinned"}
		}
	}
	for _, l := range opts.Layouts {
		if !slices.Contains(bench.Layouts, l) {
			return fmt.Errorf("-layouts: %q is none of %s", l, strings.Join(bench.Layouts, ", "))
		}
	}
	if opts.Rounds < 1 || opts.Rounds > 20 {
		return errors.New("-rounds: want 1..20")
	}
	opts.Out = *out
	if opts.Out == "" {
		opts.Out = filepath.Join(root, "bench", "results")
		if *quick {
			opts.Out = filepath.Join(root, "bench", "results", "tmp", "quick")
		}
	}
	if *limit == 0 {
		*limit = 14 * time.Minute
		if *quick {
			*limit = 3 * time.Minute
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()

	res, err := bench.Run(ctx, opts, os.Stderr)
	if err != nil {
		return err
	}
	fmt.Print(res.Markdown())
	fmt.Fprintf(os.Stderr, "wrote %s/{results.json,RESULTS.md,chart.svg} in %s\n", opts.Out, res.Elapsed)
	if ctx.Err() != nil {
		return fmt.Errorf("stopped early: %w", ctx.Err())
	}
	return nil
}

// parseInts reads "1,2,3"; "all" stands for all.
func parseInts(s, all string) ([]int, error) {
	if s == "all" && all != "" {
		s = all
	}
	var out []int
	if s == "" {
		return nil, nil
	}
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// moduleRoot finds the directory of go.mod from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from the repository")
		}
		dir = parent
	}
}
