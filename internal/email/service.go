package email

import (
	"context"
	"encoding/json"
	"fmt"
	"net/mail"

	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

// Service is the email API the rest of CleanTrack calls. It only enqueues
// email:send tasks (the worker's Sender renders and sends), so any process or
// handler may use it, and it never sends inline.
type Service struct {
	enq queue.Enqueuer
}

// NewService returns a Service that enqueues through enq (an *asynq.Client).
func NewService(enq queue.Enqueuer) *Service { return &Service{enq: enq} }

// SendTemplateEmail enqueues template rendered with data for to, under the
// idempotency key key, and returns the task id (which is key). The key must
// be stable for the logical email: a second call with the same key while the
// first is queued or within a day of it is not an error and enqueues nothing,
// and the email_deliveries row makes sure the email is never sent twice.
// data must be the template's data struct; it is validated when the worker
// renders it.
func (s *Service) SendTemplateEmail(ctx context.Context, to, template string, data any, key string) (taskID string, err error) {
	if _, ok := dataTypes[template]; !ok {
		return "", fmt.Errorf("send %s: %w", template, ErrUnknownTemplate)
	}
	addr, err := mail.ParseAddress(to)
	if err != nil {
		return "", fmt.Errorf("send %s to %q: not an email address", template, to)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return "", fmt.Errorf("send %s: encode data: %w", template, err)
	}
	task, err := tasks.NewEmailSend(tasks.EmailSendPayload{Key: key, Template: template, To: addr.Address, Data: raw})
	if err != nil {
		return "", err
	}
	if _, _, err := queue.Enqueue(ctx, s.enq, task); err != nil {
		return "", fmt.Errorf("send %s %s: %w", template, key, err)
	}
	return key, nil
}

// SendWelcomeEmail enqueues the welcome email. Billing uses the key
// "welcome/<subscription id>".
func (s *Service) SendWelcomeEmail(ctx context.Context, to string, data WelcomeData, key string) (taskID string, err error) {
	return s.SendTemplateEmail(ctx, to, TemplateWelcome, data, key)
}

// SendOverdueAlertEmail enqueues an overdue-cleaning alert for one recipient;
// key must name the alert and the recipient.
func (s *Service) SendOverdueAlertEmail(ctx context.Context, to string, data OverdueAlertData, key string) (taskID string, err error) {
	return s.SendTemplateEmail(ctx, to, TemplateOverdueAlert, data, key)
}

// SendPaymentFailedEmail enqueues the payment-failed email for one recipient;
// key must name the invoice, the attempt and the recipient.
func (s *Service) SendPaymentFailedEmail(ctx context.Context, to string, data PaymentFailedData, key string) (taskID string, err error) {
	return s.SendTemplateEmail(ctx, to, TemplatePaymentFailed, data, key)
}

// SendWeeklyComplianceSummary enqueues one recipient's weekly summary; key
// must name the account, the week and the recipient.
func (s *Service) SendWeeklyComplianceSummary(ctx context.Context, to string, data WeeklySummaryData, key string) (taskID string, err error) {
	return s.SendTemplateEmail(ctx, to, TemplateWeeklySummary, data, key)
}
