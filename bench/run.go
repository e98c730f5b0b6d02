package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Options are the harness's flags.
type Options struct {
	Scenarios []int
	Duration  time.Duration // one wrk run
	Rounds    int
	// EdgeVariants are extra edge targets for scenario 1 (see EdgeVariant).
	EdgeVariants []string
	// HeadlineExtra adds rounds to scenario 1's first layout with logs on.
	HeadlineExtra int
	Conns         []int         // scenario 1's connection counts
	Layouts       []string      // Pinned, Unpinned, Unpinned2 (see layout.go)
	LogsOff       bool          // also run scenario 1 with access logs off
	IdleConns     int           // scenario 5
	Documents     int           // scenario 6
	UploadMiB     int64         // scenario 3
	DownloadMiB   int64         // scenario 10
	Out           string        // results dir
	Keep          bool          // keep the temp dir with configs and logs
	Profile       time.Duration // if > 0, profile the edge under scenario 1's load this long
	ModuleRoot    string
	Command       string // as typed, for RESULTS.md
}

// Run runs the scenarios and writes results.json, RESULTS.md and chart.svg
// into opts.Out. Progress goes to logw. A scenario that fails is recorded in
// the results' Problems and the others still run.
func Run(ctx context.Context, opts Options, logw io.Writer) (*Results, error) {
	if runtime.GOOS != "linux" {
		return nil, errors.New("the harness needs Linux (/proc, taskset)")
	}
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(logw, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	dir, err := os.MkdirTemp("", "edgeapp-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	if opts.Keep {
		logf("keeping configs and logs in %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	e := &Env{
		Dir: dir, Bin: map[string]string{}, Missing: map[string]string{}, Log: logf,
		Root: os.Geteuid() == 0, NoFile: raiseNoFile(), User: "bench", Password: randomHex(12),
	}
	if err := e.findPeers(ctx); err != nil {
		return nil, err
	}
	e.findBenchTools(opts.ModuleRoot)
	if slices.Contains(opts.Scenarios, 11) {
		e.findH2load(ctx)
	}
	logf("building the upstream, the edge and the app")
	if err := e.build(ctx, opts.ModuleRoot); err != nil {
		return nil, err
	}
	res := &Results{
		Command: opts.Command, Started: start.UTC(), Machine: machine(ctx, e), Source: source(ctx, opts.ModuleRoot),
		Settings: Settings{
			Scenarios: opts.Scenarios, Duration: opts.Duration, Rounds: opts.Rounds, Threads: wrkThreads,
			Conns: opts.Conns, Layouts: opts.Layouts, LogsOff: opts.LogsOff,
			IdleConns: opts.IdleConns, Documents: opts.Documents, UploadMiB: opts.UploadMiB, DownloadMiB: opts.DownloadMiB,
			Profile: opts.Profile,
		},
	}
	if err := e.hashPassword(ctx); err != nil {
		res.Problems = append(res.Problems, "no Basic Auth hash from the edge: "+err.Error())
	}
	res.BcryptCost = BcryptCost(e.Hash)
	for name, why := range e.Missing {
		res.Problems = append(res.Problems, name+" "+why)
	}
	for _, n := range opts.Scenarios {
		if ctx.Err() != nil {
			break
		}
		logf("scenario %d", n)
		var tables []*Table
		var err error
		switch n {
		case 1:
			tables, err = e.scenario1(ctx, opts)
		case 2:
			tables, err = e.scenario2(ctx, opts)
		case 3:
			tables, err = e.scenario3(ctx, opts)
		case 4:
			tables, err = e.scenario4(ctx, opts)
		case 5:
			tables, err = e.scenario5(ctx, opts)
		case 6:
			tables, err = e.scenario6(ctx, opts)
		case 7:
			tables, err = e.scenario7(ctx, opts)
		case 8:
			tables, err = e.scenario8(ctx, opts)
		case 9:
			tables, err = e.scenario9(ctx, opts)
		case 10:
			tables, err = e.scenario10(ctx, opts)
		case 11:
			tables, err = e.scenario11(ctx, opts)
		default:
			err = fmt.Errorf("no scenario %d", n)
		}
		for _, t := range tables {
			t.Summarize()
		}
		res.Tables = append(res.Tables, tables...)
		if err != nil {
			logf("scenario %d: %v", n, err)
			res.Problems = append(res.Problems, fmt.Sprintf("scenario %d: %v", n, err))
		}
	}
	if opts.Profile > 0 && ctx.Err() == nil {
		logf("profiling the edge for %v", opts.Profile)
		p, err := e.profileEdge(ctx, opts, opts.Profile, filepath.Join(opts.Out, "tmp"))
		if err != nil {
			res.Problems = append(res.Problems, "profile: "+err.Error())
		}
		res.Profile = p
	}
	res.Checks = checks(res)
	res.Machine.LoadAvg = append(res.Machine.LoadAvg, loadAvg())
	res.Elapsed = time.Since(start).Round(time.Second).String()
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return res, fmt.Errorf("results dir: %w", err)
	}
	if err := res.WriteJSON(opts.Out); err != nil {
		return res, err
	}
	if err := os.WriteFile(filepath.Join(opts.Out, "RESULTS.md"), []byte(res.Markdown()), 0o644); err != nil {
		return res, fmt.Errorf("results markdown: %w", err)
	}
	if err := os.WriteFile(filepath.Join(opts.Out, "chart.svg"), []byte(Chart(res)), 0o644); err != nil {
		return res, fmt.Errorf("chart: %w", err)
	}
	return res, nil
}

// machine describes the host for RESULTS.md.
func machine(ctx context.Context, e *Env) Machine {
	m := Machine{NumCPU: runtime.NumCPU(), NoFile: e.NoFile, Versions: e.versions(ctx), LoadAvg: []string{loadAvg()}}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = procField(string(b), "model name")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemTotal = procField(string(b), "MemTotal")
	}
	return m
}

// procField returns the value of the first "key: value" line of s.
func procField(s, key string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// source names the commit the binaries were built from and any uncommitted
// changes to the code they are built from.
func source(ctx context.Context, root string) string {
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		// Not TrimSpace: porcelain lines start with a space-padded status.
		return strings.TrimRight(string(out), "\n")
	}
	rev := git("rev-parse", "--short", "HEAD")
	if rev == "" {
		return "unknown (not a git checkout)"
	}
	dirty := git("status", "--porcelain", "--", "edge", "cmd/edge", "app", "cmd/app", "bench")
	var paths []string
	for _, l := range strings.Split(dirty, "\n") {
		// The harness's own output is not source.
		if len(l) > 3 && !strings.HasPrefix(l[3:], "bench/results") {
			paths = append(paths, l[3:])
		}
	}
	if len(paths) == 0 {
		return "commit " + rev
	}
	return "commit " + rev + " plus uncommitted changes to " + strings.Join(paths, ", ")
}
