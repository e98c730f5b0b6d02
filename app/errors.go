package app

import (
	"errors"
	"fmt"
)

// Code classifies an Error. The HTTP layer maps each code to a status in one
// place (app/http); nothing else decides statuses.
type Code string

// The error codes the domain uses.
const (
	EINVALID      Code = "invalid"      // bad input: 400
	EVALIDATION   Code = "validation"   // fields failed validation: 422
	EUNAUTHORIZED Code = "unauthorized" // missing or wrong API key: 401
	ENOTFOUND     Code = "not_found"    // 404
	ECONFLICT     Code = "conflict"     // 409
	ETOOLARGE     Code = "too_large"    // 413
	EUNSUPPORTED  Code = "unsupported"  // unsupported media type: 415
	EUNAVAILABLE  Code = "unavailable"  // a backend is down: 503 with Retry-After
	EINTERNAL     Code = "internal"     // 500; the message is never shown
)

// Error is a domain error: a code, a message safe to show to a user, the
// per-field problems of a validation failure, and the underlying cause,
// which is logged but never shown.
type Error struct {
	Code    Code
	Message string
	Fields  map[string]string
	Err     error
}

// Error implements error: the message, then the cause. The code is not
// repeated: it decides the status, and a message already says it in words
// ("mail is unavailable"). Without a message, the code stands in for it.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = string(e.Code)
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an Error with the given code and a formatted user-facing message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Unavailable wraps err, the failure of the named backend, as EUNAVAILABLE.
// Adapters return it when their server cannot be reached, so that writes
// answer 503 with Retry-After instead of 500.
//
// An err that is already EUNAVAILABLE (an adapter's, wrapped again by the
// service) gives its cause, not its message: this backend's name replaces
// the adapter's, so the message reads once ("blob storage is unavailable:
// dial tcp ...", not "... is unavailable: unavailable: ... is unavailable").
func Unavailable(backend string, err error) *Error {
	var e *Error
	if errors.As(err, &e) && e.Code == EUNAVAILABLE {
		err = e.Err
	}
	return &Error{Code: EUNAVAILABLE, Message: backend + " is unavailable", Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the user-facing message of the first *Error in err's
// chain. Any other error yields a generic message: internals are never shown.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "internal error"
}

// ErrorFields returns the per-field problems of a validation error, or nil.
func ErrorFields(err error) map[string]string {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}
