package email

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cleantrack/jobs/internal/address"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

// ErrUndeliverable is wrapped by the Service's errors for an email whose
// address cannot be sent to. Its delivery row was recorded failed with the
// reason, so the caller goes on with the other recipients.
var ErrUndeliverable = errors.New("undeliverable address")

// MaxBatch is the most emails one Resend batch call takes.
const MaxBatch = 100

// Service is the email API the rest of CleanTrack calls. It only enqueues
// (email:send for one email, email:batch for a fan-out's) and records in the
// store what the worker needs; the worker's Sender renders and sends. So any
// process or handler may use it, and it never sends inline.
type Service struct {
	enq   queue.Enqueuer
	store *postgres.Store
}

// NewService returns a Service that enqueues through enq (an *asynq.Client)
// and stages batches and refused addresses in store.
func NewService(enq queue.Enqueuer, store *postgres.Store) *Service {
	return &Service{enq: enq, store: store}
}

// SendTemplateEmail records the email in email_deliveries (queued, with its
// data; a row that exists under key is kept as it is), then enqueues
// template rendered with data for to, under the idempotency key key, and
// returns the task id (which is key). The key must be stable for the logical
// email: a second call with the same key while the first is queued or within
// a day of it is not an error and enqueues nothing, and the email_deliveries
// row makes sure the email is never sent twice. Should Redis lose the task,
// RedriveEmails enqueues it again from the row.
// data must be the template's data struct; it is validated when the worker
// renders it. An address that address.Check refuses is recorded as a failed
// delivery with the reason, and the error wraps ErrUndeliverable.
func (s *Service) SendTemplateEmail(ctx context.Context, to, template string, data any, key string) (taskID string, err error) {
	if _, ok := dataTypes[template]; !ok {
		return "", fmt.Errorf("send %s: %w", template, ErrUnknownTemplate)
	}
	if err := address.Check(to); err != nil {
		if rerr := s.store.RecordUndeliverable(ctx, key, template, to, err.Error()); rerr != nil {
			return "", rerr
		}
		return "", fmt.Errorf("send %s %s: %w: %w", template, key, ErrUndeliverable, err)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return "", fmt.Errorf("send %s: encode data: %w", template, err)
	}
	task, err := tasks.NewEmailSend(tasks.EmailSendPayload{Key: key, Template: template, To: to, Data: raw})
	if err != nil {
		return "", err
	}
	// The row first: should Redis lose the task, RedriveEmails enqueues it
	// again from the row.
	if err := s.store.RecordEmailDelivery(ctx, key, template, to, raw); err != nil {
		return "", err
	}
	if _, _, err := queue.Enqueue(ctx, s.enq, task); err != nil {
		return "", fmt.Errorf("send %s %s: %w", template, key, err)
	}
	return key, nil
}

// Item is one email of a fan-out: its recipient, its idempotency key and the
// template's data struct.
type Item struct {
	To   string
	Key  string
	Data any
}

// BatchResult counts what SendBatch did.
type BatchResult struct {
	Batches int // email:batch tasks enqueued (or already queued)
	Refused int // emails recorded failed for their address
}

// SendBatch stages the emails of one template for Resend's batch API and
// enqueues their email:batch tasks. Emails whose key has a row already (sent,
// or staged by an earlier call) join no new batch; the new ones are grouped
// by MaxBatch in the order given; an address that address.Check refuses gets
// its own failed row with the reason and does not stop the others. It is
// idempotent: calling it again with the same items enqueues the same batches
// under the same TaskIDs, which are duplicates. The worker's Sender sends
// each batch once (see Sender.DeliverBatch).
func (s *Service) SendBatch(ctx context.Context, template string, items []Item) (BatchResult, error) {
	var r BatchResult
	if _, ok := dataTypes[template]; !ok {
		return r, fmt.Errorf("send batch of %s: %w", template, ErrUnknownTemplate)
	}
	if len(items) == 0 {
		return r, nil
	}
	staged := make([]postgres.StagedEmail, 0, len(items))
	for _, it := range items {
		if it.Key == "" || len(it.Key) > tasks.MaxEmailKeyLen {
			return r, fmt.Errorf("send batch of %s: idempotency key of %d bytes, not 1 to %d", template, len(it.Key), tasks.MaxEmailKeyLen)
		}
		raw, err := json.Marshal(it.Data)
		if err != nil {
			return r, fmt.Errorf("send batch of %s: encode data of %s: %w", template, it.Key, err)
		}
		e := postgres.StagedEmail{Key: it.Key, To: it.To, Data: raw}
		if err := address.Check(it.To); err != nil {
			e.Refused = err.Error()
			r.Refused++
		}
		staged = append(staged, e)
	}
	refs, err := s.store.StageEmails(ctx, template, staged, MaxBatch)
	if err != nil {
		return r, err
	}
	for _, ref := range refs {
		task, err := tasks.NewEmailBatch(tasks.EmailBatchPayload{BatchID: ref.ID, Key: ref.TaskKey})
		if err != nil {
			return r, err
		}
		if _, _, err := queue.Enqueue(ctx, s.enq, task); err != nil {
			return r, fmt.Errorf("enqueue email batch %s: %w", ref.TaskKey, err)
		}
		r.Batches++
	}
	return r, nil
}

// redrivePage is how many queued batches RedriveBatches looks at per call.
const redrivePage = 1000

// RedriveBatches enqueues again the email:batch task of each batch still
// queued that was staged more than minAge ago (up to 1,000, oldest first),
// so a batch whose task Redis lost is sent after all: PostgreSQL is the
// truth. A task still queued, running or retrying is a duplicate and left
// alone. It returns how many tasks were enqueued anew. The overdue scan's
// handler calls it after each scan.
func (s *Service) RedriveBatches(ctx context.Context, minAge time.Duration) (int, error) {
	refs, err := s.store.QueuedEmailBatches(ctx, time.Now().Add(-minAge), redrivePage)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ref := range refs {
		task, err := tasks.NewEmailBatch(tasks.EmailBatchPayload{BatchID: ref.ID, Key: ref.TaskKey})
		if err != nil {
			return n, err
		}
		_, dup, err := queue.Enqueue(ctx, s.enq, task)
		if err != nil {
			return n, fmt.Errorf("re-drive email batch %s: %w", ref.TaskKey, err)
		}
		if !dup {
			n++
		}
	}
	return n, nil
}

// Re-drive bounds for single emails: rows per query, queries per call.
const (
	emailRedrivePage  = 500
	emailRedrivePages = 10
)

// RedriveResult counts what one RedriveEmails call did.
type RedriveResult struct {
	Enqueued int // tasks enqueued anew: Redis had lost them
	Present  int // tasks still queued, running, retrying or kept as done
	// Legacy counts rows recorded before single emails kept their data:
	// their task cannot be rebuilt, so they are left as they are.
	Legacy int
}

// RedriveEmails enqueues again, from its email_deliveries row, each single
// email (not staged in a batch) still queued that was recorded more than
// minAge ago, so an email:send task that Redis lost is sent after all:
// PostgreSQL is the truth. The task keeps its TaskID (the key), so a task
// Redis still holds is a duplicate, counted Present and left alone; a row
// sent, failed or suppressed is never touched. It reads at most 5,000 rows
// per call, 500 per query, oldest first. The overdue scan's handler calls it
// after each scan, next to RedriveBatches.
func (s *Service) RedriveEmails(ctx context.Context, minAge time.Duration) (RedriveResult, error) {
	var r RedriveResult
	before := time.Now().Add(-minAge)
	var after int64
	for range emailRedrivePages {
		page, err := s.store.QueuedEmails(ctx, before, after, emailRedrivePage)
		if err != nil {
			return r, err
		}
		for _, q := range page {
			after = q.ID
			if !q.Data.Valid {
				r.Legacy++
				continue
			}
			task, err := tasks.NewEmailSend(tasks.EmailSendPayload{
				Key: q.Key, Template: q.Template, To: q.To, Data: json.RawMessage(q.Data.String),
			})
			if err != nil {
				return r, fmt.Errorf("re-drive email %s: %w", q.Key, err)
			}
			_, dup, err := queue.Enqueue(ctx, s.enq, task)
			if err != nil {
				return r, fmt.Errorf("re-drive email %s: %w", q.Key, err)
			}
			if dup {
				r.Present++
			} else {
				r.Enqueued++
			}
		}
		if len(page) < emailRedrivePage {
			break
		}
	}
	return r, nil
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
