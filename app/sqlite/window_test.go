package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"

	"selfhost.dev/edgeapp/app"
)

// TestRankWindow checks that a query matching more rows than the rank
// window still counts them all, ranks within the newest, and pages past
// the window.
func TestRankWindow(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	x := NewIndex(db)
	x.rankWindow = 5
	for id := int64(1); id <= 20; id++ {
		text := "common word"
		if id == 3 || id == 18 {
			text = "common common common word" // better matches: only 18 is in the window
		}
		d := &app.Document{ID: id, Filename: fmt.Sprintf("f%d.txt", id), DocumentType: []string{"a", "b"}[id%2]}
		if err := x.IndexDocument(t.Context(), d, text); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		q        app.SearchQuery
		total    int
		first    int64
		hits     int
		inWindow int64 // every hit's id is at least this
	}{
		{app.SearchQuery{Q: "common", Limit: 3}, 20, 18, 3, 16},
		{app.SearchQuery{Q: "common", Limit: 3, Offset: 3}, 20, 0, 3, 14},         // window grows to 6
		{app.SearchQuery{Q: "common", Limit: 10, Offset: 15}, 20, 0, 5, 1},        // window covers all
		{app.SearchQuery{Q: "common", DocumentType: "b", Limit: 2}, 10, 0, 2, 11}, // newest 5 of type b: 19..11
	} {
		res, err := x.SearchDocuments(t.Context(), tc.q)
		if err != nil {
			t.Fatalf("search %+v: %v", tc.q, err)
		}
		if res.Total != tc.total || len(res.Hits) != tc.hits || tc.first != 0 && res.Hits[0].ID != tc.first {
			t.Errorf("search %+v = total %d, hits %v; want total %d, %d hits, first %d", tc.q, res.Total, res.Hits, tc.total, tc.hits, tc.first)
		}
		for _, h := range res.Hits {
			if h.ID < tc.inWindow {
				t.Errorf("search %+v: hit %d outside the window (>= %d)", tc.q, h.ID, tc.inWindow)
			}
		}
	}
}
