package config

import "slices"

// The processes that read the configuration, as Variable.Processes names
// them: the three daemons and the CLI.
const (
	ProcessWeb       = "web"
	ProcessWorker    = "worker"
	ProcessScheduler = "scheduler"
	ProcessCLI       = "cleantrack"
)

// Variable is one environment variable Load reads.
type Variable struct {
	Name string
	// Default is the value used when the variable is unset, as
	// .env.example writes it ("" for none).
	Default string
	// Summary says in a line what it sets.
	Summary string
	// Processes are the binaries that use it.
	Processes []string
}

var (
	all        = []string{ProcessWeb, ProcessWorker, ProcessScheduler, ProcessCLI}
	daemons    = []string{ProcessWeb, ProcessWorker, ProcessScheduler}
	sending    = []string{ProcessWorker, ProcessCLI}
	schedules  = []string{ProcessWeb, ProcessScheduler, ProcessCLI}
	listeners  = daemons
	webOnly    = []string{ProcessWeb}
	workerOnly = []string{ProcessWorker}
)

// Variables is every variable Load reads, grouped as in .env.example; the
// daemons' --help lists those of their process from it. A test keeps it in
// agreement with Load and .env.example.
var Variables = []Variable{
	{"DATABASE_URL", DefaultDatabaseURL, "PostgreSQL, the system of record", all},
	{"MIGRATE_DATABASE_URL", "", "where cleantrack migrate runs, straight to PostgreSQL when DATABASE_URL goes through PgBouncer (default: DATABASE_URL)", []string{ProcessCLI}},
	{"DATABASE_MAX_CONNS", "25", "connections each process holds open at most", all},
	{"REDIS_URL", DefaultRedisURL, "Redis, the task transport (redis://, rediss://, redis-sentinel://, redis-socket://, redis-cluster://)", all},
	{"PORT", "8000", "public port of the webhooks", []string{ProcessWeb, ProcessCLI}},
	{"STRIPE_WEBHOOK_SECRET", "", "Stripe endpoint signing secret(s), comma-separated while rotating (required by web)", []string{ProcessWeb, ProcessCLI}},
	{"STRIPE_WEBHOOK_TOLERANCE", "300s", "how old or how far ahead a signature's timestamp may be: 1s to 24h", webOnly},
	{"RESEND_WEBHOOK_SECRET", "", "Svix signing secret (whsec_ and base64) of the Resend webhook", webOnly},
	{"STRIPE_SECRET_KEY", "", "Stripe API key (read-only use): thin events, sync, reconcile", []string{ProcessWorker, ProcessScheduler, ProcessCLI}},
	{"STRIPE_API_BASE", "", "Stripe API base URL override (stripe-mock)", sending},
	{"STRIPE_SYNC_CRON", DefaultStripeSyncCron, "catch-up from Stripe's List Events API", []string{ProcessScheduler, ProcessCLI}},
	{"STRIPE_RECONCILE_CRON", DefaultReconcileCron, "comparison of every account with Stripe", []string{ProcessScheduler, ProcessCLI}},
	{"STRIPE_RECONCILE_FIX", "false", "let the scheduled reconcile apply Stripe's state", workerOnly},
	{"WORKER_CONCURRENCY", "10", "tasks run at once per worker process", workerOnly},
	{"RESEND_API_KEY", "", "Resend API key; without one, email goes to EMAIL_OUTBOX_DIR", sending},
	{"RESEND_BASE_URL", "", "another Resend-compatible endpoint", sending},
	{"DEFAULT_FROM_EMAIL", DefaultFromEmail, "sender address, on a domain verified at Resend", sending},
	{"EMAIL_RATE_PER_SECOND", "2", "Resend API requests per second across all workers (a batch is one)", sending},
	{"EMAIL_OUTBOX_DIR", DefaultOutboxDir, "where email goes without RESEND_API_KEY", sending},
	{"SITE_URL", DefaultSiteURL, "public URL of the CleanTrack app, for links in email", sending},
	{"OVERDUE_GRACE", "0", "extra time after the due time before equipment is overdue", workerOnly},
	{"OVERDUE_SCAN_CRON", DefaultOverdueScanCron, "overdue scan schedule", schedules},
	{"WEEKLY_SUMMARY_CRON", DefaultWeeklyCron, "weekly summary schedule", schedules},
	{"INBOX_REDRIVE_CRON", DefaultRedriveCron, "inbox re-drive schedule", schedules},
	{"SCHEDULER_TIMEZONE", "UTC", "time zone the cron specs are read in", schedules},
	{"INBOX_REDRIVE_MIN_AGE", "60s", "how long an unprocessed Stripe event waits before the sweep enqueues it again", workerOnly},
	{"EMAIL_REDRIVE_MIN_AGE", "10m", "how long a single email stays queued before the overdue scan enqueues it again from its row", workerOnly},
	{"ADMIN_ADDR", DefaultAdminAddr, "admin listener: dashboard, Schedules page, /metrics", webOnly},
	{"ADMIN_USER", "", "basic-auth user of the admin and metrics listeners (with ADMIN_PASSWORD)", listeners},
	{"ADMIN_PASSWORD", "", "basic-auth password of the admin and metrics listeners", listeners},
	{"ADMIN_READ_ONLY", "false", "make the dashboard read-only", webOnly},
	{"ADMIN_ALLOWED_HOSTS", "", "host names the admin listener answers to (default: ADMIN_ADDR's host, localhost, 127.0.0.1)", webOnly},
	{"WORKER_METRICS_ADDR", DefaultWorkerMetrics, "the worker's /metrics listener", workerOnly},
	{"SCHEDULER_METRICS_ADDR", DefaultSchedulerMetrics, "the scheduler's /metrics listener", []string{ProcessScheduler}},
	{"PROMETHEUS_URL", "", "Prometheus server for the dashboard's metrics view", webOnly},
	{"LOG_LEVEL", "info", "debug, info, warn or error", daemons},
	{"LOG_FORMAT", "json", "json or text", daemons},
}

// VariablesOf returns the variables process uses, in Variables' order.
func VariablesOf(process string) []Variable {
	var out []Variable
	for _, v := range Variables {
		if slices.Contains(v.Processes, process) {
			out = append(out, v)
		}
	}
	return out
}
