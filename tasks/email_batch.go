package tasks

import (
	"errors"

	"github.com/hibiken/asynq"
)

// TypeEmailBatch sends one batch of a fan-out's emails (weekly summaries, a
// scan's overdue alerts) through Resend's batch API, at most once per email.
const TypeEmailBatch = "email:batch"

// EmailBatchPayload names a batch staged in PostgreSQL (email_batches): its
// members, their data and, once frozen, its Idempotency-Key live there, so a
// retry rebuilds the same request.
type EmailBatchPayload struct {
	BatchID int64  `json:"batch_id"`
	Key     string `json:"key"`
}

// NewEmailBatch builds the email:batch task on queue default with TaskID =
// the batch's key (postgres.BatchTaskKey), so staging the same batch again
// while it is queued, retrying, archived or done within a day is a
// duplicate. It has the retries of email:send. Both fields are required.
func NewEmailBatch(p EmailBatchPayload) (*asynq.Task, error) {
	if p.BatchID == 0 || p.Key == "" {
		return nil, errors.New("email batch task: batch id and key are required")
	}
	return newTask(TypeEmailBatch, p, emailSendSettings, asynq.TaskID(p.Key))
}
