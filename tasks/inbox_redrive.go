package tasks

import (
	"time"

	"github.com/hibiken/asynq"
)

// TypeInboxRedrive re-enqueues stripe_events rows that are still pending (not
// processed, failed, unmatched or dismissed) and whose task Redis lost, a
// minute or more after they arrived: what makes a flushed or restarted Redis
// lose nothing. It also releases unmatched rows whose customer got linked.
const TypeInboxRedrive = "stripe:inbox_redrive"

var inboxRedriveSettings = Settings{
	Queue:     QueueCritical,
	MaxRetry:  2,
	Timeout:   2 * time.Minute,
	Retention: time.Hour,
}

// InboxRedrivePayload carries the cron slot the sweep was scheduled for.
type InboxRedrivePayload struct {
	Slot time.Time `json:"slot"`
}

// NewInboxRedrive builds the sweep task on queue critical. With a non-zero
// slot (the scheduler's cron time, kept to the second) its TaskID names the
// slot, so several schedulers firing the same minute enqueue it once; without
// one (a manual run) it gets a fresh id.
func NewInboxRedrive(p InboxRedrivePayload) (*asynq.Task, error) {
	p.Slot = p.Slot.UTC().Truncate(time.Second)
	return newTask(TypeInboxRedrive, p, inboxRedriveSettings, slotID(TypeInboxRedrive, p.Slot)...)
}
