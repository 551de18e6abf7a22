package tasks

import (
	"encoding/json"
	"time"

	"github.com/hibiken/asynq"
)

// TypeOverdueScan opens an alert (and its emails) for every piece of equipment
// that became overdue, and resolves alerts whose equipment was cleaned.
const TypeOverdueScan = "cleaning:overdue_scan"

// OverdueScanPayload selects the accounts to scan: all when AccountID is 0.
type OverdueScanPayload struct {
	AccountID int64     `json:"account_id,omitempty"`
	Slot      time.Time `json:"slot,omitempty"`
}

// NewOverdueScan builds a scan task. With a non-zero slot (the scheduler's
// cron time) its TaskID names the slot, so the slot is scanned once however
// many schedulers fire; without one (a manual run) it gets a fresh id.
func NewOverdueScan(accountID int64, slot time.Time) (*asynq.Task, []asynq.Option, error) {
	b, err := json.Marshal(OverdueScanPayload{AccountID: accountID, Slot: slot.UTC()})
	if err != nil {
		return nil, nil, err
	}
	opts := []asynq.Option{
		asynq.Queue(QueueLow),
		asynq.MaxRetry(5),
		asynq.Timeout(30 * time.Minute),
		asynq.Retention(24 * time.Hour),
	}
	if !slot.IsZero() {
		opts = append(opts, asynq.TaskID(SlotTaskID(TypeOverdueScan, slot)))
	}
	return asynq.NewTask(TypeOverdueScan, b), opts, nil
}
