// Package smtp implements app.Mailer over SMTP with net/smtp, for
// self-hosters with their own mail server or relay.
package smtp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"selfhost.dev/edgeapp/app"
)

// backend names this adapter in app.Unavailable errors and /health/ready.
const backend = "mail"

// Config says which server to send through.
type Config struct {
	// Addr is the server's host:port, e.g. "smtp.example.com:587".
	Addr string
	// User and Password, if User is set, authenticate with PLAIN, which is
	// only ever sent over TLS (STARTTLS) or to localhost.
	User, Password string
	// From is the sender of messages that have none.
	From string
}

// Mailer sends mail through one SMTP server, a connection per message:
// notifications are rare, and a fresh connection has no state to go stale.
type Mailer struct {
	// TLSConfig is used for STARTTLS. If nil, the system roots and Addr's
	// host name are used.
	TLSConfig *tls.Config
	// DialContext opens the connection. If nil, a net.Dialer is used.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds a whole conversation when ctx has no earlier
	// deadline. If zero, 30 seconds is used.
	Timeout time.Duration

	cfg  Config
	host string
}

var _ app.Mailer = (*Mailer)(nil)

// New returns a mailer for cfg. It does not connect: Ping does.
func New(cfg Config) *Mailer {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		host = cfg.Addr
	}
	return &Mailer{cfg: cfg, host: host}
}

// Send delivers m: STARTTLS when the server offers it, PLAIN auth if
// configured, then the message as quoted-printable UTF-8 text.
func (m *Mailer) Send(ctx context.Context, msg *app.Message) error {
	from := msg.From
	if from == "" {
		from = m.cfg.From
	}
	if err := checkAddresses(from, msg.To); err != nil {
		return err
	}
	if msg.ID != "" && !validMessageID(msg.ID) {
		return app.Errorf(app.EINVALID, "invalid message id %q: want left@domain in printable ASCII without spaces or angle brackets", msg.ID)
	}
	body, err := format(from, msg)
	if err != nil {
		return err
	}
	return m.session(ctx, "send mail", func(c *smtp.Client) error {
		if err := c.Mail(from); err != nil {
			return err
		}
		for _, to := range msg.To {
			if err := c.Rcpt(to); err != nil {
				return err
			}
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := w.Write(body); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	})
}

// Ping connects, says hello (with STARTTLS and auth, so that wrong
// credentials show on /health/ready) and quits.
func (m *Mailer) Ping(ctx context.Context) error {
	return m.session(ctx, "ping", func(c *smtp.Client) error { return c.Noop() })
}

// session runs fn on a connection that has done STARTTLS (if offered)
// and auth (if configured), then quits.
func (m *Mailer) session(ctx context.Context, op string, fn func(*smtp.Client) error) error {
	if _, ok := ctx.Deadline(); !ok {
		timeout := m.Timeout
		if timeout == 0 {
			timeout = 30 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	dial := m.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "tcp", m.cfg.Addr)
	if err != nil {
		return smtpError(op, err)
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	// Cancelling ctx cuts the conversation short, not just the dial.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return smtpError(op, err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := m.TLSConfig
		if cfg == nil {
			cfg = &tls.Config{ServerName: m.host}
		}
		if err := c.StartTLS(cfg); err != nil {
			return smtpError(op+": starttls", err)
		}
	}
	if m.cfg.User != "" {
		// net/smtp's PlainAuth refuses to send the password unless the
		// connection is TLS or the server is localhost.
		if err := c.Auth(smtp.PlainAuth("", m.cfg.User, m.cfg.Password, m.host)); err != nil {
			return smtpError(op+": auth", err)
		}
	}
	if err := fn(c); err != nil {
		return smtpError(op, err)
	}
	return smtpError(op+": quit", c.Quit())
}

// checkAddresses rejects what is not a bare address: a display name or a
// line break would let a caller write headers or extra recipients.
func checkAddresses(from string, to []string) error {
	if len(to) == 0 {
		return app.Errorf(app.EINVALID, "message has no recipient")
	}
	for _, a := range append([]string{from}, to...) {
		p, err := mail.ParseAddress(a)
		if err != nil || p.Address != a {
			return app.Errorf(app.EINVALID, "invalid email address %q", a)
		}
	}
	return nil
}

// validMessageID accepts what fits between Message-ID's angle brackets
// without breaking the header: one '@' with text either side, printable
// ASCII, none of the specials that end or split a msg-id.
func validMessageID(id string) bool {
	at := strings.IndexByte(id, '@')
	if at <= 0 || at == len(id)-1 || strings.Count(id, "@") != 1 || len(id) > 250 {
		return false
	}
	for _, c := range []byte(id) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`<>()[]\",;:`, c) >= 0 {
			return false
		}
	}
	return true
}

// format renders the message: UTF-8 headers as RFC 2047 words, the body
// as quoted-printable with CRLF line ends.
func format(from string, msg *app.Message) ([]byte, error) {
	var b bytes.Buffer
	id := make([]byte, 16)
	rand.Read(id)
	domain := from[strings.LastIndexByte(from, '@')+1:]
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", from)
	header("To", strings.Join(msg.To, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", msg.Subject))
	header("Date", time.Now().Format(time.RFC1123Z))
	msgID := msg.ID
	if msgID == "" {
		msgID = hex.EncodeToString(id) + "@" + domain
	}
	header("Message-ID", "<"+msgID+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	text := strings.ReplaceAll(strings.ReplaceAll(msg.Text, "\r\n", "\n"), "\n", "\r\n")
	if _, err := qp.Write([]byte(text)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	b.WriteString("\r\n")
	return b.Bytes(), nil
}

// smtpError wraps err, the failure of op. A server that cannot be reached
// or answers with a transient (4xx) reply is EUNAVAILABLE, so the outbox
// retries; a permanent (5xx) reply is a plain error, retried all the same
// but worth a look in the logs.
func smtpError(op string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s: %w", op, err)
	var tpErr *textproto.Error
	var netErr net.Error
	switch {
	case errors.As(err, &tpErr):
		if tpErr.Code >= 400 && tpErr.Code < 500 {
			return app.Unavailable(backend, err)
		}
		return err
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return app.Unavailable(backend, err)
	}
	return err
}
