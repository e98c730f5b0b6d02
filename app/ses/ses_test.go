// The tests of this package run the mailer against fakeSES, a protocol
// fake: SES cannot run on the machines these tests run on, so an httptest
// server implements the SES Query API's SendEmail action (form-encoded
// Action=SendEmail, Source, Destination.ToAddresses.member.N,
// Message.Subject.Data, Message.Body.Text.Data; an XML response with a
// MessageId), checks the request's shape and its SigV4 signature, and
// fails the test on anything else. The SDK is pointed at it through
// AWS_ENDPOINT_URL_SES, which also shows that variable is honoured.
package ses_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/apptest"
	"selfhost.dev/edgeapp/app/ses"
)

const (
	region    = "eu-west-1"
	accessKey = "AKIDEXAMPLETEST"
	secretKey = "test-secret-key"
)

type fakeSES struct {
	t   testing.TB
	srv *httptest.Server

	mu     sync.Mutex
	sent   []app.Message
	status int // if set, answer every request with this status and an error document
}

func newFakeSES(t *testing.T) *fakeSES {
	f := &fakeSES{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSES) messages() []app.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]app.Message(nil), f.sent...)
}

func (f *fakeSES) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("fake SES: read body: %v", err)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		f.t.Errorf("fake SES: unexpected %s %s", r.Method, r.URL)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		f.t.Errorf("fake SES: Content-Type %q, want a form", ct)
	}
	f.checkSignature(r, body)
	form, err := url.ParseQuery(string(body))
	if err != nil {
		f.t.Errorf("fake SES: form: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.status != 0 {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(f.status)
		code := map[int]string{400: "MessageRejected", 503: "ServiceUnavailable"}[f.status]
		fmt.Fprintf(w, `<ErrorResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/"><Error><Type>Sender</Type><Code>%s</Code><Message>simulated</Message></Error><RequestId>r1</RequestId></ErrorResponse>`, code)
		return
	}
	if form.Get("Action") != "SendEmail" || form.Get("Version") != "2010-12-01" {
		f.t.Errorf("fake SES: Action %q Version %q, want SendEmail 2010-12-01", form.Get("Action"), form.Get("Version"))
	}
	msg := app.Message{From: form.Get("Source"), Subject: form.Get("Message.Subject.Data"), Text: form.Get("Message.Body.Text.Data")}
	for i := 1; form.Has("Destination.ToAddresses.member." + strconv.Itoa(i)); i++ {
		msg.To = append(msg.To, form.Get("Destination.ToAddresses.member."+strconv.Itoa(i)))
	}
	known := map[string]bool{"Action": true, "Version": true, "Source": true, "Message.Subject.Data": true,
		"Message.Subject.Charset": true, "Message.Body.Text.Data": true, "Message.Body.Text.Charset": true}
	for k := range form {
		if !known[k] && !strings.HasPrefix(k, "Destination.ToAddresses.member.") {
			f.t.Errorf("fake SES: unexpected parameter %s", k)
		}
	}
	if form.Get("Message.Subject.Charset") != "UTF-8" || form.Get("Message.Body.Text.Charset") != "UTF-8" {
		f.t.Errorf("fake SES: charsets %q/%q, want UTF-8", form.Get("Message.Subject.Charset"), form.Get("Message.Body.Text.Charset"))
	}
	if msg.From == "" || len(msg.To) == 0 {
		f.t.Errorf("fake SES: message without Source or destination: %v", form)
	}
	f.sent = append(f.sent, msg)
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<SendEmailResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/"><SendEmailResult><MessageId>msg-%d</MessageId></SendEmailResult><ResponseMetadata><RequestId>req-%d</RequestId></ResponseMetadata></SendEmailResponse>`, len(f.sent), len(f.sent))
}

// checkSignature re-signs the request's signed headers and body with the
// test credentials and compares the result with its Authorization header.
func (f *fakeSES) checkSignature(r *http.Request, body []byte) {
	auth := r.Header.Get("Authorization")
	scope := fmt.Sprintf("Credential=%s/", accessKey)
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(auth, scope) ||
		!strings.Contains(auth, "/"+region+"/ses/aws4_request") {
		f.t.Errorf("fake SES: Authorization %q is not a SigV4 signature for ses in %s", auth, region)
		return
	}
	_, signed, _ := strings.Cut(auth, "SignedHeaders=")
	signed, _, _ = strings.Cut(signed, ",")
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		f.t.Errorf("fake SES: X-Amz-Date: %v", err)
		return
	}
	req, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	for _, h := range strings.Split(signed, ";") {
		if h != "host" {
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	req.ContentLength = int64(len(body))
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ses", region, when); err != nil {
		f.t.Errorf("fake SES: sign: %v", err)
		return
	}
	if got := req.Header.Get("Authorization"); got != auth {
		f.t.Errorf("fake SES: signature mismatch:\n got  %s\n want %s", auth, got)
	}
}

// awsEnv points the SDK at url with test credentials and nothing from
// this machine's AWS setup (files, instance metadata).
func awsEnv(t *testing.T, endpoint string) {
	dir := t.TempDir()
	t.Setenv("AWS_ENDPOINT_URL_SES", endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
}

func newMailer(t *testing.T) (*ses.Mailer, *fakeSES) {
	f := newFakeSES(t)
	awsEnv(t, f.srv.URL)
	m, err := ses.New(t.Context(), region, "noreply@example.com")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, f
}

// Tests here set env vars, so none runs in parallel.

func TestMailer(t *testing.T) {
	apptest.TestMailer(t, func(t *testing.T) (app.Mailer, func() []app.Message) {
		m, f := newMailer(t)
		return m, f.messages
	})
}

func TestDefaultFrom(t *testing.T) {
	m, f := newMailer(t)
	if err := m.Send(t.Context(), &app.Message{To: []string{"owner@example.com"}, Subject: "s", Text: "t"}); err != nil {
		t.Fatal(err)
	}
	if got := f.messages(); len(got) != 1 || got[0].From != "noreply@example.com" {
		t.Errorf("sent %+v, want one message from the configured sender", got)
	}
}

func TestBadInput(t *testing.T) {
	m, f := newMailer(t)
	for _, msg := range []*app.Message{
		{From: "a@example.com", Subject: "s", Text: "t"},
		{From: "a@example.com", To: []string{"b@example.com\r\nBcc: c@example.com"}, Subject: "s", Text: "t"},
		{From: "Eve <a@example.com>", To: []string{"b@example.com"}, Subject: "s", Text: "t"},
	} {
		if err := m.Send(t.Context(), msg); app.ErrorCode(err) != app.EINVALID {
			t.Errorf("Send(from %q to %q) = %v, want EINVALID", msg.From, msg.To, err)
		}
	}
	if n := len(f.messages()); n != 0 {
		t.Errorf("%d bad messages reached SES", n)
	}
}

// TestErrors maps SES's answers: a 5xx or a server that is not there is
// EUNAVAILABLE (the outbox retries); a rejected message is a plain error.
func TestErrors(t *testing.T) {
	m, f := newMailer(t)
	msg := &app.Message{To: []string{"b@example.com"}, Subject: "s", Text: "t"}
	for status, want := range map[int]app.Code{503: app.EUNAVAILABLE, 400: app.EINTERNAL} {
		f.mu.Lock()
		f.status = status
		f.mu.Unlock()
		if err := m.Send(t.Context(), msg); app.ErrorCode(err) != want {
			t.Errorf("Send answered %d = %v, want code %s", status, err, want)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	awsEnv(t, closed)
	m, err = ses.New(t.Context(), region, "noreply@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(t.Context(), msg); app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Errorf("Send to a closed port = %v, want EUNAVAILABLE", err)
	}
}

// TestPingWithoutCredentials reports missing credentials on
// /health/ready instead of at the first notification.
func TestPingWithoutCredentials(t *testing.T) {
	awsEnv(t, "http://127.0.0.1:1")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	m, err := ses.New(t.Context(), region, "noreply@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ping(t.Context()); err == nil {
		t.Error("Ping without credentials succeeded")
	}
}

func TestNoRegion(t *testing.T) {
	if _, err := ses.New(t.Context(), "", "a@example.com"); err == nil {
		t.Error("New without a region succeeded")
	}
}
