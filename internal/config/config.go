// Package config reads CleanTrack's environment once, into one plain struct,
// and validates it so that a process with a missing or malformed value stops at
// start with a message that names the variable.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	// Account and scheduler time zones must resolve in a minimal container too.
	_ "time/tzdata"
)

// Defaults for the variables that have one.
const (
	DefaultDatabaseURL      = "postgres://postgres@127.0.0.1:5432/cleantrack?sslmode=disable"
	DefaultDatabaseMaxConns = 25
	DefaultRedisURL         = "redis://127.0.0.1:6379/0"
	DefaultPort             = 8000
	DefaultWebhookTolerance = 300 * time.Second
	DefaultSiteURL          = "http://localhost:8000"
	DefaultFromEmail        = "CleanTrack <notifications@cleantrack.local>"
	DefaultOutboxDir        = "./tmp/outbox"
	DefaultAdminAddr        = "127.0.0.1:8001"
	DefaultWorkerMetrics    = "127.0.0.1:8002"
	DefaultSchedulerMetrics = "127.0.0.1:8003"
	DefaultOverdueScanCron  = "*/15 * * * *"
	DefaultWeeklyCron       = "0 6 * * MON"
	DefaultRedriveCron      = "* * * * *"

	DefaultStripeSyncCron = "*/30 * * * *"
	DefaultReconcileCron  = "0 3 * * SUN"
)

// The range STRIPE_WEBHOOK_TOLERANCE accepts. Below a second every delivery
// with the slightest clock skew is refused; beyond a day a captured signature
// can be replayed for too long (Stripe itself uses five minutes).
const (
	MinWebhookTolerance = time.Second
	MaxWebhookTolerance = 24 * time.Hour
)

// Config is every setting CleanTrack reads from its environment. The zero value
// is not useful; build one with Load.
type Config struct {
	DatabaseURL string
	// MigrateDatabaseURL is where `cleantrack migrate` runs: a direct
	// connection to PostgreSQL, since the migration lock is a session
	// advisory lock that PgBouncer in transaction mode cannot keep. It is
	// DatabaseURL when MIGRATE_DATABASE_URL is unset.
	MigrateDatabaseURL string
	// DatabaseMaxConns is each process's connection pool size.
	DatabaseMaxConns int
	RedisURL         string

	Port                   int
	StripeWebhookSecrets   []string
	StripeWebhookTolerance time.Duration
	StripeSecretKey        string
	StripeAPIBase          string
	SiteURL                string

	WorkerConcurrency int
	LogLevel          slog.Level
	LogFormat         string // "json" or "text"

	ResendAPIKey        string
	ResendBaseURL       string
	ResendWebhookSecret string
	DefaultFromEmail    string
	EmailRatePerSecond  int
	EmailOutboxDir      string

	OverdueGrace      time.Duration
	OverdueScanCron   string
	WeeklySummaryCron string
	InboxRedriveCron  string
	// InboxRedriveMinAge is how long an unprocessed inbox row waits before
	// the sweep enqueues it again (the web process enqueues it first).
	InboxRedriveMinAge time.Duration
	// EmailRedriveMinAge is how long a single email stays queued before the
	// overdue scan's handler enqueues it again from its delivery row.
	EmailRedriveMinAge time.Duration
	SchedulerTimezone  *time.Location

	// StripeSyncCron and StripeReconcileCron schedule the catch-up from the
	// List Events API and the comparison with Stripe's subscriptions; both
	// run only with StripeSecretKey. StripeReconcileFix lets the scheduled
	// reconcile apply what it finds (the worker reads it).
	StripeSyncCron      string
	StripeReconcileCron string
	StripeReconcileFix  bool

	AdminAddr     string
	AdminUser     string
	AdminPassword string
	AdminReadOnly bool
	// AdminAllowedHosts are the host names (any port) the admin listener
	// answers to, lower case, IPv6 without brackets. Empty means the
	// default: ADMIN_ADDR's host, localhost and 127.0.0.1 (see
	// AdminHosts).
	AdminAllowedHosts    []string
	WorkerMetricsAddr    string
	SchedulerMetricsAddr string
	PrometheusURL        string
}

// Load reads the environment through getenv (os.Getenv in production, a map in
// tests). It returns every problem it finds at once, each naming its variable.
// Requirements that only one process has (the web process needs
// STRIPE_WEBHOOK_SECRET) are checked by that process with RequireWebhookSecret.
func Load(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		DatabaseURL:            p.url("DATABASE_URL", DefaultDatabaseURL, "postgres", "postgresql"),
		DatabaseMaxConns:       p.positiveInt("DATABASE_MAX_CONNS", DefaultDatabaseMaxConns),
		RedisURL:               p.url("REDIS_URL", DefaultRedisURL, "redis", "rediss", "redis-sentinel", "redis-socket", "redis-cluster"),
		Port:                   p.port("PORT", DefaultPort),
		StripeWebhookSecrets:   p.list("STRIPE_WEBHOOK_SECRET"),
		StripeWebhookTolerance: p.durationIn("STRIPE_WEBHOOK_TOLERANCE", DefaultWebhookTolerance, time.Second, MinWebhookTolerance, MaxWebhookTolerance),
		StripeSecretKey:        p.str("STRIPE_SECRET_KEY", ""),
		StripeAPIBase:          p.url("STRIPE_API_BASE", "", "http", "https"),
		SiteURL:                strings.TrimRight(p.url("SITE_URL", DefaultSiteURL, "http", "https"), "/"),
		WorkerConcurrency:      p.positiveInt("WORKER_CONCURRENCY", 10),
		LogLevel:               p.level("LOG_LEVEL", slog.LevelInfo),
		LogFormat:              p.oneOf("LOG_FORMAT", "json", "json", "text"),

		ResendAPIKey:        p.str("RESEND_API_KEY", ""),
		ResendBaseURL:       p.url("RESEND_BASE_URL", "", "http", "https"),
		ResendWebhookSecret: p.svixSecret("RESEND_WEBHOOK_SECRET"),
		DefaultFromEmail:    p.str("DEFAULT_FROM_EMAIL", DefaultFromEmail),
		EmailRatePerSecond:  p.positiveInt("EMAIL_RATE_PER_SECOND", 2),
		EmailOutboxDir:      p.str("EMAIL_OUTBOX_DIR", DefaultOutboxDir),

		OverdueGrace:       p.duration("OVERDUE_GRACE", 0, time.Hour),
		OverdueScanCron:    p.cron("OVERDUE_SCAN_CRON", DefaultOverdueScanCron),
		WeeklySummaryCron:  p.cron("WEEKLY_SUMMARY_CRON", DefaultWeeklyCron),
		InboxRedriveCron:   p.cron("INBOX_REDRIVE_CRON", DefaultRedriveCron),
		InboxRedriveMinAge: p.duration("INBOX_REDRIVE_MIN_AGE", time.Minute, time.Second),
		EmailRedriveMinAge: p.duration("EMAIL_REDRIVE_MIN_AGE", 10*time.Minute, time.Minute),
		SchedulerTimezone:  p.location("SCHEDULER_TIMEZONE", "UTC"),

		StripeSyncCron:      p.cron("STRIPE_SYNC_CRON", DefaultStripeSyncCron),
		StripeReconcileCron: p.cron("STRIPE_RECONCILE_CRON", DefaultReconcileCron),
		StripeReconcileFix:  p.boolean("STRIPE_RECONCILE_FIX", false),

		AdminAddr:            p.addr("ADMIN_ADDR", DefaultAdminAddr),
		AdminUser:            p.str("ADMIN_USER", ""),
		AdminPassword:        p.str("ADMIN_PASSWORD", ""),
		AdminReadOnly:        p.boolean("ADMIN_READ_ONLY", false),
		AdminAllowedHosts:    p.hosts("ADMIN_ALLOWED_HOSTS"),
		WorkerMetricsAddr:    p.addr("WORKER_METRICS_ADDR", DefaultWorkerMetrics),
		SchedulerMetricsAddr: p.addr("SCHEDULER_METRICS_ADDR", DefaultSchedulerMetrics),
		PrometheusURL:        p.url("PROMETHEUS_URL", "", "http", "https"),
	}
	c.MigrateDatabaseURL = p.url("MIGRATE_DATABASE_URL", c.DatabaseURL, "postgres", "postgresql")
	if (c.AdminUser == "") != (c.AdminPassword == "") {
		p.fail("ADMIN_USER", "ADMIN_USER and ADMIN_PASSWORD must be set together")
	}
	if len(p.errs) > 0 {
		return Config{}, errors.Join(p.errs...)
	}
	return c, nil
}

// RequireWebhookSecret reports an error naming STRIPE_WEBHOOK_SECRET when no
// secret is configured; the web process cannot verify a webhook without one.
func (c Config) RequireWebhookSecret() error {
	if len(c.StripeWebhookSecrets) == 0 {
		return errors.New("STRIPE_WEBHOOK_SECRET is required: set it to the endpoint's signing secret (whsec_...), several comma-separated while rotating")
	}
	return nil
}

// AdminHosts is the list of host names the admin listener answers to:
// ADMIN_ALLOWED_HOSTS, or by default ADMIN_ADDR's host (unless it is every
// interface), localhost and 127.0.0.1.
func (c Config) AdminHosts() []string {
	if len(c.AdminAllowedHosts) > 0 {
		return c.AdminAllowedHosts
	}
	hosts := []string{"localhost", "127.0.0.1"}
	host, _, err := net.SplitHostPort(c.AdminAddr)
	host = strings.ToLower(host)
	if ip := net.ParseIP(host); err == nil && host != "" && (ip == nil || !ip.IsUnspecified()) && !slices.Contains(hosts, host) {
		hosts = append([]string{host}, hosts...)
	}
	return hosts
}

// AdminAuthConfigured reports whether basic-auth credentials were given for the
// admin and metrics listeners.
func (c Config) AdminAuthConfigured() bool { return c.AdminUser != "" }

type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) fail(name, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

func (p *parser) str(name, def string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return def
}

func (p *parser) list(name string) []string {
	var out []string
	for _, s := range strings.Split(p.getenv(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) url(name, def string, schemes ...string) string {
	v := p.str(name, def)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil {
		// The parse error may quote the URL, and with it a password.
		p.fail(name, "not a valid URL")
		return ""
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return v
		}
	}
	p.fail(name, "scheme %q is not one of %s", u.Scheme, strings.Join(schemes, ", "))
	return ""
}

func (p *parser) port(name string, def int) int {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		p.fail(name, "%q is not a port number (1-65535)", v)
	}
	return n
}

func (p *parser) positiveInt(name string, def int) int {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		p.fail(name, "%q is not a positive whole number", v)
	}
	return n
}

// duration accepts a Go duration ("90s", "2h") or a bare number in unit.
func (p *parser) duration(name string, def, unit time.Duration) time.Duration {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 && n*float64(unit) <= math.MaxInt64 {
		return time.Duration(n * float64(unit))
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		p.fail(name, "%q is not a duration (like 300s, 15m or 2h)", v)
	}
	return d
}

// durationIn is duration limited to [min, max]; the message names the range.
func (p *parser) durationIn(name string, def, unit, min, max time.Duration) time.Duration {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		// NaN, infinities and values past what a Duration holds would
		// otherwise convert to nonsense.
		if math.IsNaN(n) || n*float64(unit) < float64(min) || n*float64(unit) > float64(max) {
			p.fail(name, "%q is out of range: accepted %s to %s (a bare number is in %s)", v, min, max, unitName(unit))
			return def
		}
		return time.Duration(n * float64(unit))
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.fail(name, "%q is not a duration (like 300s, 15m or 2h): accepted %s to %s", v, min, max)
		return def
	}
	if d < min || d > max {
		p.fail(name, "%q is out of range: accepted %s to %s", v, min, max)
		return def
	}
	return d
}

func unitName(unit time.Duration) string {
	switch unit {
	case time.Second:
		return "seconds"
	case time.Minute:
		return "minutes"
	case time.Hour:
		return "hours"
	}
	return unit.String()
}

// svixSecret is a Svix signing secret ("whsec_" and base64, as Resend shows
// it). The value itself never goes into the message.
func (p *parser) svixSecret(name string) string {
	v := p.str(name, "")
	if v == "" {
		return ""
	}
	key, ok := strings.CutPrefix(v, "whsec_")
	if !ok {
		p.fail(name, "does not start with whsec_: copy the signing secret from the webhook's page at Resend")
		return ""
	}
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) == 0 {
		p.fail(name, "is not whsec_ followed by base64 (the characters A-Z a-z 0-9 + / and = padding): copy the signing secret from the webhook's page at Resend")
		return ""
	}
	return v
}

// hosts is a comma-separated list of host names or IP addresses, without
// ports; IPv6 may come in brackets.
func (p *parser) hosts(name string) []string {
	var out []string
	for _, h := range p.list(name) {
		h = strings.ToLower(h)
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			h = h[1 : len(h)-1]
		}
		if net.ParseIP(h) == nil && !validHostName(h) {
			p.fail(name, "%q is not a host name or IP address (list names without scheme or port, comma-separated: any port is accepted)", h)
			continue
		}
		out = append(out, h)
	}
	return out
}

func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

func (p *parser) level(name string, def slog.Level) slog.Level {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		p.fail(name, "%q is not one of debug, info, warn, error", v)
	}
	return l
}

func (p *parser) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(p.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, "%q is not one of %s", v, strings.Join(allowed, ", "))
	return def
}

func (p *parser) boolean(name string, def bool) bool {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, "%q is not true or false", v)
	}
	return b
}

func (p *parser) addr(name, def string) string {
	v := p.str(name, def)
	if _, _, err := net.SplitHostPort(v); err != nil {
		p.fail(name, "%q is not host:port", v)
	}
	return v
}

func (p *parser) cron(name, def string) string {
	v := p.str(name, def)
	if _, err := cron.ParseStandard(v); err != nil {
		p.fail(name, "%q is not a cron spec: %v", v, err)
	}
	return v
}

func (p *parser) location(name, def string) *time.Location {
	v := p.str(name, def)
	loc, err := time.LoadLocation(v)
	if err != nil {
		p.fail(name, "%q is not a time zone name (like UTC or Europe/Berlin)", v)
		return time.UTC
	}
	return loc
}
