package sqlite

import (
	"context"
	"fmt"

	"selfhost.dev/edgeapp/app"
)

// SetTextStatus records the state of a document's text and why.
func (db *DB) SetTextStatus(ctx context.Context, id int64, status, reason string) error {
	res, err := db.write.ExecContext(ctx, `UPDATE documents SET text_status = ?, text_reason = ? WHERE id = ?`, status, reason, id)
	if err != nil {
		return fmt.Errorf("set text status of document %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set text status of document %d: %w", id, err)
	} else if n == 0 {
		return app.Errorf(app.ENOTFOUND, "document %d not found", id)
	}
	return nil
}
