package main

import (
	"log/slog"
	"net/http"

	"github.com/cleantrack/jobs/internal/config"
	"github.com/cleantrack/jobs/internal/postgres"
)

// resendHandler serves POST /webhooks/resend/ (bounces and complaints).
func resendHandler(cfg config.Config, store *postgres.Store, log *slog.Logger) http.Handler {
	return nil
}
