package http_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"selfhost.dev/edgeapp/app"
)

// brokenStore fails contact writes with err, as a database that is down
// (EUNAVAILABLE) or misbehaving (any other error) would.
type brokenStore struct {
	app.Store
	err error
}

func (s brokenStore) CreateContact(context.Context, *app.Contact, ...*app.Job) error {
	return s.err
}

func withStore(wrap func(app.Store) app.Store) envOption {
	return func(s *app.Service, _ *app.Worker) { s.Store = wrap(s.Store) }
}

// TestBackendErrors: a backend that is down answers 503 with Retry-After;
// any other failure answers a generic 500 whose cause is logged, never shown.
func TestBackendErrors(t *testing.T) {
	down := newEnv(t, withStore(func(s app.Store) app.Store {
		return brokenStore{s, app.Unavailable("database", errors.New("dial tcp 127.0.0.1:5432: connection refused"))}
	}))
	r := down.postContact("A", "a@example.com", "m")
	if r.status != 503 || r.json["error"] != "database is unavailable" || r.header.Get("Retry-After") == "" {
		t.Errorf("database down: %d %s Retry-After=%q", r.status, r.body, r.header.Get("Retry-After"))
	}

	const secret = "SELECT * FROM contacts -- near \"x\": syntax error"
	broken := newEnv(t, withStore(func(s app.Store) app.Store { return brokenStore{s, errors.New(secret)} }))
	r = broken.postContact("A", "a@example.com", "m")
	if r.status != 500 || strings.TrimSpace(string(r.body)) != `{"error":"internal error"}` {
		t.Errorf("internal error: %d %s", r.status, r.body)
	}
	if !strings.Contains(broken.logs.String(), "syntax error") {
		t.Error("the cause of a 500 was not logged")
	}
}

// TestAdminKeyOpensPublicEndpoints: the admin may do what the public may;
// the public key never opens admin endpoints (see TestBadInput).
func TestAdminKeyOpensPublicEndpoints(t *testing.T) {
	e := newEnv(t)
	r := e.do(request{method: "POST", path: "/contact", key: adminKey, contentType: "application/json",
		body: strings.NewReader(`{"name":"Root","email":"root@example.com","message":"hi"}`)})
	if r.status != 201 {
		t.Errorf("POST /contact with the admin key: %d %s", r.status, r.body)
	}
}
