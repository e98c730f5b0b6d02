package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"selfhost.dev/edgeapp/app"
)

const documentColumns = `id, filename, document_type, content_type, size, sha256, storage_path, created_at, text_status, text_reason`

// CreateDocument stores d and jobs in one transaction, setting d.ID, and
// d.CreatedAt if zero, and filling a zero document_id in the jobs' payloads.
func (db *DB) CreateDocument(ctx context.Context, d *app.Document, jobs ...*app.Job) error {
	created := d.CreatedAt
	if created.IsZero() {
		created = now()
	}
	var id int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx,
			`INSERT INTO documents (filename, document_type, content_type, size, sha256, storage_path, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			d.Filename, d.DocumentType, d.ContentType, d.Size, d.SHA256, d.StoragePath, unixNano(created)).Scan(&id)
		if err != nil {
			return err
		}
		if err := app.SetRowID(jobs, "document_id", id); err != nil {
			return err
		}
		return insertJobs(ctx, tx, jobs)
	})
	if err != nil {
		return fmt.Errorf("create document: %w", err)
	}
	d.ID, d.CreatedAt = id, created
	return nil
}

// Document returns the document with the given id, or ENOTFOUND.
func (db *DB) Document(ctx context.Context, id int64) (*app.Document, error) {
	d, err := scanDocument(db.read.QueryRowContext(ctx, `SELECT `+documentColumns+` FROM documents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, app.Errorf(app.ENOTFOUND, "document %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get document %d: %w", id, err)
	}
	return d, nil
}

// DocumentsByID returns the documents with the given ids in one query.
func (db *DB) DocumentsByID(ctx context.Context, ids []int64) (map[int64]*app.Document, error) {
	docs := make(map[int64]*app.Document, len(ids))
	if len(ids) == 0 {
		return docs, nil
	}
	rows, err := db.read.QueryContext(ctx,
		`SELECT `+documentColumns+` FROM documents WHERE id IN (SELECT value FROM json_each(?))`, idsJSON(ids))
	if err != nil {
		return nil, fmt.Errorf("documents by id: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDocument(rows)
		if err != nil {
			return nil, fmt.Errorf("documents by id: %w", err)
		}
		docs[d.ID] = d
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("documents by id: %w", err)
	}
	return docs, nil
}

// DeleteDocument deletes the document's row and stores jobs in one
// transaction; if there is no such document it stores nothing.
func (db *DB) DeleteDocument(ctx context.Context, id int64, jobs ...*app.Job) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM documents WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return app.Errorf(app.ENOTFOUND, "document %d not found", id)
		}
		return insertJobs(ctx, tx, jobs)
	})
	if err != nil {
		return fmt.Errorf("delete document %d: %w", id, err)
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanDocument(s scanner) (*app.Document, error) {
	var d app.Document
	var created int64
	if err := s.Scan(&d.ID, &d.Filename, &d.DocumentType, &d.ContentType, &d.Size, &d.SHA256, &d.StoragePath, &created, &d.TextStatus, &d.TextReason); err != nil {
		return nil, err
	}
	if d.TextStatus == "" {
		d.TextStatus = app.TextPending
	}
	d.CreatedAt = fromUnixNano(created)
	return &d, nil
}
