package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/config"
	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/tasks"
)

// The worker serves every task type of the contract.
func TestRegisterHandlersServesEveryTaskType(t *testing.T) {
	cfg, err := config.Load(func(string) string { return "" })
	require.NoError(t, err)
	store, _ := pgtest.NewStore(t)
	opt, err := queue.RedisOpt(redistest.NewURL(t))
	require.NoError(t, err)
	client := asynq.NewClient(opt)
	t.Cleanup(func() { client.Close() })

	mux := asynq.NewServeMux()
	require.NoError(t, registerHandlers(context.Background(), mux, cfg, store, client, opt, slog.New(slog.DiscardHandler)))
	require.NotEmpty(t, tasks.Types)
	for typ := range tasks.Types {
		_, pattern := mux.Handler(asynq.NewTask(typ, nil))
		assert.Equal(t, typ, pattern, "no handler for %s", typ)
	}
}

// The configuration's defaults for email are the sender's own.
func TestEmailOptionsFromConfig(t *testing.T) {
	cfg, err := config.Load(func(string) string { return "" })
	require.NoError(t, err)
	assert.Equal(t, email.Options{
		From:          email.DefaultFrom,
		OutboxDir:     email.DefaultOutboxDir,
		RatePerSecond: email.DefaultRatePerSecond,
	}, emailOptions(cfg))

	cfg, err = config.Load(env(map[string]string{
		"RESEND_API_KEY":        "re_123",
		"RESEND_BASE_URL":       "https://resend.example.com/api/",
		"DEFAULT_FROM_EMAIL":    "Ops <ops@example.com>",
		"EMAIL_OUTBOX_DIR":      "/var/outbox",
		"EMAIL_RATE_PER_SECOND": "7",
	}))
	require.NoError(t, err)
	assert.Equal(t, email.Options{
		APIKey:        "re_123",
		BaseURL:       "https://resend.example.com/api/",
		From:          "Ops <ops@example.com>",
		OutboxDir:     "/var/outbox",
		RatePerSecond: 7,
	}, emailOptions(cfg))
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
