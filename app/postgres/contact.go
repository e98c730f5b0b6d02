package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"selfhost.dev/edgeapp/app"
)

// CreateContact inserts c, setting its ID and CreatedAt, and its jobs in
// one transaction. Jobs of the contact kinds whose payload has no
// contact_id yet get the new contact's.
func (db *DB) CreateContact(ctx context.Context, c *app.Contact, jobs ...*app.Job) error {
	return db.inTx(ctx, "create contact", func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO contacts (name, email, message, created_at)
			VALUES ($1, $2, $3, coalesce($4, now())) RETURNING id, created_at`,
			c.Name, c.Email, c.Message, nullTime(c.CreatedAt)).Scan(&c.ID, &c.CreatedAt)
		if err != nil {
			return err
		}
		c.CreatedAt = c.CreatedAt.UTC()
		return insertJobs(ctx, tx, jobs, "contact_id", c.ID)
	})
}

// Contacts lists contacts newest first. A Limit of 0 or less means no limit.
func (db *DB) Contacts(ctx context.Context, f app.ContactFilter) ([]*app.Contact, int, error) {
	if err := db.ready(ctx); err != nil {
		return nil, 0, err
	}
	ids := f.IDs
	if ids == nil {
		ids = []int64{}
	}
	var limit *int
	if f.Limit > 0 {
		limit = &f.Limit
	}
	rows, err := db.pool.Query(ctx, `SELECT id, name, email, message, created_at, count(*) OVER ()
		FROM contacts
		WHERE cardinality($1::bigint[]) = 0 OR id = ANY($1)
		ORDER BY created_at DESC, id DESC
		LIMIT $2 OFFSET $3`, ids, limit, max(f.Offset, 0))
	if err != nil {
		return nil, 0, dbError("list contacts", err)
	}
	var (
		cs    []*app.Contact
		total int
	)
	for rows.Next() {
		c := new(app.Contact)
		if err := rows.Scan(&c.ID, &c.Name, &c.Email, &c.Message, &c.CreatedAt, &total); err != nil {
			rows.Close()
			return nil, 0, dbError("list contacts", err)
		}
		c.CreatedAt = c.CreatedAt.UTC()
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, dbError("list contacts", err)
	}
	if len(cs) == 0 && f.Offset > 0 {
		// Past the last page the window count has no row to ride on.
		err := db.pool.QueryRow(ctx, `SELECT count(*) FROM contacts
			WHERE cardinality($1::bigint[]) = 0 OR id = ANY($1)`, ids).Scan(&total)
		if err != nil {
			return nil, 0, dbError("count contacts", err)
		}
	}
	return cs, total, nil
}

// nullTime makes a zero time NULL, so that the database's clock stamps rows
// whose caller did not.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
