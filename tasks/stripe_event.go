package tasks

import (
	"errors"
	"time"

	"github.com/hibiken/asynq"
)

// TypeStripeEvent applies one recorded Stripe event (a stripe_events row) to
// account state.
const TypeStripeEvent = "stripe:event"

// Stripe event types the worker applies. The web process records and enqueues
// only these; others are acknowledged and dropped.
const (
	EventCustomerCreated         = "customer.created"
	EventSubscriptionCreated     = "customer.subscription.created"
	EventSubscriptionUpdated     = "customer.subscription.updated"
	EventSubscriptionDeleted     = "customer.subscription.deleted"
	EventInvoicePaymentSucceeded = "invoice.payment_succeeded"
	EventInvoicePaymentFailed    = "invoice.payment_failed"
)

// StripeEventTypes lists every Stripe event type the worker applies.
var StripeEventTypes = []string{
	EventCustomerCreated,
	EventSubscriptionCreated,
	EventSubscriptionUpdated,
	EventSubscriptionDeleted,
	EventInvoicePaymentSucceeded,
	EventInvoicePaymentFailed,
}

// ThinEventPrefix starts the type of a thin event about a v1 resource:
// "v1.customer.subscription.updated" is the thin twin of
// customer.subscription.updated.
const ThinEventPrefix = "v1."

// StripeThinEventTypes lists the thin event types the worker applies: "v1."
// and each of StripeEventTypes. The worker fetches the object each names.
var StripeThinEventTypes = func() []string {
	out := make([]string, len(StripeEventTypes))
	for i, t := range StripeEventTypes {
		out[i] = ThinEventPrefix + t
	}
	return out
}()

// StripeEventRetention keeps a processed event's TaskID taken for longer than
// Stripe's 3-day retry window, so a late redelivery is not enqueued again.
const StripeEventRetention = 4 * 24 * time.Hour

// StripeEventMaxRetry bounds the attempts for one event; with the backoff in
// internal/queue that spans many hours before the task is archived.
const StripeEventMaxRetry = 12

var stripeEventSettings = Settings{
	Queue:     QueueCritical,
	MaxRetry:  StripeEventMaxRetry,
	Timeout:   time.Minute,
	Retention: StripeEventRetention,
}

// StripeEventPayload names the inbox row to apply. The event body itself stays
// in PostgreSQL, the system of record.
type StripeEventPayload struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
}

// NewStripeEvent builds the stripe:event task for an inbox row on queue
// critical. Its TaskID is the event id, so however often Stripe delivers the
// event, it is queued once. An empty event id is an error.
func NewStripeEvent(p StripeEventPayload) (*asynq.Task, error) {
	if p.EventID == "" {
		return nil, errors.New("stripe event task: empty event id")
	}
	return newTask(TypeStripeEvent, p, stripeEventSettings, asynq.TaskID(p.EventID))
}
