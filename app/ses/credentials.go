package ses

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// CheckCredentials says, in words an operator can act on, why the mailer
// has no usable AWS credentials, or returns nil if it has some. cmd/app
// logs it as a warning at start: mail is not refused for it (the outbox
// keeps notifications until credentials appear), but the operator should
// hear of it before the first contact.
func (m *Mailer) CheckCredentials(ctx context.Context) error {
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID") != "", os.Getenv("AWS_SECRET_ACCESS_KEY") != ""
	switch {
	case id && !secret:
		return fmt.Errorf("AWS_SECRET_ACCESS_KEY is not set (AWS_ACCESS_KEY_ID is)")
	case secret && !id:
		return fmt.Errorf("AWS_ACCESS_KEY_ID is not set (AWS_SECRET_ACCESS_KEY is)")
	}
	if m.creds == nil {
		return fmt.Errorf("no AWS credentials: %s", credentialSources)
	}
	if _, err := m.creds.Retrieve(ctx); err != nil {
		if id {
			return fmt.Errorf("AWS credentials from AWS_ACCESS_KEY_ID are not usable: %v", err)
		}
		if p := os.Getenv("AWS_PROFILE"); p != "" {
			return fmt.Errorf("AWS_PROFILE %q gives no usable credentials (%v): %s", p, firstLine(err), credentialSources)
		}
		return fmt.Errorf("no AWS credentials found: %s", credentialSources)
	}
	return nil
}

// credentialSources names where the default AWS chain looks.
const credentialSources = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a shared credentials file (~/.aws/credentials), or run with an IAM role"

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
