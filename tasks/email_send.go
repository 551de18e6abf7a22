package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// TypeEmailSend renders one logical email and delivers it through Resend (or
// the dev outbox), at most once per idempotency key.
const TypeEmailSend = "email:send"

// MaxEmailKeyLen is the longest idempotency key Resend accepts.
const MaxEmailKeyLen = 256

// EmailSendPayload is one logical email. Key is stable for that email (for
// example "welcome/sub_123" or "payment_failed/in_42/2/owner@example.com"):
// it is the task's TaskID, Resend's Idempotency-Key and the
// email_deliveries.idempotency_key, so however often the email is requested
// it is sent once. Data is the template's data struct as JSON.
type EmailSendPayload struct {
	Key      string          `json:"key"`
	Template string          `json:"template"`
	To       string          `json:"to"`
	Data     json.RawMessage `json:"data"`
}

// Email send task settings. Retries stay well inside the 24 hours Resend keeps
// an idempotency key: 12 retries of capped exponential backoff take about
// five hours. Rate-limited attempts do not count against them.
var emailSendSettings = Settings{
	Queue:     QueueDefault,
	MaxRetry:  12,
	Timeout:   2 * time.Minute,
	Retention: 24 * time.Hour,
}

// NewEmailSend builds the email:send task on queue default with TaskID = the
// payload's key, so a second request for the same logical email while the
// first is queued, retrying, archived or done within a day is a duplicate.
// Key (at most MaxEmailKeyLen bytes), Template and To are required; empty
// Data becomes {}.
func NewEmailSend(p EmailSendPayload) (*asynq.Task, error) {
	switch {
	case p.Key == "":
		return nil, errors.New("email send task: idempotency key is required")
	case len(p.Key) > MaxEmailKeyLen:
		return nil, fmt.Errorf("email send task: idempotency key is %d bytes, longer than %d", len(p.Key), MaxEmailKeyLen)
	case p.Template == "":
		return nil, errors.New("email send task: template is required")
	case p.To == "":
		return nil, errors.New("email send task: recipient is required")
	}
	if len(p.Data) == 0 {
		p.Data = json.RawMessage("{}")
	}
	return newTask(TypeEmailSend, p, emailSendSettings, asynq.TaskID(p.Key))
}
