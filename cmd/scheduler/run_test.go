package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/startup"
	"github.com/cleantrack/jobs/internal/startup/startuptest"
)

// startScheduler runs the scheduler with env until it has started, stops it
// and returns its log.
func startScheduler(t *testing.T, env map[string]string) string {
	t.Helper()
	// A database of the test's own: the default URL names a development
	// database that may not exist.
	env["DATABASE_URL"] = pgtest.NewURL(t)
	env["REDIS_URL"] = redistest.NewURL(t)
	env["SCHEDULER_METRICS_ADDR"] = "127.0.0.1:0"
	return startSchedulerWith(t, startup.MapEnv(env))
}

func startSchedulerWith(t *testing.T, env startup.Env) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &proctest.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"scheduler"}, env, out) }()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "scheduler started") }, 20*time.Second, 10*time.Millisecond, "%s", out)
	cancel()
	require.NoError(t, <-done)
	return out.String()
}

// The scheduled Stripe sync and reconcile need the Stripe API: without
// STRIPE_SECRET_KEY they are off, and the scheduler says so once at start.
func TestScheduledStripeSyncIsOffWithoutAKey(t *testing.T) {
	t.Parallel()
	log := startScheduler(t, map[string]string{})
	assert.Equal(t, 1, strings.Count(log, "stripe sync and reconcile are off: STRIPE_SECRET_KEY is not set"), log)
	assert.NotContains(t, log, `"entry":"stripe-sync"`)
	assert.NotContains(t, log, `"entry":"stripe-reconcile"`)
	assert.Contains(t, log, `"entry":"inbox-redrive"`)

	log = startScheduler(t, map[string]string{"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_SYNC_CRON": "*/10 * * * *"})
	assert.NotContains(t, log, "are off")
	assert.Contains(t, log, `"entry":"stripe-sync","spec":"*/10 * * * *"`)
	assert.Contains(t, log, `"entry":"stripe-reconcile","spec":"0 3 * * SUN"`)
}

// A .env in the working directory fills in what the environment does not
// set, the environment wins, and the log names the file.
func TestRunReadsDotenv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte(
		"SCHEDULER_TIMEZONE=Europe/Berlin\nSTRIPE_SECRET_KEY=sk_test_from_file\nSTRIPE_SYNC_CRON=\"*/10 * * * *\"\nSCHEDULER_METRICS_ADDR=127.0.0.1:1\n"), 0o600))
	real := map[string]string{
		"DATABASE_URL":           pgtest.NewURL(t),
		"REDIS_URL":              redistest.NewURL(t),
		"SCHEDULER_METRICS_ADDR": "127.0.0.1:0", // wins over the file's taken port
		"STRIPE_SYNC_CRON":       "*/20 * * * *",
	}
	env := startup.Dotenv(dir, func(k string) (string, bool) { v, ok := real[k]; return v, ok })
	log := startSchedulerWith(t, env)
	assert.Contains(t, log, `"msg":"configuration loaded","process":"scheduler","env_file":"`+filepath.Join(dir, ".env")+`"`)
	assert.Contains(t, log, `"timezone":"Europe/Berlin"`, "from the file")
	assert.Contains(t, log, `"entry":"stripe-sync","spec":"*/20 * * * *"`, "the environment wins")
	assert.NotContains(t, log, "sk_test_from_file")
}

func TestRunAnswersHelpAndVersionWithoutConfiguration(t *testing.T) {
	t.Parallel()
	startuptest.HelpAndVersion(t, run, "scheduler", startuptest.Help{
		About: "CleanTrack's scheduler.", Reads: []string{"SCHEDULER_METRICS_ADDR", "OVERDUE_SCAN_CRON"}, NotReads: []string{"WORKER_CONCURRENCY"},
	})
}

// Settings that would refuse every webhook, or a .env that cannot be read,
// stop the process before it opens anything.
func TestRunRefusesBadSettingsAtStart(t *testing.T) {
	t.Parallel()
	startuptest.RefusesBadSettings(t, run, "scheduler", nil)
}
