package logmail_test

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/apptest"
	"selfhost.dev/edgeapp/app/logmail"
	"selfhost.dev/edgeapp/internal/testlog"
)

// record is the JSON of one logged message.
type record struct {
	Msg       string   `json:"msg"`
	From      string   `json:"from"`
	To        []string `json:"to"`
	Subject   string   `json:"subject"`
	BodyBytes int      `json:"body_bytes"`
	Text      *string  `json:"text"`
	MessageID string   `json:"message_id"`
}

func records(t *testing.T, log string) []record {
	var rs []record
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Errorf("log line %q: %v", sc.Text(), err)
			continue
		}
		rs = append(rs, r)
	}
	return rs
}

func TestMailer(t *testing.T) {
	apptest.TestMailer(t, func(t *testing.T) (app.Mailer, func() []app.Message) {
		var buf testlog.Buffer
		m := logmail.New(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
		return m, func() []app.Message {
			var msgs []app.Message
			for _, r := range records(t, buf.String()) {
				if r.Text == nil {
					t.Errorf("record %+v lacks the text at debug level", r)
					continue
				}
				msgs = append(msgs, app.Message{From: r.From, To: r.To, Subject: r.Subject, Text: *r.Text})
			}
			return msgs
		}
	})
}

func TestBodyOnlyAtDebug(t *testing.T) {
	var buf testlog.Buffer
	m := logmail.New(slog.New(slog.NewJSONHandler(&buf, nil))) // Info
	msg := &app.Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: "Hi", Text: "private words"}
	if err := m.Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "private words") {
		t.Errorf("body logged at Info: %s", buf.String())
	}
	rs := records(t, buf.String())
	if len(rs) != 1 || rs[0].Subject != "Hi" || rs[0].BodyBytes != len(msg.Text) || rs[0].Text != nil {
		t.Errorf("logged %+v, want one record with the subject and body length only", rs)
	}
}

func TestNoRecipients(t *testing.T) {
	if err := logmail.New(nil).Send(t.Context(), &app.Message{Subject: "x"}); err == nil {
		t.Error("Send without recipients succeeded")
	}
}

// TestMessageID: the message's ID is logged, so a notification sent twice
// shows as one message_id twice.
func TestMessageID(t *testing.T) {
	var buf testlog.Buffer
	m := logmail.New(slog.New(slog.NewJSONHandler(&buf, nil)))
	msg := &app.Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: "Hi", Text: "t", ID: "contact-1.5.job-2@example.com"}
	for range 2 {
		if err := m.Send(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	rs := records(t, buf.String())
	if len(rs) != 2 || rs[0].MessageID != msg.ID || rs[1].MessageID != msg.ID {
		t.Errorf("logged %+v, want two records with message_id %q", rs, msg.ID)
	}
}
