package tasks

import (
	"encoding/json"
	"time"

	"github.com/hibiken/asynq"
)

// TypeInboxRedrive re-enqueues stripe_events rows that are still unprocessed
// and not failed, a minute or more after they arrived: what makes a flushed or
// restarted Redis lose nothing.
const TypeInboxRedrive = "stripe:inbox_redrive"

// InboxRedrivePayload carries the cron slot the sweep was scheduled for.
type InboxRedrivePayload struct {
	Slot time.Time `json:"slot"`
}

// NewInboxRedrive builds the sweep task for one cron slot. Its TaskID names the
// slot, so several schedulers firing the same minute enqueue it once.
func NewInboxRedrive(slot time.Time) (*asynq.Task, []asynq.Option, error) {
	slot = slot.UTC().Truncate(time.Second)
	b, err := json.Marshal(InboxRedrivePayload{Slot: slot})
	if err != nil {
		return nil, nil, err
	}
	return asynq.NewTask(TypeInboxRedrive, b), []asynq.Option{
		asynq.Queue(QueueCritical),
		asynq.TaskID(SlotTaskID(TypeInboxRedrive, slot)),
		asynq.Retention(time.Hour),
		asynq.MaxRetry(2),
		asynq.Timeout(2 * time.Minute),
	}, nil
}

// SlotTaskID is the TaskID of a scheduled task for one cron slot:
// "<type>:<slot in RFC 3339, UTC>".
func SlotTaskID(taskType string, slot time.Time) string {
	return taskType + ":" + slot.UTC().Format(time.RFC3339)
}
