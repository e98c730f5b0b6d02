package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"selfhost.dev/edgeapp/app"
)

// CreateContact stores c and jobs in one transaction, setting c.ID, and
// c.CreatedAt if zero, and filling a zero contact_id in the jobs' payloads.
func (db *DB) CreateContact(ctx context.Context, c *app.Contact, jobs ...*app.Job) error {
	created := c.CreatedAt
	if created.IsZero() {
		created = now()
	}
	var id int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx,
			`INSERT INTO contacts (name, email, message, created_at) VALUES (?, ?, ?, ?) RETURNING id`,
			c.Name, c.Email, c.Message, unixNano(created)).Scan(&id)
		if err != nil {
			return err
		}
		if err := app.SetRowID(jobs, "contact_id", id); err != nil {
			return err
		}
		return insertJobs(ctx, tx, jobs)
	})
	if err != nil {
		return fmt.Errorf("create contact: %w", err)
	}
	c.ID, c.CreatedAt = id, created
	return nil
}

// Contacts lists contacts newest first.
func (db *DB) Contacts(ctx context.Context, f app.ContactFilter) ([]*app.Contact, int, error) {
	where, args := "", []any{}
	if len(f.IDs) > 0 {
		where, args = `WHERE id IN (SELECT value FROM json_each(?))`, append(args, idsJSON(f.IDs))
	}
	var total int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM contacts `+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count contacts: %w", err)
	}
	rows, err := db.read.QueryContext(ctx,
		`SELECT id, name, email, message, created_at FROM contacts `+where+
			` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
		append(args, f.Limit, max(f.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("list contacts: %w", err)
	}
	defer rows.Close()
	cs := []*app.Contact{}
	for rows.Next() {
		var c app.Contact
		var created int64
		if err := rows.Scan(&c.ID, &c.Name, &c.Email, &c.Message, &created); err != nil {
			return nil, 0, fmt.Errorf("list contacts: %w", err)
		}
		c.CreatedAt = fromUnixNano(created)
		cs = append(cs, &c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list contacts: %w", err)
	}
	return cs, total, nil
}
