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
)

// registerHandlers wires every domain's task handlers into mux.
func registerHandlers(ctx context.Context, mux *asynq.ServeMux, cfg config.Config, store *postgres.Store, client *asynq.Client, redisOpt asynq.RedisConnOpt, log *slog.Logger) error {
	// billingNotifier sends the welcome and payment-failed emails; nil sends none.
	var billingNotifier billing.Notifier
	billing.NewHandler(store, billingNotifier, client, log.With(slog.String("domain", "billing"))).Register(mux)
	compliance.New(store, email.NewService(client), client, log.With(slog.String("domain", "compliance")),
		compliance.Options{SiteURL: cfg.SiteURL, Grace: cfg.OverdueGrace}).Register(mux)
	return nil
}
