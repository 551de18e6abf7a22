package tasks

import (
	"time"

	"github.com/hibiken/asynq"
)

// TypeStripeReconcile compares every account that has a Stripe customer with
// its subscriptions at Stripe and reports the drift (and, when the worker
// has STRIPE_RECONCILE_FIX=true, applies Stripe's state).
const TypeStripeReconcile = "stripe:reconcile"

var stripeReconcileSettings = Settings{
	Queue:     QueueLow,
	MaxRetry:  2,
	Timeout:   30 * time.Minute,
	Retention: 24 * time.Hour,
}

// StripeReconcilePayload carries the cron slot the run was scheduled for.
type StripeReconcilePayload struct {
	Slot time.Time `json:"slot"`
}

// NewStripeReconcile builds the reconcile task on queue low. With a non-zero
// slot its TaskID names the slot.
func NewStripeReconcile(p StripeReconcilePayload) (*asynq.Task, error) {
	p.Slot = p.Slot.UTC().Truncate(time.Second)
	return newTask(TypeStripeReconcile, p, stripeReconcileSettings, slotID(TypeStripeReconcile, p.Slot)...)
}
