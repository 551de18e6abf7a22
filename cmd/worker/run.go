package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/admin"
	"github.com/cleantrack/jobs/internal/config"
	"github.com/cleantrack/jobs/internal/logging"
	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
)

// shutdownTimeout is how long running tasks get to finish on SIGTERM before
// Asynq hands them back to the queue (they are idempotent, so a re-run is safe).
const shutdownTimeout = 25 * time.Second

func run(ctx context.Context, _ []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := queue.NewLogger(stdout, cfg.LogFormat, cfg.LogLevel).With(slog.String("process", "worker"))
	libLogs, stopLogs := logging.RouteLibraries(log)
	defer stopLogs()

	store, err := postgres.OpenWith(ctx, cfg.DatabaseURL, postgres.Options{MaxConns: cfg.DatabaseMaxConns})
	if err != nil {
		return err
	}
	defer store.Close()

	redisOpt, err := queue.RedisOpt(cfg.RedisURL)
	if err != nil {
		return err
	}
	client := asynq.NewClient(redisOpt)
	defer client.Close()

	mux := asynq.NewServeMux()
	mux.Use(metrics.TaskMiddleware(queue.IsFailure))
	if err := registerHandlers(ctx, mux, cfg, store, client, redisOpt, log); err != nil {
		return err
	}

	// The server's Redis client pauses the fetch loop after a failed dequeue,
	// which Asynq itself retries at once (a busy loop while Redis answers
	// errors such as NOAUTH or OOM).
	rc := newGuardedRedisClient(redisOpt)
	defer rc.Close()
	srv := asynq.NewServerFromRedisClient(rc, asynq.Config{
		Concurrency:     cfg.WorkerConcurrency,
		Queues:          queue.Weights,
		RetryDelayFunc:  queue.RetryDelay,
		IsFailure:       queue.IsFailure,
		ShutdownTimeout: shutdownTimeout,
		Logger:          queue.Logger{L: log, Summary: libLogs},
		LogLevel:        asynq.WarnLevel,
		ErrorHandler:    errorLogger(log),
	})
	errc := make(chan error, 1)
	// /readyz: the worker can do nothing without PostgreSQL and Redis.
	ready := func(ctx context.Context) error {
		if err := store.Ping(ctx); err != nil {
			return fmt.Errorf("postgresql: %w", err)
		}
		if err := rc.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		return nil
	}
	sc := admin.ServerConfig{Name: "WORKER_METRICS_ADDR", Addr: cfg.WorkerMetricsAddr, User: cfg.AdminUser, Password: cfg.AdminPassword}
	stopMetrics, err := admin.StartMetrics(ctx, sc, metrics.Registry, ready, log, errc)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopMetrics(sctx)
	}()
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	log.Info("worker started", slog.Int("concurrency", cfg.WorkerConcurrency))
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	log.Info("worker shutting down")
	srv.Shutdown()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics listener: %w", err)
	}
	return nil
}

// errorLogger is the one place a failed task attempt is logged.
func errorLogger(log *slog.Logger) asynq.ErrorHandlerFunc {
	return func(ctx context.Context, task *asynq.Task, err error) {
		id, _ := asynq.GetTaskID(ctx)
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		level := slog.LevelWarn
		outcome := "retry"
		if errors.Is(err, asynq.SkipRetry) || retried >= maxRetry {
			level, outcome = slog.LevelError, "archived"
		}
		switch {
		case errors.Is(err, asynq.RevokeTask):
			// Ended on purpose, neither retried nor archived (an unmatched
			// Stripe event, which waits in the inbox).
			level, outcome = slog.LevelInfo, "revoked"
		case !queue.IsFailure(err):
			level, outcome = slog.LevelInfo, "rate_limited"
		}
		log.Log(ctx, level, "task failed",
			slog.String("task_type", task.Type()),
			slog.String("task_id", id),
			slog.Int("retried", retried),
			slog.Int("max_retry", maxRetry),
			slog.String("outcome", outcome),
			slog.String("error", err.Error()))
	}
}
