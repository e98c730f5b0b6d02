package bench

import (
	"context"
	"fmt"
	"sort"
)

// scenario7 compares response compression: a 100 KiB JSON answer
// (upstream.JSONSize) through the edge (encode: [zstd, gzip]), Caddy
// (encode zstd gzip 5) and nginx (gzip_comp_level 5), each asked for gzip
// and, where it has it, zstd; the direct row is the uncompressed answer.
// Pinned, logs on, 64 connections. Bytes on the wire per response are
// what wrk read (headers included).
func (e *Env) scenario7(ctx context.Context, opts Options) ([]*Table, error) {
	f, err := e.StartFleet(ctx, "s7", []string{Edge, Caddy, Nginx}, true, true)
	if err != nil {
		return nil, err
	}
	defer f.Stop(opts.Keep)
	t := &Table{
		ID: "s7-compress", Scenario: 7, Layout: "pinned", Logs: true, Conns: 64, Unit: "req/s", RefRow: Direct,
		Title: "Scenario 7: GET 100 KiB JSON, compressed (gzip level 5, zstd default), 64 connections",
		Notes: layoutNotes(true),
	}
	gz := load{Path: "/json", Headers: []string{"Accept-Encoding: gzip"}}
	zs := load{Path: "/json", Headers: []string{"Accept-Encoding: zstd"}}
	cells := []cell{
		{table: t, target: Direct, row: "direct (identity)", load: load{Path: "/json"}, conns: 64},
		{table: t, target: Edge, row: "edge gzip", load: gz, conns: 64},
		{table: t, target: Edge, row: "edge zstd", load: zs, conns: 64},
		{table: t, target: Caddy, row: "caddy gzip", load: gz, conns: 64},
		{table: t, target: Caddy, row: "caddy zstd", load: zs, conns: 64},
		{table: t, target: Nginx, row: "nginx gzip", load: gz, conns: 64},
	}
	e.interleave(ctx, f, cells, opts.Rounds, opts.Duration)
	// Bytes on the wire, per row: the median of the rounds.
	for _, c := range cells {
		row := t.row(c.row)
		var bs []float64
		for _, s := range row.Samples {
			bs = append(bs, s.BytesPerReq)
		}
		if len(bs) == 0 {
			continue
		}
		sort.Float64s(bs)
		t.Notes = append(t.Notes, fmt.Sprintf("%s: %.1f KiB per response on the wire", c.row, bs[len(bs)/2]/1024))
	}
	return []*Table{t}, ctx.Err()
}
