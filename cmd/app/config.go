package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// minKeyLen is the shortest API key accepted: a short key can be guessed.
const minKeyLen = 16

// Config is the app's configuration, read from environment variables.
type Config struct {
	AppAddr        string   // APP_ADDR: the API listener
	MetricsAddr    string   // METRICS_ADDR: the private /metrics listener
	DataDir        string   // DATA_DIR: the SQLite database and blobs of the embedded backends
	PublicAPIKey   string   // PUBLIC_API_KEY (secret)
	AdminAPIKey    string   // ADMIN_API_KEY (secret); empty disables the admin endpoints
	MaxUploadBytes int64    // MAX_UPLOAD_BYTES
	NotifyFrom     string   // NOTIFY_EMAIL_FROM, else SES_FROM_EMAIL
	NotifyTo       []string // NOTIFY_EMAIL_TO (comma-separated), else SES_TO_EMAIL; empty: no notifications

	DatabaseURL string // DATABASE_URL (secret: may hold a password): PostgreSQL instead of SQLite

	S3 S3Config

	MeiliURL       string // MEILI_URL: Meilisearch instead of the built-in search
	MeiliMasterKey string // MEILI_MASTER_KEY (secret)

	SESRegion    string // SES_REGION: send mail with SES
	SESFromEmail string // SES_FROM_EMAIL
	SESToEmail   string // SES_TO_EMAIL

	SMTPAddr     string // SMTP_ADDR (host:port): send mail over SMTP with STARTTLS
	SMTPUser     string // SMTP_USER
	SMTPPassword string // SMTP_PASSWORD (secret)

	Outbox OutboxConfig
}

// OutboxConfig tunes the outbox worker's leases (see app.Worker).
type OutboxConfig struct {
	Lease        time.Duration // OUTBOX_LEASE: how long a dead worker's jobs stay hidden
	Heartbeat    time.Duration // OUTBOX_HEARTBEAT: how often a running batch's leases are renewed
	PollInterval time.Duration // OUTBOX_POLL_INTERVAL: how often an idle worker looks for jobs
}

// S3Config selects S3 or MinIO for blobs when Endpoint is set.
type S3Config struct {
	Endpoint  string // S3_ENDPOINT: host[:port], no scheme
	AccessKey string // S3_ACCESS_KEY
	SecretKey string // S3_SECRET_KEY (secret)
	Bucket    string // S3_BUCKET
	UseSSL    bool   // S3_USE_SSL
	Region    string // S3_REGION
}

// Defaults of the configuration.
const (
	defaultAppAddr        = ":8000"
	defaultMetricsAddr    = "127.0.0.1:9091"
	defaultDataDir        = "./data"
	defaultMaxUploadBytes = 50 << 20
	defaultNotifyFrom     = "noreply@localhost"
	defaultS3Region       = "us-east-1"
)

// parseConfig reads the configuration from getenv and checks it as a
// whole: the error lists every problem, not just the first.
func parseConfig(getenv func(string) string) (*Config, error) {
	env := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	c := &Config{
		AppAddr:        env("APP_ADDR", defaultAppAddr),
		MetricsAddr:    env("METRICS_ADDR", defaultMetricsAddr),
		DataDir:        env("DATA_DIR", defaultDataDir),
		PublicAPIKey:   getenv("PUBLIC_API_KEY"),
		AdminAPIKey:    getenv("ADMIN_API_KEY"),
		DatabaseURL:    env("DATABASE_URL", ""),
		MeiliURL:       env("MEILI_URL", ""),
		MeiliMasterKey: getenv("MEILI_MASTER_KEY"),
		SESRegion:      env("SES_REGION", ""),
		SESFromEmail:   env("SES_FROM_EMAIL", ""),
		SESToEmail:     env("SES_TO_EMAIL", ""),
		SMTPAddr:       env("SMTP_ADDR", ""),
		SMTPUser:       env("SMTP_USER", ""),
		SMTPPassword:   getenv("SMTP_PASSWORD"),
		S3: S3Config{
			Endpoint:  env("S3_ENDPOINT", ""),
			AccessKey: env("S3_ACCESS_KEY", ""),
			SecretKey: getenv("S3_SECRET_KEY"),
			Bucket:    env("S3_BUCKET", ""),
			Region:    env("S3_REGION", defaultS3Region),
		},
	}

	for _, a := range []struct{ name, addr string }{{"APP_ADDR", c.AppAddr}, {"METRICS_ADDR", c.MetricsAddr}} {
		if err := checkListenAddr(a.addr); err != nil {
			bad("%s=%q: %v", a.name, a.addr, err)
		}
	}
	if c.AppAddr == c.MetricsAddr && !strings.HasSuffix(c.AppAddr, ":0") {
		bad("APP_ADDR and METRICS_ADDR are both %q: metrics need their own private listener", c.AppAddr)
	}

	switch {
	case c.PublicAPIKey == "":
		bad("PUBLIC_API_KEY is required: set it to a long random secret, e.g. PUBLIC_API_KEY=$(openssl rand -hex 32) (make run generates one for development)")
	case len(c.PublicAPIKey) < minKeyLen:
		bad("PUBLIC_API_KEY is %d characters: use at least %d, e.g. $(openssl rand -hex 32)", len(c.PublicAPIKey), minKeyLen)
	}
	switch {
	case c.AdminAPIKey == "":
	case len(c.AdminAPIKey) < minKeyLen:
		bad("ADMIN_API_KEY is %d characters: use at least %d, e.g. $(openssl rand -hex 32)", len(c.AdminAPIKey), minKeyLen)
	case c.AdminAPIKey == c.PublicAPIKey:
		bad("ADMIN_API_KEY must differ from PUBLIC_API_KEY")
	}

	c.MaxUploadBytes = defaultMaxUploadBytes
	if v := env("MAX_UPLOAD_BYTES", ""); v != "" {
		n, err := parseBytes(v)
		if err != nil {
			bad("MAX_UPLOAD_BYTES=%q: %v", v, err)
		}
		c.MaxUploadBytes = n
	}

	c.NotifyFrom = env("NOTIFY_EMAIL_FROM", env("SES_FROM_EMAIL", defaultNotifyFrom))
	if _, err := mail.ParseAddress(c.NotifyFrom); err != nil {
		bad("NOTIFY_EMAIL_FROM=%q is not an email address", c.NotifyFrom)
	}
	for a := range strings.SplitSeq(env("NOTIFY_EMAIL_TO", env("SES_TO_EMAIL", "")), ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if _, err := mail.ParseAddress(a); err != nil {
			bad("NOTIFY_EMAIL_TO: %q is not an email address", a)
		}
		c.NotifyTo = append(c.NotifyTo, a)
	}

	if c.DatabaseURL != "" && strings.Contains(c.DatabaseURL, "://") {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad("DATABASE_URL must be a postgres:// URL or a key=value connection string")
		}
	}

	s3 := c.S3
	s3Set := s3.Endpoint != "" || s3.AccessKey != "" || s3.SecretKey != "" || s3.Bucket != ""
	if s3Set {
		switch {
		case s3.Endpoint == "":
			bad("S3_ENDPOINT is required when any S3_* variable is set")
		case strings.Contains(s3.Endpoint, "://"):
			bad("S3_ENDPOINT=%q must be host[:port] without a scheme; set S3_USE_SSL=true for HTTPS", s3.Endpoint)
		}
		for _, v := range []struct{ name, value string }{{"S3_ACCESS_KEY", s3.AccessKey}, {"S3_SECRET_KEY", s3.SecretKey}, {"S3_BUCKET", s3.Bucket}} {
			if v.value == "" {
				bad("%s is required with S3_ENDPOINT", v.name)
			}
		}
	}
	if v := env("S3_USE_SSL", ""); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("S3_USE_SSL=%q: want true or false", v)
		}
		c.S3.UseSSL = b
	}

	if c.MeiliURL != "" {
		u, err := url.Parse(c.MeiliURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("MEILI_URL=%q must be an http:// or https:// URL", c.MeiliURL)
		}
	} else if c.MeiliMasterKey != "" {
		bad("MEILI_MASTER_KEY is set but MEILI_URL is not")
	}

	if c.SESRegion != "" && c.SMTPAddr != "" {
		bad("SES_REGION and SMTP_ADDR are both set: choose one mailer")
	}
	if c.SESRegion == "" && (c.SESFromEmail != "" || c.SESToEmail != "") {
		bad("SES_FROM_EMAIL or SES_TO_EMAIL is set but SES_REGION is not")
	}
	if c.SMTPAddr != "" {
		if _, port, err := net.SplitHostPort(c.SMTPAddr); err != nil || port == "" {
			bad("SMTP_ADDR=%q must be host:port", c.SMTPAddr)
		}
	}
	if (c.SMTPUser == "") != (c.SMTPPassword == "") {
		bad("SMTP_USER and SMTP_PASSWORD must be set together")
	}
	if c.SMTPUser != "" && c.SMTPAddr == "" {
		bad("SMTP_USER is set but SMTP_ADDR is not")
	}
	if (c.SESRegion != "" || c.SMTPAddr != "") && len(c.NotifyTo) == 0 {
		bad("a mailer is configured but nobody to notify: set NOTIFY_EMAIL_TO (or SES_TO_EMAIL)")
	}

	c.Outbox = parseOutbox(env, bad)

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// checkListenAddr accepts host:port with a numeric port (0 picks a free one).
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port, e.g. :8000 or 127.0.0.1:8000")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// parseBytes reads a size in bytes, optionally with a KiB, MiB or GiB suffix.
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > (1<<40)/mult {
		return 0, errors.New("want a positive number of bytes, optionally with KiB, MiB or GiB")
	}
	return n * mult, nil
}

// LogValue implements slog.LogValuer: the effective configuration with
// every secret masked.
func (c *Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("APP_ADDR", c.AppAddr),
		slog.String("METRICS_ADDR", c.MetricsAddr),
		slog.String("DATA_DIR", c.DataDir),
		slog.String("PUBLIC_API_KEY", mask(c.PublicAPIKey)),
		slog.String("ADMIN_API_KEY", mask(c.AdminAPIKey)),
		slog.Int64("MAX_UPLOAD_BYTES", c.MaxUploadBytes),
		slog.String("NOTIFY_EMAIL_FROM", c.NotifyFrom),
		slog.String("NOTIFY_EMAIL_TO", strings.Join(c.NotifyTo, ",")),
		slog.String("DATABASE_URL", redactURL(c.DatabaseURL)),
		slog.String("S3_ENDPOINT", c.S3.Endpoint),
		slog.String("S3_ACCESS_KEY", c.S3.AccessKey),
		slog.String("S3_SECRET_KEY", mask(c.S3.SecretKey)),
		slog.String("S3_BUCKET", c.S3.Bucket),
		slog.Bool("S3_USE_SSL", c.S3.UseSSL),
		slog.String("S3_REGION", c.S3.Region),
		slog.String("MEILI_URL", c.MeiliURL),
		slog.String("MEILI_MASTER_KEY", mask(c.MeiliMasterKey)),
		slog.String("SES_REGION", c.SESRegion),
		slog.String("SES_FROM_EMAIL", c.SESFromEmail),
		slog.String("SES_TO_EMAIL", c.SESToEmail),
		slog.String("SMTP_ADDR", c.SMTPAddr),
		slog.String("SMTP_USER", c.SMTPUser),
		slog.String("SMTP_PASSWORD", mask(c.SMTPPassword)),
		slog.Duration("OUTBOX_LEASE", c.Outbox.Lease),
		slog.Duration("OUTBOX_HEARTBEAT", c.Outbox.Heartbeat),
		slog.Duration("OUTBOX_POLL_INTERVAL", c.Outbox.PollInterval),
	)
}

// mask shows whether a secret is set, never any of it.
func mask(secret string) string {
	if secret == "" {
		return ""
	}
	return "********"
}

// redactURL hides the password of a database URL. A key=value connection
// string may hold one anywhere, so it is masked whole.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	if u, err := url.Parse(s); err == nil && strings.Contains(s, "://") {
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return mask(s)
}
