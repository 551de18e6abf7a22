package main

import (
	"log/slog"
	"net/http"

	"github.com/cleantrack/jobs/internal/config"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/web"
)

// resendHandler serves POST /webhooks/resend/ (bounces and complaints). Without
// RESEND_WEBHOOK_SECRET it answers 503, so Resend keeps the deliveries until
// the secret is configured.
func resendHandler(cfg config.Config, store *postgres.Store, log *slog.Logger) http.Handler {
	return web.NewResendWebhook(store, cfg.ResendWebhookSecret, log)
}
