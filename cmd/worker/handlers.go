package main

import (
	"context"
	"log/slog"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/billing"
	"github.com/cleantrack/jobs/internal/compliance"
	"github.com/cleantrack/jobs/internal/config"
	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
)

// registerHandlers wires every domain's task handlers into mux.
func registerHandlers(ctx context.Context, mux *asynq.ServeMux, cfg config.Config, store *postgres.Store, client *asynq.Client, redisOpt asynq.RedisConnOpt, log *slog.Logger) error {
	// Email: the email:send handler (Resend, or the outbox without an API key)
	// and the notifier billing calls after its commits for the welcome and
	// payment-failed emails. The rate limiter's Redis client lives as long as
	// the process: tasks still running during shutdown need it.
	sender, err := email.New(store, queue.RedisClient(redisOpt), log.With(slog.String("domain", "email")), emailOptions(cfg))
	if err != nil {
		return err
	}
	sender.Register(mux)
	billingNotifier := email.NewNotifier(store, email.NewService(client), cfg.SiteURL)
	billing.New(store, billingNotifier, client, log.With(slog.String("domain", "billing")), billing.Options{
		RedriveMinAge: cfg.InboxRedriveMinAge,
		// The sweep reads a page of task states in one round trip. The
		// client lives as long as the process, like the rate limiter's.
		Tasks: queue.NewTasks(queue.RedisClient(redisOpt)),
	}).Register(mux)
	compliance.New(store, email.NewService(client), client, log.With(slog.String("domain", "compliance")),
		compliance.Options{SiteURL: cfg.SiteURL, Grace: cfg.OverdueGrace}).Register(mux)
	return nil
}

// emailOptions takes the sender's settings from the configuration.
func emailOptions(cfg config.Config) email.Options {
	return email.Options{
		APIKey:        cfg.ResendAPIKey,
		BaseURL:       cfg.ResendBaseURL,
		From:          cfg.DefaultFromEmail,
		OutboxDir:     cfg.EmailOutboxDir,
		RatePerSecond: cfg.EmailRatePerSecond,
	}
}
