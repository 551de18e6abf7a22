package main

import (
	"context"
	"log/slog"

	"github.com/cleantrack/jobs/internal/admin"
	"github.com/cleantrack/jobs/internal/config"
	"github.com/cleantrack/jobs/internal/metrics"
)

// startMetrics serves /metrics (cleantrack_scheduler_enqueues_total, plus Go and process
// series), /healthz and /readyz on SCHEDULER_METRICS_ADDR, with the admin listener's rules:
// basic auth from ADMIN_USER/ADMIN_PASSWORD, and no public address without
// them. It fails at once when the address is taken or refused. A later serve
// error is sent on errc. stop shuts the listener down gracefully, waiting at
// most until its context is done; the listener also stops when ctx is done.
func startMetrics(ctx context.Context, cfg config.Config, ready admin.ReadyFunc, log *slog.Logger, errc chan<- error) (stop func(context.Context), err error) {
	sc := admin.ServerConfig{Name: "SCHEDULER_METRICS_ADDR", Addr: cfg.SchedulerMetricsAddr, User: cfg.AdminUser, Password: cfg.AdminPassword}
	srv, err := admin.Start(ctx, sc, admin.MetricsHandler(metrics.Registry, ready, log), log)
	if err != nil {
		return nil, err
	}
	srv.Forward(errc)
	return func(sctx context.Context) {
		if err := srv.Stop(sctx); err != nil {
			log.Warn("metrics listener shutdown", slog.String("listener", sc.Name), slog.String("error", err.Error()))
		}
	}, nil
}
