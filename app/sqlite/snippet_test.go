package sqlite

import (
	"path/filepath"
	"strings"
	"testing"

	"selfhost.dev/edgeapp/app"
)

// TestSnippets checks that a snippet comes from the text when it matched
// and from the filename when only the filename did.
func TestSnippets(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	x := NewIndex(db)
	long := strings.Repeat("filler words go here. ", 30)
	for _, d := range []struct {
		id         int64
		name, text string
	}{
		{1, "kangaroo-facts.txt", "Nothing about marsupials here."},
		{2, "zoo.txt", long + "One wombat near the exit. " + long},
		{3, "<b>html</b>.txt", "Text with <script>alert(1)</script> and a numbat."},
	} {
		if err := x.IndexDocument(t.Context(), &app.Document{ID: d.id, Filename: d.name, DocumentType: "t"}, d.text); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ q, want string }{
		{"kangaroo", "<mark>kangaroo</mark>-facts.txt"},
		{"wombat", "<mark>wombat</mark>"},
		{"numbat", "<script>alert(1)</script> and a <mark>numbat</mark>"}, // not escaped: the client escapes
	} {
		res, err := x.SearchDocuments(t.Context(), app.SearchQuery{Q: tc.q, Limit: 10})
		if err != nil || len(res.Hits) != 1 {
			t.Fatalf("search %q = %+v, %v; want one hit", tc.q, res, err)
		}
		if s := res.Hits[0].Snippet; !strings.Contains(s, tc.want) || len(s) > 200 {
			t.Errorf("search %q: snippet %q, want a short excerpt containing %q", tc.q, s, tc.want)
		}
	}
}
