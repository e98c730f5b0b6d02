package sqlite

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"selfhost.dev/edgeapp/app"
)

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b  string
		limit int
		want  int
	}{
		{"agreement", "agreement", 2, 0},
		{"agrement", "agreement", 2, 1},   // deletion
		{"agreemment", "agreement", 2, 1}, // insertion
		{"agreenent", "agreement", 2, 1},  // substitution
		{"agreemnet", "agreement", 2, 1},  // swap
		{"agremnet", "agreement", 2, 2},
		{"zzzzzzzzz", "agreement", 2, 3}, // stops at limit+1
		{"café", "cafe", 1, 1},
		{"", "abc", 5, 3},
	} {
		if got := distance(tc.a, tc.b, tc.limit); got != tc.want {
			t.Errorf("distance(%q, %q, %d) = %d, want %d", tc.a, tc.b, tc.limit, got, tc.want)
		}
	}
}

func TestTypos(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	x := NewIndex(db)
	for id, text := range map[int64]string{
		1: "Payment received for the quarterly hosting invoice.",
		2: "This service agreement covers hosting, backups and monitoring.",
		3: "Meeting notes: discuss the café migration and nightly backups.",
	} {
		if err := x.IndexDocument(t.Context(), &app.Document{ID: id, Filename: "f.txt", DocumentType: "t"}, text); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.IndexContact(t.Context(), &app.Contact{ID: 9, Name: "Grace Hopper", Email: "grace@navy.example", Message: "Compilers"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q    string
		want []int64
	}{
		{"agrement", []int64{2}},             // one typo
		{"monitorign", []int64{2}},           // swap, as a prefix too
		{"quartelry invoice", []int64{1}},    // one word wrong, one right
		{"monitroign", []int64{2}},           // two typos in a long word
		{"agremnet", []int64{}},              // but one in a word of eight
		{"bakcups", []int64{2, 3}},           // several documents
		{"migraton cafe", []int64{3}},        // diacritics folded
		{"hostign xylophone", []int64{}},     // every word must still match
		{"agreement monitoring", []int64{2}}, // exact still works
		{"nigthly", []int64{3}},              // swap in a 7-letter word
		{"invioce", []int64{1}},              // swap
		{"nots", []int64{}},                  // short words get no typo
		{"xgreement", []int64{}},             // first characters must be right
	} {
		res, err := x.SearchDocuments(t.Context(), app.SearchQuery{Q: tc.q, Limit: 10})
		if err != nil {
			t.Fatalf("search %q: %v", tc.q, err)
		}
		got := []int64{}
		for _, h := range res.Hits {
			got = append(got, h.ID)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) || res.Total != len(tc.want) {
			t.Errorf("search %q = %v (total %d), want %v", tc.q, got, res.Total, tc.want)
		}
	}
	res, err := x.SearchDocuments(t.Context(), app.SearchQuery{Q: "agrement", Limit: 10})
	if err != nil || len(res.Hits) != 1 {
		t.Fatalf("search agrement = %+v, %v", res, err)
	}
	if s := res.Hits[0].Snippet; !strings.Contains(s, "<mark>agreement</mark>") {
		t.Errorf("fuzzy snippet %q does not mark the corrected word", s)
	}
	res, err = x.SearchContacts(t.Context(), app.SearchQuery{Q: "Hoppr", Limit: 10})
	if err != nil || len(res.Hits) != 1 || res.Hits[0].ID != 9 {
		t.Errorf("search contacts Hoper = %+v, %v; want contact 9", res, err)
	}
}
