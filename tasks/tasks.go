// Package tasks is the contract between whoever enqueues work (the web process,
// the scheduler, the CLI, other handlers) and the worker that runs it: task type
// names, JSON payloads, and constructors that return each task with its queue,
// TaskID, retries, timeout and retention attached. Options given at enqueue
// time override the constructor's. It imports Asynq and the standard library
// only.
package tasks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Queue names, highest priority first. The worker weighs them 6:3:1.
const (
	QueueCritical = "critical"
	QueueDefault  = "default"
	QueueLow      = "low"
)

// Settings are the options a task type's constructor attaches.
type Settings struct {
	Queue    string
	MaxRetry int
	Timeout  time.Duration
	// Retention is how long a completed task keeps its TaskID taken, so a
	// second enqueue under the same id within it is a duplicate.
	Retention time.Duration
}

// options returns s as Asynq options, followed by more (a TaskID).
func (s Settings) options(more ...asynq.Option) []asynq.Option {
	return append([]asynq.Option{
		asynq.Queue(s.Queue),
		asynq.MaxRetry(s.MaxRetry),
		asynq.Timeout(s.Timeout),
		asynq.Retention(s.Retention),
	}, more...)
}

// Types holds every task type the worker serves, with the settings its
// constructor attaches. It is read-only: the CLI uses it to refuse unknown
// types, the scheduler to read a type's retention.
var Types = map[string]Settings{
	TypeStripeEvent:          stripeEventSettings,
	TypeInboxRedrive:         inboxRedriveSettings,
	TypeEmailSend:            emailSendSettings,
	TypeEmailBatch:           emailSendSettings,
	TypeOverdueScan:          overdueScanSettings,
	TypeWeeklySummary:        weeklySummarySettings,
	TypeWeeklySummaryAccount: weeklySummaryAccountSettings,
	TypeStripeSync:           stripeSyncSettings,
	TypeStripeReconcile:      stripeReconcileSettings,
}

// Payload decodes t's JSON payload into a T. A payload that does not decode
// never will, so the error names the task type and wraps asynq.SkipRetry:
// a handler returns it as it is and Asynq archives the task at once.
func Payload[T any](t *asynq.Task) (T, error) {
	var p T
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return p, fmt.Errorf("decode %s payload: %w: %w", t.Type(), err, asynq.SkipRetry)
	}
	return p, nil
}

// SlotTaskID is the TaskID of a scheduled task for one cron slot:
// "<type>:<slot in RFC 3339, UTC>".
func SlotTaskID(taskType string, slot time.Time) string {
	return taskType + ":" + slot.UTC().Format(time.RFC3339)
}

// slotID is the TaskID option of a scheduled task's slot, none for a zero slot.
func slotID(taskType string, slot time.Time) []asynq.Option {
	if slot.IsZero() {
		return nil
	}
	return []asynq.Option{asynq.TaskID(SlotTaskID(taskType, slot))}
}

// newTask marshals p and builds a task of type typ with s's options and more.
func newTask(typ string, p any, s Settings, more ...asynq.Option) (*asynq.Task, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("%s task: %w", typ, err)
	}
	return asynq.NewTask(typ, b, s.options(more...)...), nil
}
