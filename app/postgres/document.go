package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"selfhost.dev/edgeapp/app"
)

const documentColumns = "id, filename, document_type, content_type, size, sha256, storage_path, created_at, text_status, text_reason"

// CreateDocument inserts d, setting its ID and CreatedAt, and its jobs in
// one transaction. Jobs whose payload has no document_id yet get the new
// document's.
func (db *DB) CreateDocument(ctx context.Context, d *app.Document, jobs ...*app.Job) error {
	return db.inTx(ctx, "create document", func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO documents
			(filename, document_type, content_type, size, sha256, storage_path, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now())) RETURNING id, created_at`,
			d.Filename, d.DocumentType, d.ContentType, d.Size, d.SHA256, d.StoragePath, nullTime(d.CreatedAt),
		).Scan(&d.ID, &d.CreatedAt)
		if err != nil {
			return err
		}
		d.CreatedAt = d.CreatedAt.UTC()
		return insertJobs(ctx, tx, jobs, "document_id", d.ID)
	})
}

// Document returns the document with id, or ENOTFOUND.
func (db *DB) Document(ctx context.Context, id int64) (*app.Document, error) {
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	d, err := scanDocument(db.pool.QueryRow(ctx, "SELECT "+documentColumns+" FROM documents WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, app.Errorf(app.ENOTFOUND, "document %d not found", id)
	}
	return d, dbError("get document", err)
}

// DocumentsByID returns the documents with the given ids in one query.
func (db *DB) DocumentsByID(ctx context.Context, ids []int64) (map[int64]*app.Document, error) {
	docs := make(map[int64]*app.Document, len(ids))
	if len(ids) == 0 {
		return docs, nil
	}
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, "SELECT "+documentColumns+" FROM documents WHERE id = ANY($1)", ids)
	if err != nil {
		return nil, dbError("get documents", err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDocument(rows)
		if err != nil {
			return nil, dbError("get documents", err)
		}
		docs[d.ID] = d
	}
	return docs, dbError("get documents", rows.Err())
}

// DeleteDocument deletes the document's row and stores its jobs, in one
// transaction; ENOTFOUND, and no jobs, if there is no such document.
func (db *DB) DeleteDocument(ctx context.Context, id int64, jobs ...*app.Job) error {
	return db.inTx(ctx, "delete document", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM documents WHERE id = $1", id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return app.Errorf(app.ENOTFOUND, "document %d not found", id)
		}
		return insertJobs(ctx, tx, jobs, "document_id", id)
	})
}

func scanDocument(row pgx.Row) (*app.Document, error) {
	d := new(app.Document)
	err := row.Scan(&d.ID, &d.Filename, &d.DocumentType, &d.ContentType, &d.Size, &d.SHA256, &d.StoragePath, &d.CreatedAt, &d.TextStatus, &d.TextReason)
	if err != nil {
		return nil, err
	}
	if d.TextStatus == "" {
		d.TextStatus = app.TextPending
	}
	d.CreatedAt = d.CreatedAt.UTC()
	return d, nil
}
