package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
)

// streamPeers are the targets of the streaming scenarios (3: upload, 10:
// download), in the order their rows appear. nginx streams both ways
// (proxy_request_buffering off; proxy_buffering's spill to disk is capped
// by the response's pace), as do both Caddys.
var streamPeers = []string{Direct, Edge, Nginx, Caddy, Caddy211}

// gib is one GiB, the unit of the streaming tables' CPU column.
const gib = 1 << 30

// scenario3 streams a large upload through each proxy to the discarding
// upstream and straight to it, in each layout, and reads each proxy's CPU
// seconds per GiB and its peak RSS per upload.
func (e *Env) scenario3(ctx context.Context, opts Options) ([]*Table, error) {
	var tables []*Table
	for _, layout := range opts.Layouts {
		t, err := e.stream(ctx, opts, layout, false)
		if t != nil {
			tables = append(tables, t)
		}
		if err != nil {
			return tables, err
		}
	}
	return tables, nil
}

// scenario10 streams a large download from the upstream through each proxy,
// in the first layout only (pinned by default: CPU per GiB is the figure,
// and it does not depend on the layout).
func (e *Env) scenario10(ctx context.Context, opts Options) ([]*Table, error) {
	t, err := e.stream(ctx, opts, opts.Layouts[0], true)
	if t == nil {
		return nil, err
	}
	return []*Table{t}, err
}

// stream runs one streaming table: opts.Rounds rounds of one transfer per
// target, interleaved. download picks the direction.
func (e *Env) stream(ctx context.Context, opts Options, layout string, download bool) (*Table, error) {
	name, scenario, mib := "s3-upload-"+layout, 3, opts.UploadMiB
	title := fmt.Sprintf("Scenario 3: %d MiB upload streamed to a discarding upstream, %s", mib, layout)
	client := "upload"
	if download {
		name, scenario, mib = "s10-download-"+layout, 10, opts.DownloadMiB
		title = fmt.Sprintf("Scenario 10: %d MiB download streamed from the upstream, %s", mib, layout)
		client = "download"
	}
	f, err := e.StartFleetLayout(ctx, name, streamPeers[1:], layout, true)
	if err != nil {
		return nil, err
	}
	defer f.Stop(opts.Keep)
	size := mib << 20
	t := &Table{
		ID: name, Scenario: scenario, Layout: layout, Logs: true, Unit: "MiB/s", RefRow: Direct,
		MemLabel: "peak RSS (VmHWM) MiB", CPULabel: "CPU s/GiB",
		Title: title,
		Notes: append(layoutNote(layout),
			"the client is the harness's own "+client+" subcommand (Go net/http, 64 KiB reads, Content-Length set); pinned, it runs on CPU "+loadCPU,
			"CPU s/GiB is the proxy's process tree's utime+stime over the transfer per GiB moved (the upstream's on the direct row)",
			"peak RSS is the proxy's on its row and the upstream's on the direct row; VmHWM is reset before each transfer (5 > /proc/<pid>/clear_refs)"),
	}
	for _, target := range streamPeers {
		t.row(target)
	}
	for r := 0; r < opts.Rounds && ctx.Err() == nil; r++ {
		for _, target := range streamPeers {
			row := t.row(target)
			if f.Port(target) == 0 {
				row.Note = "not run: " + f.Skipped[target]
				continue
			}
			pid := f.Pid(target)
			resetPeak(pid)
			base := "http://127.0.0.1:" + strconv.Itoa(f.Port(target))
			cpu0, cerr := TreeCPU(pid)
			var u UploadResult
			if download {
				u, err = e.runClient(ctx, f, "download", base+"/download?bytes="+strconv.FormatInt(size, 10), size)
			} else {
				u, err = e.runClient(ctx, f, "upload", base+"/upload", size)
			}
			cpu1, cerr1 := TreeCPU(pid)
			if err != nil {
				row.Note = err.Error()
				e.Log("%s %s: %v", client, target, err)
				continue
			}
			s := Sample{Value: float64(u.Bytes) / (1 << 20) / u.Seconds, Requests: 1}
			if cerr == nil && cerr1 == nil && u.Bytes > 0 {
				s.CPUus = (cpu1 - cpu0).Seconds() / (float64(u.Bytes) / gib)
			}
			if u.Status != http.StatusOK || u.Received != size {
				s.Non2xx = 1
				row.Note = fmt.Sprintf("status %d, %d of %d bytes arrived", u.Status, u.Received, size)
			}
			if m, err := TreeMem(pid); err == nil {
				s.MemMiB = float64(m.HWM) / (1 << 20)
			}
			row.Samples = append(row.Samples, s)
			e.Log("  round %d  %-10s %-10s %7.0f MiB/s  cpu %5.2f s/GiB  peak RSS %6.1f MiB", r+1, layout, target, s.Value, s.CPUus, s.MemMiB)
		}
	}
	return t, ctx.Err()
}
