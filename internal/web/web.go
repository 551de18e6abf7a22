// Package web is CleanTrack's public HTTP surface: the Stripe webhook intake,
// the Resend webhook, and health probes. It verifies, records and enqueues; it
// never sends an email or changes an account itself.
package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
)

// Server holds the web process's dependencies. Build one with its fields set,
// then serve Handler().
type Server struct {
	Store *postgres.Store
	Queue queue.Enqueuer
	// StripeSecrets are the endpoint's signing secrets; a signature made with
	// any of them is accepted (several during rotation).
	StripeSecrets []string
	// StripeTolerance bounds how old, or how far in the future, a signature's
	// timestamp may be.
	StripeTolerance time.Duration
	// Ready reports whether PostgreSQL and Redis answer; /readyz serves it.
	Ready func(ctx context.Context) error
	// Resend, when set, serves POST /webhooks/resend/.
	Resend http.Handler
	Log    *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler routes the public endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	stripe := http.HandlerFunc(s.stripeWebhook)
	mux.Handle("/billing/webhooks/stripe/", stripe)
	mux.Handle("/billing/webhooks/stripe", stripe)
	if s.Resend != nil {
		mux.Handle("/webhooks/resend/", s.Resend)
		mux.Handle("/webhooks/resend", s.Resend)
	}
	mux.HandleFunc("GET /healthz", Healthz)
	mux.Handle("GET /readyz", Readyz(s.Ready))
	return mux
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Healthz answers 200 while the process is up.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readyz answers 200 when ready reports no error within two seconds, and 503
// naming the failing dependency otherwise.
func Readyz(ready func(ctx context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ready == nil {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
