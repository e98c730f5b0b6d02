package bench

import (
	"fmt"
	"math"
)

// checks judges issue 5's targets on res. A target whose table is missing
// is left out rather than failed: the run did not measure it.
func checks(res *Results) []Check {
	var out []Check
	ratio := func(t *Table, a, b string) (float64, bool) {
		ra, rb := t.Row(a), t.Row(b)
		if ra == nil || rb == nil || len(ra.Samples) == 0 || len(rb.Samples) == 0 || rb.Value.Median == 0 {
			return math.NaN(), false
		}
		return ra.Value.Median / rb.Value.Median, true
	}
	for _, t := range res.Tables {
		switch {
		case t.Scenario == 1 && t.Logs:
			where := fmt.Sprintf("scenario 1, %d conns, %s, logs on", t.Conns, t.Layout)
			if r, ok := ratio(t, Edge, Caddy); ok {
				out = append(out, Check{Name: "edge/Caddy req/s, " + where, Want: "≥ 3", Got: r, Unit: "×", Pass: r >= 3, Note: cpuNote(t, Caddy)})
			}
			if r, ok := ratio(t, Edge, Caddy211); ok {
				out = append(out, Check{Name: "edge/Caddy 2.11 req/s, " + where, Want: "≥ 3", Got: r, Unit: "×", Pass: r >= 3, Note: cpuNote(t, Caddy211)})
			}
			// Issue 12: the edge's CPU per request within 1.4 × nginx's.
			if e, n := t.Row(Edge), t.Row(Nginx); e != nil && n != nil && n.CPUus.Median > 0 && !math.IsNaN(e.CPUus.Median) {
				r := e.CPUus.Median / n.CPUus.Median
				out = append(out, Check{Name: "edge/nginx CPU per request, " + where, Want: "≤ 1.4", Got: r, Unit: "×", Pass: r <= 1.4,
					Note: fmt.Sprintf("%.1f vs %.1f µs", e.CPUus.Median, n.CPUus.Median)})
			}
			if r, ok := ratio(t, Edge, Nginx); ok {
				out = append(out, Check{Name: "edge/nginx req/s, " + where, Want: "≥ 0.6", Got: r, Unit: "×", Pass: r >= 0.6, Note: cpuNote(t, Nginx)})
			}
		case t.Scenario == 2:
			if r, ok := ratio(t, "edge auth", "edge open"); ok {
				c := Check{Name: "edge auth/open route req/s (scenario 2)", Want: "≥ 0.9", Got: r, Unit: "×", Pass: r >= 0.9}
				if a, o := t.Row("edge auth"), t.Row("edge open"); a.CPUus.Median > 0 && o.CPUus.Median > 0 {
					c.Note = fmt.Sprintf("by CPU per request: open/auth = %.2f× (%.1f vs %.1f µs)", o.CPUus.Median/a.CPUus.Median, o.CPUus.Median, a.CPUus.Median)
				}
				out = append(out, c)
			}
		case t.Scenario == 3:
			if r, ok := ratio(t, Edge, Direct); ok {
				out = append(out, Check{Name: "edge/direct upload throughput (scenario 3, " + t.Layout + ")", Want: "≥ 0.8", Got: r, Unit: "×", Pass: r >= 0.8})
			}
			if row := t.Row(Edge); row != nil && len(row.Samples) > 0 {
				out = append(out, Check{Name: "edge peak RSS during the upload (scenario 3, " + t.Layout + ", worst round)", Want: "≤ 32", Got: row.MemMiB.Max, Unit: "MiB", Pass: row.MemMiB.Max <= 32})
			}
			out = append(out, streamCPUCheck(t, "upload (scenario 3, "+t.Layout+")")...)
		case t.Scenario == 10:
			out = append(out, streamCPUCheck(t, "download (scenario 10, "+t.Layout+")")...)
		case t.Scenario == 4:
			for _, row := range t.Rows {
				if len(row.Samples) > 0 {
					out = append(out, Check{Name: "failed requests during SIGHUP every 100 ms (scenario 4)", Want: "= 0", Got: float64(row.Errors), Pass: row.Errors == 0 && row.Note == ""})
				}
			}
		case t.Scenario == 9:
			for _, row := range t.Rows {
				if len(row.Samples) > 0 {
					out = append(out, Check{Name: "failed requests, " + row.Target + " (scenario 9)", Want: "= 0", Got: float64(row.Errors), Pass: row.Errors == 0 && row.Note == ""})
				}
			}
		case t.Scenario == 5:
			if row := t.Row(Edge); row != nil && len(row.Samples) > 0 {
				c := Check{Name: fmt.Sprintf("edge RSS with %d idle connections (scenario 5)", t.Conns), Want: "≤ 150", Got: row.Value.Max, Unit: "MiB", Pass: row.Value.Max <= 150 && row.Errors == 0}
				if row.Errors > 0 {
					c.Note = row.Note
				}
				out = append(out, c)
			}
		}
	}
	return out
}

// cpuNote compares the edge's CPU per request with peer's: on a shared,
// busy machine req/s swings with the neighbours' load, while the CPU a
// proxy spends per request barely moves, so this is the steadier ratio.
func cpuNote(t *Table, peer string) string {
	e, p := t.Row(Edge), t.Row(peer)
	if e == nil || p == nil || math.IsNaN(e.CPUus.Median) || math.IsNaN(p.CPUus.Median) || e.CPUus.Median == 0 {
		return ""
	}
	return fmt.Sprintf("by CPU per request: %s/edge = %.2f× (%.0f vs %.0f µs)", peer, p.CPUus.Median/e.CPUus.Median, p.CPUus.Median, e.CPUus.Median)
}

// streamCPUCheck is issue 12's streaming target: the edge's CPU seconds per
// GiB moved no more than nginx's.
func streamCPUCheck(t *Table, what string) []Check {
	e, n := t.Row(Edge), t.Row(Nginx)
	if e == nil || n == nil || len(e.Samples) == 0 || len(n.Samples) == 0 || n.CPUus.Median <= 0 {
		return nil
	}
	r := e.CPUus.Median / n.CPUus.Median
	return []Check{{Name: "edge/nginx CPU per GiB, " + what, Want: "≤ 1", Got: r, Unit: "×", Pass: r <= 1,
		Note: fmt.Sprintf("%.2f vs %.2f s/GiB", e.CPUus.Median, n.CPUus.Median)}}
}
