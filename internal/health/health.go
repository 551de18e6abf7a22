// Package health serves the probes every CleanTrack process answers: /healthz
// (the process is up) and /readyz (its dependencies answer). One policy holds
// for all of them, public listener or admin: probes are served without
// authentication, so the caller learns only the status and the reason goes to
// the log.
package health

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// Timeout bounds one readiness check, so a hung dependency makes /readyz fail
// rather than hang the prober.
const Timeout = 3 * time.Second

// Check reports whether a process can do its work: nil when its dependencies
// (PostgreSQL, Redis) answer, else an error naming the one that does not.
type Check func(ctx context.Context) error

// Live answers 200 "ok" while the process is up.
func Live(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// Ready returns the /readyz handler: 200 "ready" when check returns nil
// within Timeout, 503 "not ready" otherwise. The error is logged on log at
// warn level and never written to the caller. A nil check is always ready; a
// nil log discards.
func Ready(check Check, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if check != nil {
			ctx, cancel := context.WithTimeout(r.Context(), Timeout)
			defer cancel()
			if err := check(ctx); err != nil {
				log.LogAttrs(r.Context(), slog.LevelWarn, "not ready", slog.String("error", err.Error()))
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
}
