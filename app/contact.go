package app

import (
	"context"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on a contact submission's fields, counted in characters.
const (
	MaxContactName    = 100
	MaxContactMessage = 1000
	MaxContactEmail   = 254
)

// Contact is a message sent through the public contact form.
type Contact struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Message   string    `json:"message"`
	CreatedAt time.Time `json:"created_at"`
}

// Validate trims the fields and checks them, returning an EVALIDATION error
// that names every field that is wrong.
func (c *Contact) Validate() error {
	c.Name = strings.TrimSpace(c.Name)
	c.Email = strings.TrimSpace(c.Email)
	c.Message = strings.TrimSpace(c.Message)
	fields := map[string]string{}
	switch n := utf8.RuneCountInString(c.Name); {
	case n == 0:
		fields["name"] = "is required"
	case n > MaxContactName:
		fields["name"] = "must be at most 100 characters"
	}
	switch {
	case c.Email == "":
		fields["email"] = "is required"
	case !validEmail(c.Email):
		fields["email"] = "must be a valid email address"
	}
	switch n := utf8.RuneCountInString(c.Message); {
	case n == 0:
		fields["message"] = "is required"
	case n > MaxContactMessage:
		fields["message"] = "must be at most 1000 characters"
	}
	if len(fields) > 0 {
		return &Error{Code: EVALIDATION, Message: "validation failed", Fields: fields}
	}
	return nil
}

// validEmail accepts a bare addr-spec (no display name) with a dotted domain.
func validEmail(s string) bool {
	if len(s) > MaxContactEmail {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	domain := s[at+1:]
	return at > 0 && strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

// ContactFilter selects contacts for listing, newest first.
type ContactFilter struct {
	IDs    []int64 // if non-empty, only these
	Limit  int
	Offset int
}

// ContactStore keeps contacts. CreateContact writes the contact and the
// given outbox jobs in one transaction: either all are stored or none; it
// sets c.ID and c.CreatedAt, and fills a zero contact_id in the jobs'
// payloads with the new id (see SetRowID).
type ContactStore interface {
	CreateContact(ctx context.Context, c *Contact, jobs ...*Job) error
	// Contacts returns the contacts the filter selects and the total number
	// of contacts that match it ignoring Limit and Offset.
	Contacts(ctx context.Context, f ContactFilter) ([]*Contact, int, error)
}
