package tasks

import (
	"time"

	"github.com/hibiken/asynq"
)

// TypeOverdueScan opens an alert (and its emails) for every piece of equipment
// that became overdue, and resolves alerts whose equipment was cleaned.
const TypeOverdueScan = "cleaning:overdue_scan"

var overdueScanSettings = Settings{
	Queue:     QueueLow,
	MaxRetry:  5,
	Timeout:   30 * time.Minute,
	Retention: 24 * time.Hour,
}

// OverdueScanPayload selects the accounts to scan: all when AccountID is 0.
type OverdueScanPayload struct {
	AccountID int64     `json:"account_id,omitempty"`
	Slot      time.Time `json:"slot,omitempty"`
}

// NewOverdueScan builds a scan task on queue low. With a non-zero slot (the
// scheduler's cron time) its TaskID names the slot, so the slot is scanned
// once however many schedulers fire; without one (a manual run) it gets a
// fresh id.
func NewOverdueScan(p OverdueScanPayload) (*asynq.Task, error) {
	p.Slot = p.Slot.UTC()
	return newTask(TypeOverdueScan, p, overdueScanSettings, slotID(TypeOverdueScan, p.Slot)...)
}
