package app_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"selfhost.dev/edgeapp/app"
)

// TestErrorsDoNotRepeat: an adapter's EUNAVAILABLE wrapped again by the
// service (Ready, a write) reads once, not "unavailable: mail is
// unavailable: unavailable: mail is unavailable: ...".
func TestErrorsDoNotRepeat(t *testing.T) {
	cause := errors.New("ses: retrieve credentials: no AWS credentials")
	inner := app.Unavailable("mail", cause)
	for _, err := range []error{
		app.Unavailable("mail", inner),
		app.Unavailable("mail", fmt.Errorf("ping: %w", inner)),
		fmt.Errorf("send: %w", app.Unavailable("mail", inner)),
	} {
		msg := err.Error()
		if n := strings.Count(msg, "unavailable"); n != 1 {
			t.Errorf("%q says unavailable %d times, want once", msg, n)
		}
		if !strings.HasSuffix(msg, "mail is unavailable: "+cause.Error()) {
			t.Errorf("%q does not end with the backend and the cause", msg)
		}
		if app.ErrorCode(err) != app.EUNAVAILABLE || !errors.Is(err, cause) {
			t.Errorf("%q lost its code or cause", msg)
		}
	}
	// The service's name for the backend wins over the adapter's.
	if got := app.Unavailable("blob storage", app.Unavailable("object storage", cause)).Error(); got != "blob storage is unavailable: "+cause.Error() {
		t.Errorf("re-wrapped with another name: %q", got)
	}
	if got := (&app.Error{Code: app.ENOTFOUND}).Error(); got != "not_found" {
		t.Errorf("an Error without a message reads %q, want its code", got)
	}
	if got := app.Errorf(app.EINVALID, "bad %s", "input").Error(); got != "bad input" {
		t.Errorf("Errorf reads %q", got)
	}
}
