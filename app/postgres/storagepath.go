package postgres

import (
	"context"
	"fmt"

	"selfhost.dev/edgeapp/app"
)

var _ app.StoragePathStore = (*DB)(nil)

// DocumentStoragePaths returns the keys among keys that a document row has
// as its storage_path.
func (db *DB) DocumentStoragePaths(ctx context.Context, keys []string) (map[string]bool, error) {
	found := make(map[string]bool, len(keys))
	if len(keys) == 0 {
		return found, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT storage_path FROM documents WHERE storage_path = ANY($1)`, keys)
	if err != nil {
		return nil, fmt.Errorf("document storage paths: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("document storage paths: %w", err)
		}
		found[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("document storage paths: %w", err)
	}
	return found, nil
}
