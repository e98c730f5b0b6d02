// Package ses implements app.Mailer on Amazon SES with aws-sdk-go-v2.
package ses

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ses"
	"github.com/aws/aws-sdk-go-v2/service/ses/types"
	"github.com/aws/smithy-go"

	"selfhost.dev/edgeapp/app"
)

// backend names this adapter in app.Unavailable errors and /health/ready.
const backend = "mail"

// Mailer sends mail with SES's SendEmail.
type Mailer struct {
	client *ses.Client
	creds  aws.CredentialsProvider
	from   string
}

var _ app.Mailer = (*Mailer)(nil)

// New returns a mailer for region that sends from from (unless a message
// has its own From). Credentials come from the default AWS chain (env
// vars, shared files, SSO, IAM role), never from this app's config. The
// SDK's own configuration applies too, including AWS_ENDPOINT_URL_SES
// (or AWS_ENDPOINT_URL) for an SES-compatible endpoint.
func New(ctx context.Context, region, from string) (*Mailer, error) {
	if region == "" {
		return nil, errors.New("ses: region is required")
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("ses: load AWS config: %w", err)
	}
	return &Mailer{client: ses.NewFromConfig(cfg), creds: cfg.Credentials, from: from}, nil
}

// Send sends msg as UTF-8 plain text.
//
// msg.ID is not used: SES's SendEmail (v1, and v2's SendEmail alike) takes
// no idempotency key, and SES replaces any Message-ID with its own. A
// notification the outbox sends twice (killed after SES accepted it,
// before the job was marked done) therefore arrives twice, with two
// Message-IDs; the window is stated in README ("The outbox after a crash").
func (m *Mailer) Send(ctx context.Context, msg *app.Message) error {
	from := msg.From
	if from == "" {
		from = m.from
	}
	if len(msg.To) == 0 {
		return app.Errorf(app.EINVALID, "message has no recipient")
	}
	for _, a := range append([]string{from}, msg.To...) {
		if p, err := mail.ParseAddress(a); err != nil || p.Address != a {
			return app.Errorf(app.EINVALID, "invalid email address %q", a)
		}
	}
	_, err := m.client.SendEmail(ctx, &ses.SendEmailInput{
		Source:      aws.String(from),
		Destination: &types.Destination{ToAddresses: msg.To},
		Message: &types.Message{
			Subject: &types.Content{Data: aws.String(msg.Subject), Charset: aws.String("UTF-8")},
			Body:    &types.Body{Text: &types.Content{Data: aws.String(msg.Text), Charset: aws.String("UTF-8")}},
		},
	})
	return sesError("send email", err)
}

// Ping checks that credentials can be had. It sends nothing to SES: the
// only call every sending policy allows is SendEmail itself.
func (m *Mailer) Ping(ctx context.Context) error {
	if m.creds == nil {
		return errors.New("ses: no AWS credentials found")
	}
	if _, err := m.creds.Retrieve(ctx); err != nil {
		return app.Unavailable(backend, fmt.Errorf("ses: retrieve credentials: %w", err))
	}
	return nil
}

// sesError wraps err, the failure of op. A network failure, a 5xx or
// throttling is EUNAVAILABLE, so the outbox retries later.
func sesError(op string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s: %w", op, err)
	var resp *awshttp.ResponseError
	var apiErr smithy.APIError
	var opErr *net.OpError
	switch {
	case errors.As(err, &resp) && resp.HTTPStatusCode() >= 500,
		errors.As(err, &apiErr) && (apiErr.ErrorCode() == "Throttling" || apiErr.ErrorCode() == "ServiceUnavailable"),
		errors.As(err, &opErr):
		return app.Unavailable(backend, err)
	}
	return err
}
