package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/redistest"
)

// startScheduler runs the scheduler with env until it has started, stops it
// and returns its log.
func startScheduler(t *testing.T, env map[string]string) string {
	t.Helper()
	env["REDIS_URL"] = redistest.NewURL(t)
	env["DATABASE_URL"] = pgtest.NewURL(t)
	env["SCHEDULER_METRICS_ADDR"] = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &proctest.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, out) }()
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
