package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// TypeWeeklySummary fans out one TypeWeeklySummaryAccount task per active
// account.
const TypeWeeklySummary = "report:weekly_summary"

// TypeWeeklySummaryAccount computes, records and emails one account's weekly
// compliance summary.
const TypeWeeklySummaryAccount = "report:weekly_summary_account"

// WeeklySummaryPayload: Week ("2026-W47") is the ISO week to report; empty
// means the week before the one containing Slot (or now), in each account's
// time zone. AccountID limits the fan-out to one account.
type WeeklySummaryPayload struct {
	Week      string    `json:"week,omitempty"`
	AccountID int64     `json:"account_id,omitempty"`
	Slot      time.Time `json:"slot,omitempty"`
}

// NewWeeklySummary builds the fan-out task; a non-zero slot makes its TaskID
// name the slot.
func NewWeeklySummary(p WeeklySummaryPayload) (*asynq.Task, []asynq.Option, error) {
	p.Slot = p.Slot.UTC()
	b, err := json.Marshal(p)
	if err != nil {
		return nil, nil, err
	}
	opts := []asynq.Option{
		asynq.Queue(QueueLow),
		asynq.MaxRetry(5),
		asynq.Timeout(30 * time.Minute),
		asynq.Retention(8 * 24 * time.Hour),
	}
	if !p.Slot.IsZero() {
		opts = append(opts, asynq.TaskID(SlotTaskID(TypeWeeklySummary, p.Slot)))
	}
	return asynq.NewTask(TypeWeeklySummary, b), opts, nil
}

// WeeklySummaryAccountPayload names the account and ISO week to report.
type WeeklySummaryAccountPayload struct {
	AccountID int64  `json:"account_id"`
	Week      string `json:"week"`
}

// NewWeeklySummaryAccount builds one account's report task. Its TaskID is
// "report:weekly_summary_account:<account>:<week>", so a week is reported once
// per account however often the fan-out runs; the weekly_reports row keeps
// that true beyond the retention.
func NewWeeklySummaryAccount(accountID int64, week string) (*asynq.Task, []asynq.Option, error) {
	if accountID == 0 || week == "" {
		return nil, nil, errors.New("weekly summary task: account and week are required")
	}
	b, err := json.Marshal(WeeklySummaryAccountPayload{AccountID: accountID, Week: week})
	if err != nil {
		return nil, nil, err
	}
	return asynq.NewTask(TypeWeeklySummaryAccount, b), []asynq.Option{
		asynq.Queue(QueueLow),
		asynq.TaskID(fmt.Sprintf("%s:%d:%s", TypeWeeklySummaryAccount, accountID, week)),
		asynq.MaxRetry(8),
		asynq.Timeout(5 * time.Minute),
		asynq.Retention(8 * 24 * time.Hour),
	}, nil
}
