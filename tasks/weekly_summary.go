package tasks

import (
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

var (
	weeklySummarySettings = Settings{
		Queue:     QueueLow,
		MaxRetry:  5,
		Timeout:   30 * time.Minute,
		Retention: 8 * 24 * time.Hour,
	}
	weeklySummaryAccountSettings = Settings{
		Queue:     QueueLow,
		MaxRetry:  8,
		Timeout:   5 * time.Minute,
		Retention: 8 * 24 * time.Hour,
	}
)

// WeeklySummaryPayload: Week ("2026-W47") is the ISO week to report; empty
// means the week before the one containing Slot (or now), in each account's
// time zone. AccountID limits the fan-out to one account.
type WeeklySummaryPayload struct {
	Week      string    `json:"week,omitempty"`
	AccountID int64     `json:"account_id,omitempty"`
	Slot      time.Time `json:"slot,omitempty"`
}

// NewWeeklySummary builds the fan-out task on queue low; a non-zero slot
// makes its TaskID name the slot, and without one it gets a fresh id.
func NewWeeklySummary(p WeeklySummaryPayload) (*asynq.Task, error) {
	p.Slot = p.Slot.UTC()
	return newTask(TypeWeeklySummary, p, weeklySummarySettings, slotID(TypeWeeklySummary, p.Slot)...)
}

// WeeklySummaryAccountPayload names the account and ISO week to report.
type WeeklySummaryAccountPayload struct {
	AccountID int64  `json:"account_id"`
	Week      string `json:"week"`
}

// NewWeeklySummaryAccount builds one account's report task on queue low. Its
// TaskID is "report:weekly_summary_account:<account>:<week>", so a week is
// reported once per account however often the fan-out runs; the
// weekly_reports row keeps that true beyond the retention. Both fields are
// required.
func NewWeeklySummaryAccount(p WeeklySummaryAccountPayload) (*asynq.Task, error) {
	if p.AccountID == 0 || p.Week == "" {
		return nil, errors.New("weekly summary task: account and week are required")
	}
	id := fmt.Sprintf("%s:%d:%s", TypeWeeklySummaryAccount, p.AccountID, p.Week)
	return newTask(TypeWeeklySummaryAccount, p, weeklySummaryAccountSettings, asynq.TaskID(id))
}
