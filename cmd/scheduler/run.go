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
	"github.com/cleantrack/jobs/internal/scheduler"
)

func run(ctx context.Context, _ []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := queue.NewLogger(stdout, cfg.LogFormat, cfg.LogLevel).With(slog.String("process", "scheduler"))
	_, stopLogs := logging.RouteLibraries(log)
	defer stopLogs()

	// PostgreSQL holds the slot claims: without it nothing is enqueued.
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

	if cfg.StripeSecretKey == "" {
		log.Info("stripe sync and reconcile are off: STRIPE_SECRET_KEY is not set",
			slog.String("stripe_sync_cron", cfg.StripeSyncCron), slog.String("stripe_reconcile_cron", cfg.StripeReconcileCron))
	}
	s := &scheduler.Scheduler{
		Entries:  scheduler.Entries(specs(cfg)),
		Queue:    client,
		Store:    store,
		Location: cfg.SchedulerTimezone,
		Log:      log,
	}
	errc := make(chan error, 1)
	// /readyz: a slot needs PostgreSQL to be claimed and Redis to be enqueued.
	rdb := queue.RedisClient(redisOpt)
	defer rdb.Close()
	ready := func(ctx context.Context) error {
		if err := store.Ping(ctx); err != nil {
			return fmt.Errorf("postgresql: %w", err)
		}
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		return nil
	}
	sc := admin.ServerConfig{Name: "SCHEDULER_METRICS_ADDR", Addr: cfg.SchedulerMetricsAddr, User: cfg.AdminUser, Password: cfg.AdminPassword}
	stopMetrics, err := admin.StartMetrics(ctx, sc, metrics.Registry, ready, log, errc)
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		stopMetrics(context.Background())
		return err
	}
	log.Info("scheduler started", slog.String("scheduler_id", s.ID), slog.String("timezone", s.Location.String()))
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	log.Info("scheduler shutting down", slog.String("scheduler_id", s.ID))
	s.Stop()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stopMetrics(sctx)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics listener: %w", err)
	}
	return nil
}

// specs takes the periodic jobs' cron specs from the configuration. The
// Stripe catch-up and reconcile read the Stripe API: without
// STRIPE_SECRET_KEY they are left out.
func specs(cfg config.Config) scheduler.Specs {
	s := scheduler.Specs{
		InboxRedrive:  cfg.InboxRedriveCron,
		OverdueScan:   cfg.OverdueScanCron,
		WeeklySummary: cfg.WeeklySummaryCron,
	}
	if cfg.StripeSecretKey != "" {
		s.StripeSync, s.StripeReconcile = cfg.StripeSyncCron, cfg.StripeReconcileCron
	}
	return s
}
