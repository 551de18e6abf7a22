package config_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/config"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestDefaults(t *testing.T) {
	c, err := config.Load(env(nil))
	require.NoError(t, err)
	assert.Equal(t, config.DefaultDatabaseURL, c.DatabaseURL)
	assert.Equal(t, config.DefaultDatabaseURL, c.MigrateDatabaseURL, "migrations run where the processes connect unless told otherwise")
	assert.Equal(t, config.DefaultDatabaseMaxConns, c.DatabaseMaxConns)
	assert.Equal(t, config.DefaultRedisURL, c.RedisURL)
	assert.Equal(t, 8000, c.Port)
	assert.Equal(t, 300*time.Second, c.StripeWebhookTolerance)
	assert.Equal(t, slog.LevelInfo, c.LogLevel)
	assert.Equal(t, "json", c.LogFormat)
	assert.Equal(t, 2, c.EmailRatePerSecond)
	assert.Equal(t, "./tmp/outbox", c.EmailOutboxDir)
	assert.Equal(t, "*/15 * * * *", c.OverdueScanCron)
	assert.Equal(t, "0 6 * * MON", c.WeeklySummaryCron)
	assert.Equal(t, time.UTC, c.SchedulerTimezone)
	assert.Equal(t, "127.0.0.1:8001", c.AdminAddr)
	assert.Empty(t, c.StripeWebhookSecrets)
	assert.Error(t, c.RequireWebhookSecret())
}

func TestParsesValues(t *testing.T) {
	c, err := config.Load(env(map[string]string{
		"STRIPE_WEBHOOK_SECRET":    " whsec_new , whsec_old ,",
		"STRIPE_WEBHOOK_TOLERANCE": "120",
		"PORT":                     "9000",
		"LOG_LEVEL":                "debug",
		"LOG_FORMAT":               "TEXT",
		"SCHEDULER_TIMEZONE":       "Europe/Berlin",
		"OVERDUE_GRACE":            "2h",
		"EMAIL_REDRIVE_MIN_AGE":    "30s",
		"SITE_URL":                 "https://app.cleantrack.example/",
		"REDIS_URL":                "redis-sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379?master=main",
	}))
	require.NoError(t, err)
	assert.Equal(t, []string{"whsec_new", "whsec_old"}, c.StripeWebhookSecrets)
	assert.NoError(t, c.RequireWebhookSecret())
	assert.Equal(t, 120*time.Second, c.StripeWebhookTolerance)
	assert.Equal(t, 9000, c.Port)
	assert.Equal(t, slog.LevelDebug, c.LogLevel)
	assert.Equal(t, "text", c.LogFormat)
	assert.Equal(t, "Europe/Berlin", c.SchedulerTimezone.String())
	assert.Equal(t, 2*time.Hour, c.OverdueGrace)
	assert.Equal(t, 30*time.Second, c.EmailRedriveMinAge)
	assert.Equal(t, "https://app.cleantrack.example", c.SiteURL)
}

func TestPgBouncerSettings(t *testing.T) {
	t.Run("migrations take the direct URL", func(t *testing.T) {
		c, err := config.Load(env(map[string]string{
			"DATABASE_URL":         "postgres://app@pgbouncer:6432/cleantrack",
			"MIGRATE_DATABASE_URL": "postgres://app@db:5432/cleantrack",
			"DATABASE_MAX_CONNS":   "8",
		}))
		require.NoError(t, err)
		assert.Equal(t, "postgres://app@pgbouncer:6432/cleantrack", c.DatabaseURL)
		assert.Equal(t, "postgres://app@db:5432/cleantrack", c.MigrateDatabaseURL)
		assert.Equal(t, 8, c.DatabaseMaxConns)
	})
	t.Run("migrations fall back to DATABASE_URL", func(t *testing.T) {
		c, err := config.Load(env(map[string]string{"DATABASE_URL": "postgres://app@db:5432/other"}))
		require.NoError(t, err)
		assert.Equal(t, "postgres://app@db:5432/other", c.MigrateDatabaseURL)
	})
}

func TestMalformedValuesNameTheVariable(t *testing.T) {
	cases := map[string]string{
		"DATABASE_URL":             "mysql://x",
		"REDIS_URL":                "http://localhost",
		"PORT":                     "http",
		"STRIPE_WEBHOOK_TOLERANCE": "soon",
		"WORKER_CONCURRENCY":       "0",
		"DATABASE_MAX_CONNS":       "none",
		"MIGRATE_DATABASE_URL":     "mysql://x",
		"LOG_LEVEL":                "loud",
		"LOG_FORMAT":               "xml",
		"EMAIL_RATE_PER_SECOND":    "-1",
		"OVERDUE_SCAN_CRON":        "every 15 minutes",
		"WEEKLY_SUMMARY_CRON":      "0 6 * *",
		"SCHEDULER_TIMEZONE":       "Mars/Olympus",
		"ADMIN_ADDR":               "8001",
		"ADMIN_READ_ONLY":          "maybe",
		"RESEND_BASE_URL":          "ftp://resend",
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := config.Load(env(map[string]string{name: value}))
			require.Error(t, err)
			assert.Contains(t, err.Error(), name+":")
		})
	}
	t.Run("several at once", func(t *testing.T) {
		_, err := config.Load(env(map[string]string{"PORT": "x", "LOG_LEVEL": "y"}))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "PORT:")
		assert.Contains(t, err.Error(), "LOG_LEVEL:")
	})
	t.Run("admin credentials come in pairs", func(t *testing.T) {
		_, err := config.Load(env(map[string]string{"ADMIN_USER": "ops"}))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "ADMIN_PASSWORD")
	})
}

func TestErrorsDoNotLeakSecrets(t *testing.T) {
	_, err := config.Load(env(map[string]string{
		"DATABASE_URL": "postgres://user:s3cretpw@host:bad port/db",
		"REDIS_URL":    "redis://:hunter2@host:6379/x y%zz",
	}))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cretpw")
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestWebhookToleranceRange(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration // 0: refused
	}{
		{"1", time.Second},
		{"1s", time.Second},
		{"300", 300 * time.Second},
		{"5m", 5 * time.Minute},
		{"86400", 24 * time.Hour},
		{"24h", 24 * time.Hour},
		{"0", 0},
		{"0s", 0},
		{"0.5", 0},
		{"-1", 0},
		{"-5m", 0},
		{"86401", 0},
		{"25h", 0},
		{"1e300", 0},
		{"NaN", 0},
		{"Inf", 0},
		{"-Inf", 0},
		{"9999999999h", 0},
		{"soon", 0},
	} {
		t.Run(tc.value, func(t *testing.T) {
			c, err := config.Load(env(map[string]string{"STRIPE_WEBHOOK_TOLERANCE": tc.value}))
			if tc.want != 0 {
				require.NoError(t, err)
				assert.Equal(t, tc.want, c.StripeWebhookTolerance)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "STRIPE_WEBHOOK_TOLERANCE:")
			assert.Contains(t, err.Error(), "accepted 1s to 24h0m0s", "the message names the accepted range")
		})
	}
}

func TestResendWebhookSecret(t *testing.T) {
	const good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	c, err := config.Load(env(map[string]string{"RESEND_WEBHOOK_SECRET": good}))
	require.NoError(t, err)
	assert.Equal(t, good, c.ResendWebhookSecret)

	for _, bad := range []string{
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", // no prefix
		"whsec_",                           // nothing to decode
		"whsec_not base64!",
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", // cut short: bad padding
		"re_123456789",                          // an API key pasted by mistake
	} {
		t.Run(bad, func(t *testing.T) {
			_, err := config.Load(env(map[string]string{"RESEND_WEBHOOK_SECRET": bad}))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "RESEND_WEBHOOK_SECRET:")
			assert.Contains(t, err.Error(), "whsec_")
			if len(bad) > len("whsec_") {
				assert.NotContains(t, err.Error(), bad, "the secret stays out of the message")
			}
		})
	}
}

func TestAdminHosts(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"default bind", nil, []string{"localhost", "127.0.0.1"}},
		{"named bind", map[string]string{"ADMIN_ADDR": "Admin.Internal:8001", "ADMIN_USER": "u", "ADMIN_PASSWORD": "p"}, []string{"admin.internal", "localhost", "127.0.0.1"}},
		{"ipv6 bind", map[string]string{"ADMIN_ADDR": "[::1]:8001"}, []string{"::1", "localhost", "127.0.0.1"}},
		{"every interface", map[string]string{"ADMIN_ADDR": "0.0.0.0:8001"}, []string{"localhost", "127.0.0.1"}},
		{"every interface, empty host", map[string]string{"ADMIN_ADDR": ":8001"}, []string{"localhost", "127.0.0.1"}},
		{"explicit", map[string]string{"ADMIN_ALLOWED_HOSTS": " Ops.Example.com , [::1],10.0.0.5 "}, []string{"ops.example.com", "::1", "10.0.0.5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Load(env(tc.env))
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.AdminHosts())
		})
	}
	for _, bad := range []string{"ops.example.com:443", "https://ops.example.com", "*", "bad host", "-x.example.com"} {
		t.Run("refuses "+bad, func(t *testing.T) {
			_, err := config.Load(env(map[string]string{"ADMIN_ALLOWED_HOSTS": "localhost," + bad}))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "ADMIN_ALLOWED_HOSTS:")
			assert.Contains(t, err.Error(), "any port is accepted")
		})
	}
}
