package apptest

import (
	"maps"
	"slices"
	"testing"

	"selfhost.dev/edgeapp/app"
)

// testDocumentStoragePaths: a store that can tell which blob keys its rows
// reference (app.StoragePathStore) names exactly those among the keys
// asked, also after a row is deleted, and answers an empty question.
func testDocumentStoragePaths(t *testing.T, s app.Store) {
	ps, ok := s.(app.StoragePathStore)
	if !ok {
		t.Skip("the store does not implement app.StoragePathStore: staged uploads a crash left are not swept")
	}
	a, b := newDocument(1), newDocument(2)
	mustCreateDocument(t, s, a)
	mustCreateDocument(t, s, b)
	got, err := ps.DocumentStoragePaths(t.Context(), []string{a.StoragePath, "documents/none.pdf", b.StoragePath, "it's; -- odd"})
	if keys := slices.Sorted(maps.Keys(got)); err != nil || !slices.Equal(keys, slices.Sorted(slices.Values([]string{a.StoragePath, b.StoragePath}))) {
		t.Errorf("DocumentStoragePaths = %v, %v; want %s and %s", keys, err, a.StoragePath, b.StoragePath)
	}
	if err := s.DeleteDocument(t.Context(), a.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := ps.DocumentStoragePaths(t.Context(), []string{a.StoragePath}); err != nil || len(got) != 0 {
		t.Errorf("after deleting its row, DocumentStoragePaths = %v, %v; want none", got, err)
	}
	if got, err := ps.DocumentStoragePaths(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("DocumentStoragePaths(nil) = %v, %v", got, err)
	}
}
