// Package logmail implements app.Mailer by writing each message to a
// structured log, for running without a mail server.
package logmail

import (
	"context"
	"errors"
	"log/slog"

	"selfhost.dev/edgeapp/app"
)

// Mailer logs messages instead of sending them. It implements app.Mailer.
//
// Each message is one record at Info with its from, to, subject and
// body_bytes; the body itself (which carries what visitors wrote) is added
// as "text" only when the logger is enabled at Debug.
type Mailer struct {
	log *slog.Logger
}

// New returns a Mailer that logs to logger. If logger is nil, slog.Default() is used.
func New(logger *slog.Logger) *Mailer {
	if logger == nil {
		logger = slog.Default()
	}
	return &Mailer{log: logger}
}

// Send logs m.
func (m *Mailer) Send(ctx context.Context, msg *app.Message) error {
	if len(msg.To) == 0 {
		return errors.New("log mail: message has no recipients")
	}
	attrs := []slog.Attr{
		slog.String("from", msg.From),
		slog.Any("to", msg.To),
		slog.String("subject", msg.Subject),
		slog.Int("body_bytes", len(msg.Text)),
	}
	if msg.ID != "" {
		// The same on every attempt: a repeat is visible in the log.
		attrs = append(attrs, slog.String("message_id", msg.ID))
	}
	if m.log.Enabled(ctx, slog.LevelDebug) {
		attrs = append(attrs, slog.String("text", msg.Text))
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "mail not sent: logged instead", attrs...)
	return nil
}

// Ping always succeeds: logging cannot be down.
func (m *Mailer) Ping(ctx context.Context) error { return nil }

var _ app.Mailer = (*Mailer)(nil)
