package main

import (
	"context"
	"log/slog"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/config"
	"github.com/cleantrack/jobs/internal/postgres"
)

// registerHandlers wires every domain's task handlers into mux.
func registerHandlers(ctx context.Context, mux *asynq.ServeMux, cfg config.Config, store *postgres.Store, client *asynq.Client, redisOpt asynq.RedisConnOpt, log *slog.Logger) error {
	return nil
}
