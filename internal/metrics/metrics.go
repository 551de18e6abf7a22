// Package metrics defines CleanTrack's Prometheus series, in one registry per
// process, so every name is declared once and documented in one place.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registry holds every CleanTrack series plus the Go runtime and process
// collectors. Each process serves it on its metrics endpoint.
var Registry = prometheus.NewRegistry()

// Webhook outcomes, the values of the "outcome" label of WebhooksReceived.
const (
	OutcomeAccepted    = "accepted"
	OutcomeDuplicate   = "duplicate"
	OutcomeIgnored     = "ignored"
	OutcomeRejected    = "rejected"
	OutcomeUnavailable = "unavailable"
)

var (
	// WebhooksReceived counts webhook requests by event type and outcome.
	// The type is one the provider's intake handles, "other" for any other
	// verified type, or "unknown" when no type could be read: senders cannot
	// create series.
	WebhooksReceived = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cleantrack_webhooks_received_total",
		Help: "Webhook requests by provider, event type and outcome (accepted, duplicate, ignored, rejected, unavailable).",
	}, []string{"provider", "type", "outcome"})

	// WebhookDuration is the intake latency of the webhook endpoints.
	WebhookDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cleantrack_webhook_duration_seconds",
		Help:    "Time to verify, record and enqueue a webhook and answer.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"provider"})

	// EmailsTotal counts email:send outcomes: sent, outbox, failed,
	// suppressed, rate_limited, retried.
	EmailsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cleantrack_emails_total",
		Help: "Email send attempts by template and outcome (sent, outbox, failed, suppressed, rate_limited, retried).",
	}, []string{"template", "outcome"})

	// StripeSyncEvents counts what the catch-up from the List Events API did
	// with each listed event: listed, already_in_inbox, recorded, refused.
	StripeSyncEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cleantrack_stripe_sync_events_total",
		Help: "Events the Stripe catch-up listed, by outcome (listed, already_in_inbox, recorded, refused).",
	}, []string{"outcome"})

	// BillingDriftAccounts is how many accounts disagreed with Stripe after
	// the last scheduled reconcile (after its fixes, when it fixes).
	BillingDriftAccounts = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cleantrack_billing_drift_accounts",
		Help: "Accounts whose billing state differs from their subscription at Stripe, as the last scheduled reconcile left them.",
	})

	// SchedulerEnqueues counts scheduler firings by entry and outcome
	// (enqueued, already_enqueued, error).
	SchedulerEnqueues = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cleantrack_scheduler_enqueues_total",
		Help: "Scheduler firings by entry and outcome (enqueued, already_enqueued, error).",
	}, []string{"entry", "outcome"})
)

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		WebhooksReceived, WebhookDuration, EmailsTotal, SchedulerEnqueues,
		StripeSyncEvents, BillingDriftAccounts,
	)
}
