package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"selfhost.dev/edgeapp/bench/upstream"
)

// TestStreamClients runs the harness's upload and download clients against
// the bench upstream, as scenarios 3 and 9 do through each proxy.
func TestStreamClients(t *testing.T) {
	srv := httptest.NewServer(&upstream.Handler{})
	defer srv.Close()
	ctx := context.Background()
	const size = 3<<20 + 17 // not a multiple of the 64 KiB writes
	d, err := Download(ctx, srv.URL+"/download?bytes=3145745", size)
	if err != nil || d.Status != http.StatusOK || d.Received != size || d.Bytes != size {
		t.Errorf("download: %+v, %v; want %d bytes, 200", d, err, size)
	}
	u, err := Upload(ctx, srv.URL+"/upload", size)
	if err != nil || u.Status != http.StatusOK || u.Received != size {
		t.Errorf("upload: %+v, %v; want %d bytes, 200", u, err, size)
	}
	for _, bad := range []string{"", "-1", "x", "17179869185"} {
		d, _ := Download(ctx, srv.URL+"/download?bytes="+bad, 0)
		if d.Status != http.StatusBadRequest {
			t.Errorf("download bytes=%q: status %d, want 400", bad, d.Status)
		}
	}
}

func TestStreamCPUCheck(t *testing.T) {
	tbl := &Table{Scenario: 10, Layout: Pinned, RefRow: Direct}
	tbl.row(Edge).Samples = []Sample{{Value: 900, CPUus: 0.6}}
	tbl.row(Nginx).Samples = []Sample{{Value: 1000, CPUus: 0.5}}
	tbl.Summarize()
	res := &Results{Tables: []*Table{tbl}}
	c := checks(res)
	if len(c) != 1 || c[0].Pass || c[0].Got < 1.19 || c[0].Got > 1.21 {
		t.Errorf("checks: %+v; want one failed check at 1.2×", c)
	}
}

// TestSkippedRowJSON: a peer that did not run (Caddy 2.11 not installed)
// leaves a row without samples, which results.json must still hold.
func TestSkippedRowJSON(t *testing.T) {
	tbl := &Table{Scenario: 3, RefRow: Direct}
	tbl.row(Direct).Samples = []Sample{{Value: 500}}
	tbl.row(Caddy211).Note = "not run"
	tbl.Summarize()
	if err := (&Results{Tables: []*Table{tbl}}).WriteJSON(t.TempDir()); err != nil {
		t.Fatal(err)
	}
}
