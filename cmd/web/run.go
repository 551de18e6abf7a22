package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/config"
	"github.com/cleantrack/jobs/internal/logging"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/web"
)

// shutdownTimeout bounds how long in-flight requests get on SIGTERM.
const shutdownTimeout = 10 * time.Second

// run starts the web process and blocks until ctx is done. When ready is not
// nil it receives the public listener's address once it accepts connections
// (tests use it with PORT=0).
func run(ctx context.Context, _ []string, getenv func(string) string, stdout io.Writer) error {
	return serve(ctx, getenv, stdout, nil)
}

func serve(ctx context.Context, getenv func(string) string, stdout io.Writer, ready chan<- string) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if err := cfg.RequireWebhookSecret(); err != nil {
		return err
	}
	log := queue.NewLogger(stdout, cfg.LogFormat, cfg.LogLevel).With(slog.String("process", "web"))
	// The dashboard's queue gauges and go-redis log through slog too.
	_, stopLogs := logging.RouteLibraries(log)
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
	rdb := queue.RedisClient(redisOpt)
	defer rdb.Close()

	readiness := func(ctx context.Context) error {
		if err := store.Ping(ctx); err != nil {
			return fmt.Errorf("postgresql: %w", err)
		}
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		return nil
	}
	srv := &web.Server{
		Store:           store,
		Queue:           client,
		StripeSecrets:   cfg.StripeWebhookSecrets,
		StripeTolerance: cfg.StripeWebhookTolerance,
		Ready:           readiness,
		Resend:          resendHandler(cfg, store, log),
		Log:             log,
	}

	// The admin listener first: a refused ADMIN_ADDR stops the process before
	// it takes webhooks.
	errc := make(chan error, 2)
	stopAdmin, err := startAdmin(ctx, cfg, redisOpt, store, readiness, log, errc)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.Port)))
	if err != nil {
		stopAdmin(context.Background())
		return fmt.Errorf("PORT: listen on %d: %w", cfg.Port, err)
	}
	public := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	go func() { errc <- public.Serve(ln) }()
	log.Info("web listening", slog.String("addr", ln.Addr().String()), slog.Int("stripe_secrets", len(cfg.StripeWebhookSecrets)))
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	log.Info("web shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	stopAdmin(sctx)
	if err := public.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
