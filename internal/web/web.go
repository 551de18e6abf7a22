// Package web is CleanTrack's public HTTP surface: the Stripe webhook intake,
// the Resend webhook, and health probes. It verifies, records and enqueues; it
// never sends an email or changes an account itself.
package web

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/cleantrack/jobs/internal/health"
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
	// Ready reports whether PostgreSQL and Redis answer; /readyz serves it
	// (health.Ready: the reason is logged, never shown).
	Ready health.Check
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
	mux.HandleFunc("GET /healthz", health.Live)
	mux.Handle("GET /readyz", health.Ready(s.Ready, s.Log))
	return mux
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
