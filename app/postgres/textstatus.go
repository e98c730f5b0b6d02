package postgres

import (
	"context"

	"selfhost.dev/edgeapp/app"
)

// SetTextStatus records the state of a document's text and why.
func (db *DB) SetTextStatus(ctx context.Context, id int64, status, reason string) error {
	if err := db.ready(ctx); err != nil {
		return err
	}
	tag, err := db.pool.Exec(ctx, "UPDATE documents SET text_status = $1, text_reason = $2 WHERE id = $3", status, reason, id)
	if err != nil {
		return dbError("set text status", err)
	}
	if tag.RowsAffected() == 0 {
		return app.Errorf(app.ENOTFOUND, "document %d not found", id)
	}
	return nil
}
