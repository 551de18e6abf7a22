package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/billing"
	"github.com/cleantrack/jobs/internal/compliance"
	"github.com/cleantrack/jobs/internal/config"
	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/stripeapi"
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
	billingNotifier := email.NewNotifier(store, email.NewService(client, store), cfg.SiteURL)
	stripeAPI, err := stripeClient(cfg)
	if err != nil {
		return err
	}
	billing.New(store, billingNotifier, client, log.With(slog.String("domain", "billing")), billing.Options{
		RedriveMinAge: cfg.InboxRedriveMinAge,
		// The sweep reads a page of task states in one round trip. The
		// client lives as long as the process, like the rate limiter's.
		Tasks:        queue.NewTasks(queue.RedisClient(redisOpt)),
		Stripe:       stripeAPI,
		ReconcileFix: cfg.StripeReconcileFix,
	}).Register(mux)
	compliance.New(store, email.NewService(client, store), log.With(slog.String("domain", "compliance")),
		compliance.Options{SiteURL: cfg.SiteURL, Grace: cfg.OverdueGrace, EmailRedriveAge: cfg.EmailRedriveMinAge}).Register(mux)
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

// stripeClient reads the Stripe API with STRIPE_SECRET_KEY, at
// STRIPE_API_BASE when set; nil without a key (thin events then wait, with
// an error naming the variable).
func stripeClient(cfg config.Config) (*stripeapi.Client, error) {
	if cfg.StripeSecretKey == "" {
		return nil, nil
	}
	// A thin event's task has a minute: short waits here, and a rate limit
	// that outlasts them goes back to the queue (see billing's fetch).
	return stripeapi.New(stripeapi.Config{Key: cfg.StripeSecretKey, BaseURL: cfg.StripeAPIBase,
		Timeout: 15 * time.Second, MaxRetries: 2, MaxWait: 5 * time.Second})
}
