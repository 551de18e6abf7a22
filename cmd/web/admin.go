package main

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/admin"
	"github.com/cleantrack/jobs/internal/config"
	"github.com/cleantrack/jobs/internal/health"
	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/scheduler"
)

// startAdmin starts the admin listener on ADMIN_ADDR: a landing page at /,
// the Asynqmon dashboard at /monitoring/, the Schedules page, /metrics (CleanTrack's series and the Asynq queue gauges),
// /healthz and /readyz, behind ADMIN_USER/ADMIN_PASSWORD, answering only to
// ADMIN_ALLOWED_HOSTS and taking changes only from its own pages (see
// admin.Protect). It fails at once
// when the address is taken, or is public while no credentials are set. A
// later serve error is sent on errc. stop shuts the listener down, waiting at
// most until its context is done, and closes the dashboard's Redis
// connections; the listener also stops when ctx is done.
func startAdmin(ctx context.Context, cfg config.Config, redisOpt asynq.RedisConnOpt, store *postgres.Store, ready health.Check, log *slog.Logger, errc chan<- error) (stop func(context.Context), err error) {
	sc := admin.ServerConfig{
		Name: "ADMIN_ADDR", Addr: cfg.AdminAddr, User: cfg.AdminUser, Password: cfg.AdminPassword,
		AllowedHosts: cfg.AdminHosts(),
	}
	if err := admin.CheckBind(sc); err != nil {
		return nil, err
	}
	if host, _, _ := net.SplitHostPort(cfg.AdminAddr); len(cfg.AdminAllowedHosts) == 0 && (host == "" || net.ParseIP(host).IsUnspecified()) {
		log.Warn("ADMIN_ADDR listens on every interface and ADMIN_ALLOWED_HOSTS is not set: only requests to localhost and 127.0.0.1 are answered; list the names and addresses people use to reach it in ADMIN_ALLOWED_HOSTS",
			slog.String("admin_addr", cfg.AdminAddr))
	}
	h := admin.NewHandler(admin.Options{
		RedisOpt:      redisOpt,
		ReadOnly:      cfg.AdminReadOnly,
		PrometheusURL: cfg.PrometheusURL,
		Gatherer:      metrics.Registry,
		Ready:         ready,
		Log:           log,
		Schedules:     schedules(cfg, store),
	})
	srv, err := admin.Start(ctx, sc, h, log)
	if err != nil {
		_ = h.Close()
		return nil, err
	}
	srv.Forward(errc)
	return func(sctx context.Context) {
		if err := srv.Stop(sctx); err != nil {
			log.Warn("admin listener shutdown", slog.String("error", err.Error()))
		}
		_ = h.Close()
	}, nil
}

// schedules reads what the schedulers recorded for the Schedules page; with
// none live, the page shows what this process's configuration would run.
func schedules(cfg config.Config, store *postgres.Store) admin.StatusFunc {
	entries := scheduler.Entries(scheduler.Specs{
		InboxRedrive:  cfg.InboxRedriveCron,
		OverdueScan:   cfg.OverdueScanCron,
		WeeklySummary: cfg.WeeklySummaryCron,
	})
	return func(ctx context.Context) (scheduler.Status, error) {
		return scheduler.ReadStatus(ctx, store, entries, cfg.SchedulerTimezone, time.Now())
	}
}
