package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"
)

// Sample is one run against one target.
type Sample struct {
	Value        float64 `json:"value"` // req/s, or MiB/s for uploads, or MiB for memory tables
	P50ms        float64 `json:"p50_ms,omitempty"`
	P99ms        float64 `json:"p99_ms,omitempty"`
	CPUus        float64 `json:"cpu_us_per_req,omitempty"`
	MemMiB       float64 `json:"mem_mib,omitempty"`
	Requests     int64   `json:"requests,omitempty"`
	Non2xx       int64   `json:"non_2xx,omitempty"`
	SocketErrors int64   `json:"socket_errors,omitempty"`
	BytesPerReq  float64 `json:"bytes_per_req,omitempty"` // what the client received per response, headers included
}

// Row is one target in a table: its samples and their summaries.
type Row struct {
	Target  string   `json:"target"`
	Samples []Sample `json:"samples"`
	Value   Summary  `json:"value"`
	P50ms   Summary  `json:"p50_ms"`
	P99ms   Summary  `json:"p99_ms"`
	CPUus   Summary  `json:"cpu_us_per_req"`
	MemMiB  Summary  `json:"mem_mib"`
	Errors  int64    `json:"errors"`
	// Ratio is Value's median over the table's reference row's.
	Ratio float64 `json:"ratio,omitempty"`
	Note  string  `json:"note,omitempty"`
}

// Table is one scenario under one setting.
type Table struct {
	ID       string `json:"id"`
	Scenario int    `json:"scenario"`
	Title    string `json:"title"`
	Layout   string `json:"layout,omitempty"` // "pinned" or "unpinned"
	Logs     bool   `json:"access_logs"`
	Conns    int    `json:"connections,omitempty"`
	Unit     string `json:"unit"` // of Value
	MemLabel string `json:"mem_label,omitempty"`
	// CPULabel names the CPU column, "CPU µs/req" if empty; the streaming
	// tables put CPU seconds per GiB there.
	CPULabel string   `json:"cpu_label,omitempty"`
	RefRow   string   `json:"reference_row,omitempty"`
	Rows     []*Row   `json:"rows"`
	Notes    []string `json:"notes,omitempty"`
}

// Check is one of issue 5's targets, judged on this run.
type Check struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Unit string  `json:"unit"`
	Pass bool    `json:"pass"`
	Note string  `json:"note,omitempty"`
}

// Machine is what the results ran on.
type Machine struct {
	NumCPU   int    `json:"nproc"`
	CPUModel string `json:"cpu_model"`
	Kernel   string `json:"kernel"`
	MemTotal string `json:"mem_total"`
	NoFile   int    `json:"nofile"`
	// LoadAvg is /proc/loadavg at the start and at the end of the run: the
	// machine may be shared, and a high load makes req/s swing.
	LoadAvg  []string          `json:"loadavg"`
	Versions map[string]string `json:"versions"`
}

// Results is the whole run, as written to results.json.
type Results struct {
	Command string `json:"command"`
	// Source is the commit the edge and the app were built from, and the
	// paths that differed from it: the harness builds the working tree.
	Source     string    `json:"source"`
	Started    time.Time `json:"started"`
	Elapsed    string    `json:"elapsed"`
	Machine    Machine   `json:"machine"`
	Settings   Settings  `json:"settings"`
	BcryptCost int       `json:"bcrypt_cost,omitempty"`
	Tables     []*Table  `json:"tables"`
	Checks     []Check   `json:"checks"`
	Profile    *Profile  `json:"edge_profile,omitempty"`
	Problems   []string  `json:"problems,omitempty"`
}

// Settings are the knobs a run used.
type Settings struct {
	Scenarios   []int         `json:"scenarios"`
	Duration    time.Duration `json:"run_duration_ns"`
	Rounds      int           `json:"rounds"`
	Threads     int           `json:"wrk_threads"`
	Conns       []int         `json:"connections"`
	Layouts     []string      `json:"layouts"`
	LogsOff     bool          `json:"logs_off_table"`
	IdleConns   int           `json:"idle_connections"`
	Documents   int           `json:"documents"`
	UploadMiB   int64         `json:"upload_mib"`
	DownloadMiB int64         `json:"download_mib,omitempty"`
	Profile     time.Duration `json:"profile_ns,omitempty"`
}

// summarize fills a row's summaries from its samples and the ratio to ref.
func (r *Row) summarize(ref *Row) {
	pick := func(f func(Sample) float64) Summary {
		xs := make([]float64, len(r.Samples))
		for i, s := range r.Samples {
			xs[i] = f(s)
		}
		return Summarize(xs)
	}
	nanIfZero := func(x float64) float64 {
		if x == 0 {
			return math.NaN()
		}
		return x
	}
	r.Value = pick(func(s Sample) float64 { return s.Value })
	r.P50ms = pick(func(s Sample) float64 { return nanIfZero(s.P50ms) })
	r.P99ms = pick(func(s Sample) float64 { return nanIfZero(s.P99ms) })
	r.CPUus = pick(func(s Sample) float64 { return nanIfZero(s.CPUus) })
	r.MemMiB = pick(func(s Sample) float64 { return nanIfZero(s.MemMiB) })
	r.Errors = 0
	for _, s := range r.Samples {
		r.Errors += s.Non2xx + s.SocketErrors
	}
	// A row that did not run has no ratio (NaN would break results.json).
	if ref != nil && ref.Value.Median > 0 && !math.IsNaN(r.Value.Median) {
		r.Ratio = r.Value.Median / ref.Value.Median
	}
}

// Summarize fills every row's summaries and ratios.
func (t *Table) Summarize() {
	ref := t.Row(t.RefRow)
	if ref != nil {
		ref.summarize(nil)
	}
	for _, r := range t.Rows {
		r.summarize(ref)
	}
}

// Row returns the row of target, or nil.
func (t *Table) Row(target string) *Row {
	for _, r := range t.Rows {
		if r.Target == target {
			return r
		}
	}
	return nil
}

// row returns the row of target, adding it if needed.
func (t *Table) row(target string) *Row {
	if r := t.Row(target); r != nil {
		return r
	}
	r := &Row{Target: target}
	t.Rows = append(t.Rows, r)
	return r
}

// Table returns the table with the given id, or nil.
func (res *Results) Table(id string) *Table {
	for _, t := range res.Tables {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// WriteJSON writes results.json into dir.
func (res *Results) WriteJSON(dir string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("results json: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644)
}
