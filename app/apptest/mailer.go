package apptest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"selfhost.dev/edgeapp/app"
)

// TestMailer runs the app.Mailer contract. open returns a fresh mailer and
// sent, which reports the messages that reached the far side so far (the
// log, a test SMTP server, a fake SES endpoint), decoded back into
// app.Messages. Delivery may be asynchronous: sent is polled.
//
// Subjects and bodies carry non-ASCII text and several lines, so a
// transport must encode them (RFC 2047, quoted-printable ...) and sent must
// decode them. Line endings are compared after turning CRLF into LF and
// trimming trailing white space.
func TestMailer(t *testing.T, open func(t *testing.T) (m app.Mailer, sent func() []app.Message)) {
	t.Run("Ping", func(t *testing.T) {
		m, _ := open(t)
		if err := m.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("Send", func(t *testing.T) {
		m, sent := open(t)
		msgs := []app.Message{
			{
				From:    "noreply@example.com",
				To:      []string{"owner@example.com"},
				Subject: "New contact: Zoë Ångström",
				Text:    "Name: Zoë Ångström\nEmail: zoe@example.org\n\nHello — a question about pricing.\nThanks!",
			},
			{
				From:    "noreply@example.com",
				To:      []string{"a@example.com", "b@example.net"},
				Subject: "Second message",
				Text:    "Plain ASCII body.",
			},
		}
		for i := range msgs {
			if err := m.Send(t.Context(), &msgs[i]); err != nil {
				t.Fatalf("Send(%q): %v", msgs[i].Subject, err)
			}
		}
		eventually(t, func() error {
			got := sent()
			for _, want := range msgs {
				if !slices.ContainsFunc(got, func(g app.Message) bool { return sameMessage(g, want) }) {
					return fmt.Errorf("message %+v not among the %d sent: %+v", want, len(got), got)
				}
			}
			return nil
		})
	})
}

func sameMessage(a, b app.Message) bool {
	norm := func(s string) string { return strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), " \t\r\n") }
	return a.From == b.From && slices.Equal(a.To, b.To) && a.Subject == b.Subject && norm(a.Text) == norm(b.Text)
}
