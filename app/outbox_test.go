package app_test

import (
	"testing"

	"selfhost.dev/edgeapp/app"
)

func TestSetRowID(t *testing.T) {
	zero := app.NewJob(app.JobIndexContact, app.ContactPayload{})
	set := app.NewJob(app.JobIndexContact, app.ContactPayload{ContactID: 7})
	other := app.NewJob(app.JobDeleteDocument, app.DocumentPayload{DocumentID: 0, StoragePath: "k"})
	empty := &app.Job{Kind: "x"}
	if err := app.SetRowID([]*app.Job{zero, set, other, empty}, "contact_id", 42); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		j    *app.Job
		want string
	}{
		{zero, `{"contact_id":42}`},
		{set, `{"contact_id":7}`},
		{other, `{"document_id":0,"storage_path":"k"}`},
		{empty, ``},
	} {
		if string(tc.j.Payload) != tc.want {
			t.Errorf("payload %s, want %s", tc.j.Payload, tc.want)
		}
	}
	bad := &app.Job{Kind: "bad", Payload: []byte("[")}
	if err := app.SetRowID([]*app.Job{bad}, "contact_id", 1); err == nil {
		t.Error("malformed payload: no error")
	}
}
