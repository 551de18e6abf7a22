package tasks

import (
	"time"

	"github.com/hibiken/asynq"
)

// TypeStripeSync catches up on Stripe events the webhook never delivered:
// it lists GET /v1/events from where the last complete run got (less an
// hour) and records the missing ones through the webhook's intake.
const TypeStripeSync = "stripe:sync"

var stripeSyncSettings = Settings{
	Queue:     QueueDefault,
	MaxRetry:  3,
	Timeout:   15 * time.Minute,
	Retention: time.Hour,
}

// StripeSyncPayload carries the cron slot the sync was scheduled for.
type StripeSyncPayload struct {
	Slot time.Time `json:"slot"`
}

// NewStripeSync builds the catch-up task on queue default. With a non-zero
// slot its TaskID names the slot, so several schedulers enqueue it once.
func NewStripeSync(p StripeSyncPayload) (*asynq.Task, error) {
	p.Slot = p.Slot.UTC().Truncate(time.Second)
	return newTask(TypeStripeSync, p, stripeSyncSettings, slotID(TypeStripeSync, p.Slot)...)
}
