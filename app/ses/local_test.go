package ses_test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/ses"
	"selfhost.dev/edgeapp/internal/testlog"
	"selfhost.dev/edgeapp/internal/testserver"
)

// sesLocalInstall is how to get the SES implementation TestMailerSESLocal
// runs against; .ci/run does it when the command is missing.
const sesLocalInstall = "npm install -g aws-ses-v2-local@2.10.2"

// TestMailerSESLocal sends through aws-ses-v2-local, an implementation of
// SES's SendEmail (V1 Query API) that keeps what it is sent and shows it at
// GET /store, started on a free port and reached through
// AWS_ENDPOINT_URL_SES. Unlike fakeSES it was not written from our reading
// of the API, so it checks that reading: the SDK's signed request is
// accepted and the message arrives with its non-ASCII subject and body
// intact.
//
// It does not run apptest.TestMailer: aws-ses-v2-local 2.10.2 keeps only
// the first address of each recipient list (its request schema names
// Destination.ToAddresses.member.1 only), so the contract's two-recipient
// message cannot be checked there; fakeSES checks every recipient.
func TestMailerSESLocal(t *testing.T) {
	bin, err := exec.LookPath("aws-ses-v2-local")
	if err != nil {
		testserver.Skip(t, "aws-ses-v2-local not found: %s", sesLocalInstall)
	}
	endpoint := startSESLocal(t, bin)
	awsEnv(t, endpoint)
	m, err := ses.New(t.Context(), region, "noreply@example.com")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := m.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	want := app.Message{
		To:      []string{"owner@example.com"},
		Subject: "New contact: Zoë Ångström",
		Text:    "Name: Zoë Ångström\nEmail: zoe@example.org\n\nHello — a question about pricing.\nThanks!",
	}
	if err := m.Send(t.Context(), &want); err != nil {
		t.Fatalf("Send: %v", err)
	}
	want.From = "noreply@example.com" // the mailer's default
	got := sesLocalStore(t, endpoint)
	if len(got) != 1 || got[0].From != want.From || !slices.Equal(got[0].To, want.To) || got[0].Subject != want.Subject || got[0].Text != want.Text {
		t.Errorf("aws-ses-v2-local kept %+v, want exactly %+v", got, want)
	}

	// A refusal of the server is an error of Send, not a silent success.
	err = m.Send(t.Context(), &app.Message{To: []string{"owner@example.com"}, Subject: "", Text: "no subject"})
	if err == nil {
		t.Error("Send without a subject succeeded; aws-ses-v2-local refuses it with 400")
	}
}

// startSESLocal starts aws-ses-v2-local on a free loopback port and waits
// for its health check.
func startSESLocal(t *testing.T, bin string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logs := &testlog.Buffer{}
	cmd := exec.Command(bin, "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start aws-ses-v2-local: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(endpoint + "/health-check")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return endpoint
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("aws-ses-v2-local not ready on %s after 30s: %v\n%s", endpoint, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sesLocalStore returns the messages aws-ses-v2-local has kept.
func sesLocalStore(t *testing.T, endpoint string) []app.Message {
	res, err := http.Get(endpoint + "/store")
	if err != nil {
		t.Errorf("GET /store: %v", err)
		return nil
	}
	defer res.Body.Close()
	var store struct {
		Emails []struct {
			From        string `json:"from"`
			Destination struct {
				To []string `json:"to"`
			} `json:"destination"`
			Subject string `json:"subject"`
			Body    struct {
				Text string `json:"text"`
			} `json:"body"`
		} `json:"emails"`
	}
	var buf bytes.Buffer
	buf.ReadFrom(res.Body)
	if err := json.Unmarshal(buf.Bytes(), &store); err != nil {
		t.Errorf("GET /store: %v: %s", err, buf.String())
		return nil
	}
	var out []app.Message
	for _, e := range store.Emails {
		out = append(out, app.Message{From: e.From, To: e.Destination.To, Subject: e.Subject, Text: e.Body.Text})
	}
	return out
}

// TestCheckCredentials: SES selected without usable credentials is
// reported in words that name what is missing.
func TestCheckCredentials(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // in the message; "" means no problem
	}{
		{"both keys", map[string]string{}, ""},
		{"no secret", map[string]string{"AWS_SECRET_ACCESS_KEY": ""}, "AWS_SECRET_ACCESS_KEY is not set"},
		{"no id", map[string]string{"AWS_ACCESS_KEY_ID": ""}, "AWS_ACCESS_KEY_ID is not set"},
		{"nothing", map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			awsEnv(t, "http://127.0.0.1:1")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			m, err := ses.New(t.Context(), region, "noreply@example.com")
			if err != nil {
				t.Fatal(err)
			}
			err = m.CheckCredentials(t.Context())
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("CheckCredentials = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("CheckCredentials = %v, want a message with %q", err, tc.want)
			}
		})
	}
}
