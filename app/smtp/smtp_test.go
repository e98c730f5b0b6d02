package smtp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	gosasl "github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/apptest"
	"selfhost.dev/edgeapp/app/smtp"
)

// server is a real SMTP server (emersion/go-smtp) on loopback, offering
// STARTTLS with a self-signed certificate and PLAIN auth, that keeps the
// messages it accepts, decoded back into app.Messages.
type server struct {
	addr     string
	roots    *x509.CertPool
	user     string
	password string
	tls      bool

	mu   sync.Mutex
	msgs []app.Message
	errs []error
}

func startServer(t *testing.T, withTLS bool) *server {
	t.Helper()
	s := &server{user: "app", password: "s3cret-pass", tls: withTLS}
	srv := gosmtp.NewServer(s)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	if withTLS {
		cert, roots := selfSigned(t)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		s.roots = roots
	} else {
		srv.AllowInsecureAuth = true // lets the client show it refuses to send the password
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *server) sent() []app.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]app.Message(nil), s.msgs...)
}

// NewSession implements gosmtp.Backend.
func (s *server) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	return &session{srv: s, conn: c}, nil
}

type session struct {
	srv    *server
	conn   *gosmtp.Conn
	authed bool
	from   string
	to     []string
}

func (s *session) AuthMechanisms() []string { return []string{"PLAIN"} }

func (s *session) Auth(mech string) (gosasl.Server, error) {
	return gosasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.srv.user || pass != s.srv.password {
			return errors.New("invalid credentials")
		}
		if _, isTLS := s.conn.TLSConnectionState(); s.srv.tls && !isTLS {
			return errors.New("auth before STARTTLS")
		}
		s.authed = true
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *gosmtp.MailOptions) error {
	if !s.authed {
		return &gosmtp.SMTPError{Code: 530, Message: "authentication required"}
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	msg, err := decode(r)
	if err != nil {
		s.srv.mu.Lock()
		s.srv.errs = append(s.srv.errs, err)
		s.srv.mu.Unlock()
		return err
	}
	msg.From, msg.To = s.from, s.to
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, msg)
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// decode parses a message the way a mail client would: RFC 2047 subject,
// quoted-printable body.
func decode(r io.Reader) (app.Message, error) {
	m, err := mail.ReadMessage(r)
	if err != nil {
		return app.Message{}, err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return app.Message{}, err
	}
	if ct := m.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		return app.Message{}, errors.New("content type " + ct)
	}
	body := io.Reader(m.Body)
	if m.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
		body = quotedprintable.NewReader(body)
	}
	text, err := io.ReadAll(body)
	if err != nil {
		return app.Message{}, err
	}
	return app.Message{Subject: subject, Text: string(text), ID: m.Header.Get("Message-ID")}, nil
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}

func newMailer(s *server) *smtp.Mailer {
	m := smtp.New(smtp.Config{Addr: s.addr, User: s.user, Password: s.password, From: "noreply@example.com"})
	if s.roots != nil {
		m.TLSConfig = &tls.Config{RootCAs: s.roots, ServerName: "127.0.0.1"}
	}
	return m
}

func TestMailer(t *testing.T) {
	apptest.TestMailer(t, func(t *testing.T) (app.Mailer, func() []app.Message) {
		s := startServer(t, true)
		t.Cleanup(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, err := range s.errs {
				t.Errorf("server could not decode a message: %v", err)
			}
		})
		return newMailer(s), s.sent
	})
}

// TestDefaultFrom fills in the configured sender.
func TestDefaultFrom(t *testing.T) {
	s := startServer(t, true)
	err := newMailer(s).Send(t.Context(), &app.Message{To: []string{"owner@example.com"}, Subject: "s", Text: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.sent(); len(got) != 1 || got[0].From != "noreply@example.com" {
		t.Errorf("sent %+v, want one message from the configured sender", got)
	}
}

// TestNoPasswordInClear talks to a server without STARTTLS under a
// non-local name: the mailer must refuse to send the password.
func TestNoPasswordInClear(t *testing.T) {
	s := startServer(t, false)
	m := smtp.New(smtp.Config{Addr: "mail.example.com:25", User: s.user, Password: s.password})
	m.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, s.addr) // never leave loopback
	}
	err := m.Send(t.Context(), &app.Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: "s", Text: "t"})
	if err == nil {
		t.Fatal("Send authenticated over a plain-text connection to a remote host")
	}
	if strings.Contains(err.Error(), s.password) {
		t.Errorf("error %q shows the password", err)
	}
	if len(s.sent()) != 0 {
		t.Error("a message was sent")
	}
}

// TestBadInput rejects addresses that could smuggle headers or
// recipients, and encodes a subject with line breaks instead of sending
// them raw.
func TestBadInput(t *testing.T) {
	s := startServer(t, true)
	m := newMailer(s)
	for _, msg := range []*app.Message{
		{From: "a@example.com", To: nil, Subject: "s", Text: "t"},
		{From: "a@example.com", To: []string{"b@example.com\r\nBcc: c@example.com"}, Subject: "s", Text: "t"},
		{From: "Eve <a@example.com>", To: []string{"b@example.com"}, Subject: "s", Text: "t"},
		{From: "not an address", To: []string{"b@example.com"}, Subject: "s", Text: "t"},
	} {
		if err := m.Send(t.Context(), msg); app.ErrorCode(err) != app.EINVALID {
			t.Errorf("Send(from %q to %q) = %v, want EINVALID", msg.From, msg.To, err)
		}
	}
	subject := "hi\r\nBcc: c@example.com"
	if err := m.Send(t.Context(), &app.Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: subject, Text: "t"}); err != nil {
		t.Fatal(err)
	}
	if got := s.sent(); len(got) != 1 || got[0].Subject != subject || len(got[0].To) != 1 {
		t.Errorf("sent %+v, want one message to b with the subject kept whole", got)
	}
}

// TestUnavailable: a server that is not there is EUNAVAILABLE, so the
// outbox keeps the notification for later.
func TestUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	m := smtp.New(smtp.Config{Addr: addr, From: "a@example.com"})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := m.Ping(ctx); app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Errorf("Ping = %v, want EUNAVAILABLE", err)
	}
	err = m.Send(ctx, &app.Message{To: []string{"b@example.com"}, Subject: "s", Text: "t"})
	if app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Errorf("Send = %v, want EUNAVAILABLE", err)
	}
}

// TestWrongPassword is a plain error (the operator must fix it), and the
// password is not in it.
func TestWrongPassword(t *testing.T) {
	s := startServer(t, true)
	m := smtp.New(smtp.Config{Addr: s.addr, User: s.user, Password: "wrong-password"})
	m.TLSConfig = &tls.Config{RootCAs: s.roots, ServerName: "127.0.0.1"}
	err := m.Ping(t.Context())
	if err == nil || strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("Ping with a wrong password = %v, want an error without the password", err)
	}
}

// TestMessageID: a message's ID is its Message-ID on every send, so a
// receiver can collapse a repeat; without one each send gets a fresh
// Message-ID; an ID that would break the header is refused, not sent.
func TestMessageID(t *testing.T) {
	s := startServer(t, true)
	m := newMailer(s)
	msg := &app.Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: "s", Text: "t",
		ID: "contact-7.1764385200000000000.job-12@example.com"}
	for range 2 {
		if err := m.Send(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := m.Send(t.Context(), &app.Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: "s", Text: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	got := s.sent()
	if len(got) != 4 {
		t.Fatalf("sent %d messages, want 4", len(got))
	}
	want := "<" + msg.ID + ">"
	if got[0].ID != want || got[1].ID != want {
		t.Errorf("Message-IDs %q, %q; want %q twice", got[0].ID, got[1].ID, want)
	}
	if got[2].ID == got[3].ID || !strings.HasSuffix(got[2].ID, "@example.com>") {
		t.Errorf("Message-IDs without an ID: %q, %q; want two fresh ones at example.com", got[2].ID, got[3].ID)
	}
	for _, id := range []string{"no-at-sign", "a@b>\r\nBcc: c@example.com", "a b@example.com", "<a@example.com>", "a@@example.com", "@example.com"} {
		err := m.Send(t.Context(), &app.Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: "s", Text: "t", ID: id})
		if app.ErrorCode(err) != app.EINVALID {
			t.Errorf("Send with ID %q = %v, want EINVALID", id, err)
		}
	}
	if n := len(s.sent()); n != 4 {
		t.Errorf("%d messages sent, want 4 (bad IDs send nothing)", n)
	}
}
