package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

const testKey = "0123456789abcdef0123"

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(envOf(map[string]string{"PUBLIC_API_KEY": testKey}))
	if err != nil {
		t.Fatal(err)
	}
	if c.AppAddr != ":8000" || c.MetricsAddr != "127.0.0.1:9091" || c.DataDir != "./data" ||
		c.MaxUploadBytes != 50<<20 || c.NotifyFrom != "noreply@localhost" || len(c.NotifyTo) != 0 ||
		c.S3.Region != "us-east-1" || c.S3.UseSSL {
		t.Errorf("defaults: %+v", c)
	}
}

func TestConfigValid(t *testing.T) {
	c, err := parseConfig(envOf(map[string]string{
		"PUBLIC_API_KEY": testKey, "ADMIN_API_KEY": testKey + "admin",
		"MAX_UPLOAD_BYTES": "10MiB", "NOTIFY_EMAIL_TO": "a@example.com, b@example.com",
		"DATABASE_URL": "postgres://app:pw@127.0.0.1:5432/app?sslmode=disable",
		"S3_ENDPOINT":  "127.0.0.1:9000", "S3_ACCESS_KEY": "minio", "S3_SECRET_KEY": "minio-secret", "S3_BUCKET": "docs", "S3_USE_SSL": "true",
		"MEILI_URL": "http://127.0.0.1:7700", "MEILI_MASTER_KEY": "mk",
		"SMTP_ADDR": "mail.example.com:587", "SMTP_USER": "u", "SMTP_PASSWORD": "p",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxUploadBytes != 10<<20 || len(c.NotifyTo) != 2 || c.NotifyTo[1] != "b@example.com" || !c.S3.UseSSL {
		t.Errorf("parsed %+v", c)
	}
}

// TestConfigErrors: every problem is reported at once, each saying what to set.
func TestConfigErrors(t *testing.T) {
	_, err := parseConfig(envOf(map[string]string{
		"APP_ADDR":         "8000",
		"METRICS_ADDR":     "127.0.0.1:99999",
		"ADMIN_API_KEY":    "short",
		"MAX_UPLOAD_BYTES": "-5",
		"NOTIFY_EMAIL_TO":  "ok@example.com,not an address",
		"DATABASE_URL":     "mysql://x",
		"S3_BUCKET":        "b",
		"S3_USE_SSL":       "maybe",
		"MEILI_URL":        "ftp://x",
		"SES_REGION":       "eu-west-1",
		"SMTP_ADDR":        "nohost",
		"SMTP_USER":        "u",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`APP_ADDR="8000": want host:port`,
		`METRICS_ADDR="127.0.0.1:99999": port "99999"`,
		"PUBLIC_API_KEY is required: set it to a long random secret",
		"ADMIN_API_KEY is 5 characters",
		`MAX_UPLOAD_BYTES="-5"`,
		`NOTIFY_EMAIL_TO: "not an address" is not an email address`,
		"DATABASE_URL must be a postgres:// URL",
		"S3_ENDPOINT is required when any S3_* variable is set",
		"S3_ACCESS_KEY is required with S3_ENDPOINT",
		`S3_USE_SSL="maybe"`,
		`MEILI_URL="ftp://x" must be an http:// or https:// URL`,
		"SES_REGION and SMTP_ADDR are both set",
		`SMTP_ADDR="nohost" must be host:port`,
		"SMTP_USER and SMTP_PASSWORD must be set together",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestConfigMoreErrors(t *testing.T) {
	for name, c := range map[string]struct {
		env  map[string]string
		want string
	}{
		"same addr":       {map[string]string{"PUBLIC_API_KEY": testKey, "APP_ADDR": ":9000", "METRICS_ADDR": ":9000"}, "need their own private listener"},
		"short key":       {map[string]string{"PUBLIC_API_KEY": "abc"}, "PUBLIC_API_KEY is 3 characters"},
		"admin = public":  {map[string]string{"PUBLIC_API_KEY": testKey, "ADMIN_API_KEY": testKey}, "must differ"},
		"s3 scheme":       {map[string]string{"PUBLIC_API_KEY": testKey, "S3_ENDPOINT": "http://minio:9000", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b", "S3_BUCKET": "c"}, "without a scheme"},
		"meili key alone": {map[string]string{"PUBLIC_API_KEY": testKey, "MEILI_MASTER_KEY": "k"}, "MEILI_URL is not"},
		"ses no to":       {map[string]string{"PUBLIC_API_KEY": testKey, "SES_REGION": "eu-west-1"}, "nobody to notify"},
		"ses from alone":  {map[string]string{"PUBLIC_API_KEY": testKey, "SES_FROM_EMAIL": "a@example.com"}, "SES_REGION is not"},
		"bad from":        {map[string]string{"PUBLIC_API_KEY": testKey, "NOTIFY_EMAIL_FROM": "nope"}, `NOTIFY_EMAIL_FROM="nope"`},
		"bad size suffix": {map[string]string{"PUBLIC_API_KEY": testKey, "MAX_UPLOAD_BYTES": "5MB"}, "KiB, MiB or GiB"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseConfig(envOf(c.env))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestConfigSESFallbacks(t *testing.T) {
	c, err := parseConfig(envOf(map[string]string{"PUBLIC_API_KEY": testKey, "SES_REGION": "eu-west-1", "SES_FROM_EMAIL": "from@example.com", "SES_TO_EMAIL": "to@example.com"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.NotifyFrom != "from@example.com" || len(c.NotifyTo) != 1 || c.NotifyTo[0] != "to@example.com" {
		t.Errorf("notify from %q to %v", c.NotifyFrom, c.NotifyTo)
	}
}

// TestConfigLogMasksSecrets: the logged configuration never holds a secret.
func TestConfigLogMasksSecrets(t *testing.T) {
	secrets := map[string]string{
		"PUBLIC_API_KEY": "public-secret-value-1", "ADMIN_API_KEY": "admin-secret-value-22",
		"S3_SECRET_KEY": "s3-secret-value", "MEILI_MASTER_KEY": "meili-secret-value", "SMTP_PASSWORD": "smtp-secret-value",
	}
	env := map[string]string{
		"DATABASE_URL": "postgres://app:db-secret-value@127.0.0.1/app",
		"S3_ENDPOINT":  "127.0.0.1:9000", "S3_ACCESS_KEY": "a", "S3_BUCKET": "b", "MEILI_URL": "http://127.0.0.1:7700",
		"SMTP_ADDR": "127.0.0.1:25", "SMTP_USER": "u", "NOTIFY_EMAIL_TO": "a@example.com",
	}
	for k, v := range secrets {
		env[k] = v
	}
	c, err := parseConfig(envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", c)
	out := buf.String()
	for _, s := range append([]string{"db-secret-value"}, secrets["PUBLIC_API_KEY"], secrets["ADMIN_API_KEY"], secrets["S3_SECRET_KEY"], secrets["MEILI_MASTER_KEY"], secrets["SMTP_PASSWORD"]) {
		if strings.Contains(out, s) {
			t.Errorf("log line holds secret %q: %s", s, out)
		}
	}
	if !strings.Contains(out, `"PUBLIC_API_KEY":"********"`) || !strings.Contains(out, "127.0.0.1:9000") {
		t.Errorf("log line %s", out)
	}
}
