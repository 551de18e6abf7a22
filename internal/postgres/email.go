package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Email delivery statuses, the values of email_deliveries.status.
const (
	EmailQueued     = "queued"
	EmailSent       = "sent"
	EmailFailed     = "failed"
	EmailSuppressed = "suppressed"
	EmailOutbox     = "outbox"
)

// EmailDelivery is one logical email, keyed by its idempotency key.
type EmailDelivery struct {
	ID                int64          `db:"id"`
	IdempotencyKey    string         `db:"idempotency_key"`
	Template          string         `db:"template"`
	ToEmail           string         `db:"to_email"`
	Subject           string         `db:"subject"`
	Status            string         `db:"status"`
	ProviderMessageID sql.NullString `db:"provider_message_id"`
	Attempts          int            `db:"attempts"`
	LastError         sql.NullString `db:"last_error"`
	CreatedAt         time.Time      `db:"created_at"`
	SentAt            sql.NullTime   `db:"sent_at"`
}

// Done reports whether the email has reached a status that must never be
// sent again: sent, written to the outbox, or suppressed.
func (d EmailDelivery) Done() bool {
	switch d.Status {
	case EmailSent, EmailOutbox, EmailSuppressed:
		return true
	}
	return false
}

const emailDeliveryColumns = `id, idempotency_key, template, to_email, subject, status,
	provider_message_id, attempts, last_error, created_at, sent_at`

// StartEmailDelivery returns the delivery row for key, creating it as queued
// with template and to when it does not exist yet. An existing row is returned
// as it is, whatever its status, so the caller can tell an email already sent.
func (s *Store) StartEmailDelivery(ctx context.Context, key, template, to string) (EmailDelivery, error) {
	// The no-op update makes RETURNING yield the existing row on conflict.
	const q = `
		INSERT INTO email_deliveries (idempotency_key, template, to_email)
		VALUES ($1, $2, $3)
		ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key
		RETURNING ` + emailDeliveryColumns
	var d EmailDelivery
	if err := s.DB.GetContext(ctx, &d, q, key, template, to); err != nil {
		return EmailDelivery{}, fmt.Errorf("start email delivery %s: %w", key, err)
	}
	return d, nil
}

// RecordEmailDelivery records a single email as queued before its email:send
// task is enqueued, with the template's data (JSON), so the email can be
// enqueued again from its row when Redis loses the task. A row that exists
// under key is left as it is, whatever its status.
func (s *Store) RecordEmailDelivery(ctx context.Context, key, template, to string, data []byte) error {
	const q = `
		INSERT INTO email_deliveries (idempotency_key, template, to_email, data)
		VALUES ($1, $2, $3, $4::jsonb)
		ON CONFLICT (idempotency_key) DO NOTHING`
	if _, err := s.DB.ExecContext(ctx, q, key, template, to, string(data)); err != nil {
		return fmt.Errorf("record email delivery %s: %w", key, err)
	}
	return nil
}

// QueuedEmail is a single email still queued, as QueuedEmails returns it.
// Data is NULL for a row recorded before single emails kept their data.
type QueuedEmail struct {
	ID       int64          `db:"id"`
	Key      string         `db:"idempotency_key"`
	Template string         `db:"template"`
	To       string         `db:"to_email"`
	Data     sql.NullString `db:"data"`
}

// QueuedEmails returns up to limit single emails (not staged in a batch)
// still queued that were recorded before before, with ids above afterID, in
// id order: those whose email:send task Redis may have lost. Callers page
// with the last id returned.
func (s *Store) QueuedEmails(ctx context.Context, before time.Time, afterID int64, limit int) ([]QueuedEmail, error) {
	const q = `
		SELECT id, idempotency_key, template, to_email, data::text AS data
		FROM email_deliveries
		WHERE status = 'queued' AND batch_id IS NULL AND created_at < $1 AND id > $2
		ORDER BY id
		LIMIT $3`
	var out []QueuedEmail
	if err := s.DB.SelectContext(ctx, &out, q, before, afterID, limit); err != nil {
		return nil, fmt.Errorf("queued emails: %w", err)
	}
	return out, nil
}

// EmailDeliveryByKey returns the delivery row for key, or ErrNotFound.
func (s *Store) EmailDeliveryByKey(ctx context.Context, key string) (EmailDelivery, error) {
	const q = `SELECT ` + emailDeliveryColumns + ` FROM email_deliveries WHERE idempotency_key = $1`
	var d EmailDelivery
	if err := s.DB.GetContext(ctx, &d, q, key); err != nil {
		return EmailDelivery{}, fmt.Errorf("email delivery %s: %w", key, notFound(err))
	}
	return d, nil
}

// MarkEmailSent records a successful provider call: status sent, the
// provider's message id, one more attempt.
func (s *Store) MarkEmailSent(ctx context.Context, id int64, subject, messageID string) error {
	const q = `
		UPDATE email_deliveries
		SET status = 'sent', subject = $2, provider_message_id = $3,
		    attempts = attempts + 1, sent_at = now()
		WHERE id = $1`
	if _, err := s.DB.ExecContext(ctx, q, id, subject, messageID); err != nil {
		return fmt.Errorf("mark email sent %d: %w", id, err)
	}
	return nil
}

// MarkEmailOutbox records an email written to the dev outbox instead of sent.
func (s *Store) MarkEmailOutbox(ctx context.Context, id int64, subject string) error {
	const q = `
		UPDATE email_deliveries
		SET status = 'outbox', subject = $2, attempts = attempts + 1, sent_at = now()
		WHERE id = $1 AND status NOT IN ('sent', 'suppressed')`
	if _, err := s.DB.ExecContext(ctx, q, id, subject); err != nil {
		return fmt.Errorf("mark email outbox %d: %w", id, err)
	}
	return nil
}

// MarkEmailSuppressed records that the recipient is on the suppression list,
// so nothing was sent; reason says why the address is suppressed.
func (s *Store) MarkEmailSuppressed(ctx context.Context, id int64, subject, reason string) error {
	const q = `
		UPDATE email_deliveries
		SET status = 'suppressed', subject = $2, last_error = $3
		WHERE id = $1 AND status IN ('queued', 'failed')`
	if _, err := s.DB.ExecContext(ctx, q, id, subject, reason); err != nil {
		return fmt.Errorf("mark email suppressed %d: %w", id, err)
	}
	return nil
}

// RecordEmailAttempt counts one failed attempt and keeps its error. When final
// is true (a permanent error, or the last retry) the row becomes failed. A row
// already sent, in the outbox or suppressed is left alone: a late failure of a
// concurrent duplicate must not hide a delivered email.
func (s *Store) RecordEmailAttempt(ctx context.Context, id int64, subject, lastError string, final bool) error {
	const q = `
		UPDATE email_deliveries
		SET attempts = attempts + 1, last_error = $2,
		    subject = CASE WHEN $3 = '' THEN subject ELSE $3 END,
		    status = CASE WHEN $4 THEN 'failed' ELSE status END
		WHERE id = $1 AND status IN ('queued', 'failed')`
	_, err := s.DB.ExecContext(ctx, q, id, lastError, subject, final)
	if err != nil {
		return fmt.Errorf("record email attempt %d: %w", id, err)
	}
	return nil
}

// MarkEmailFailed sets a row failed with reason without counting an attempt;
// the worker uses it when a task is archived by a rate limit on its last try.
func (s *Store) MarkEmailFailed(ctx context.Context, id int64, reason string) error {
	const q = `
		UPDATE email_deliveries SET status = 'failed', last_error = $2
		WHERE id = $1 AND status IN ('queued', 'failed')`
	if _, err := s.DB.ExecContext(ctx, q, id, reason); err != nil {
		return fmt.Errorf("mark email failed %d: %w", id, err)
	}
	return nil
}

// EmailSuppression is one address CleanTrack must not send to.
type EmailSuppression struct {
	Email     string    `db:"email"`
	Reason    string    `db:"reason"`
	CreatedAt time.Time `db:"created_at"`
}

// EmailSuppressionFor returns the suppression of email (compared without case),
// or ErrNotFound when the address may be sent to.
func (s *Store) EmailSuppressionFor(ctx context.Context, email string) (EmailSuppression, error) {
	const q = `SELECT email, reason, created_at FROM email_suppressions WHERE email = $1`
	var sup EmailSuppression
	if err := s.DB.GetContext(ctx, &sup, q, email); err != nil {
		// The address stays out of the error: the worker logs it.
		return EmailSuppression{}, fmt.Errorf("email suppression: %w", notFound(err))
	}
	return sup, nil
}

// SuppressEmail adds email to the suppression list. An address already there
// keeps its first reason.
func (s *Store) SuppressEmail(ctx context.Context, email, reason string) error {
	const q = `INSERT INTO email_suppressions (email, reason) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING`
	if _, err := s.DB.ExecContext(ctx, q, email, reason); err != nil {
		return fmt.Errorf("suppress %s: %w", email, err)
	}
	return nil
}

// UnsuppressEmail removes email from the suppression list and reports whether
// it was there.
func (s *Store) UnsuppressEmail(ctx context.Context, email string) (removed bool, err error) {
	const q = `DELETE FROM email_suppressions WHERE email = $1`
	res, err := s.DB.ExecContext(ctx, q, email)
	if err != nil {
		return false, fmt.Errorf("unsuppress %s: %w", email, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("unsuppress %s: %w", email, err)
	}
	return n > 0, nil
}

// WelcomeContext is what the welcome email needs to know about an account and
// its owner.
type WelcomeContext struct {
	AccountName         string       `db:"account_name"`
	Timezone            string       `db:"timezone"`
	PlanName            string       `db:"plan_name"`
	MaxLocations        int          `db:"max_locations"`
	MaxUsers            int          `db:"max_users"`
	SubscriptionEndDate sql.NullTime `db:"subscription_end_date"`
	OwnerEmail          string       `db:"owner_email"`
	OwnerFirstName      string       `db:"owner_first_name"`
	OwnerLastName       string       `db:"owner_last_name"`
}

// WelcomeContext returns the account's name, time zone, plan limits, end date
// and owner, or ErrNotFound.
func (s *Store) WelcomeContext(ctx context.Context, accountID int64) (WelcomeContext, error) {
	const q = `
		SELECT a.name AS account_name, a.timezone, p.name AS plan_name,
		       p.max_locations, p.max_users, a.subscription_end_date,
		       u.email AS owner_email, u.first_name AS owner_first_name, u.last_name AS owner_last_name
		FROM accounts a
		JOIN plans p ON p.code = a.plan
		JOIN users u ON u.id = a.owner_id
		WHERE a.id = $1`
	var w WelcomeContext
	if err := s.DB.GetContext(ctx, &w, q, accountID); err != nil {
		return WelcomeContext{}, fmt.Errorf("welcome context for account %d: %w", accountID, notFound(err))
	}
	return w, nil
}

// PaymentFailureContext is one failed invoice payment attempt with the account
// it belongs to.
type PaymentFailureContext struct {
	InvoiceID        string         `db:"invoice_id"`
	AttemptCount     int            `db:"attempt_count"`
	AccountID        int64          `db:"account_id"`
	AccountName      string         `db:"account_name"`
	Timezone         string         `db:"timezone"`
	AmountDue        int64          `db:"amount_due"`
	Currency         string         `db:"currency"`
	NextAttemptAt    sql.NullTime   `db:"next_attempt_at"`
	HostedInvoiceURL sql.NullString `db:"hosted_invoice_url"`
}

// PaymentFailureContext returns the recorded failure of invoiceID's attempt,
// or ErrNotFound.
func (s *Store) PaymentFailureContext(ctx context.Context, invoiceID string, attempt int) (PaymentFailureContext, error) {
	const q = `
		SELECT f.invoice_id, f.attempt_count, f.account_id, a.name AS account_name, a.timezone,
		       f.amount_due, f.currency, f.next_attempt_at, f.hosted_invoice_url
		FROM invoice_payment_failures f
		JOIN accounts a ON a.id = f.account_id
		WHERE f.invoice_id = $1 AND f.attempt_count = $2`
	var p PaymentFailureContext
	if err := s.DB.GetContext(ctx, &p, q, invoiceID, attempt); err != nil {
		return PaymentFailureContext{}, fmt.Errorf("payment failure %s attempt %d: %w", invoiceID, attempt, notFound(err))
	}
	return p, nil
}

// BillingContact is a person who hears about an account's billing.
type BillingContact struct {
	Email     string `db:"email"`
	FirstName string `db:"first_name"`
	LastName  string `db:"last_name"`
	Role      string `db:"role"`
}

// BillingContacts returns the account's owner (accounts.owner_id, whether or
// not a member row says so) and its admins, each address once, owner first.
func (s *Store) BillingContacts(ctx context.Context, accountID int64) ([]BillingContact, error) {
	const q = `
		SELECT DISTINCT ON (lower(email)) email, first_name, last_name, role
		FROM (
			SELECT u.email::text AS email, u.first_name, u.last_name, 'owner' AS role, 0 AS rank
			FROM accounts a JOIN users u ON u.id = a.owner_id
			WHERE a.id = $1
			UNION ALL
			SELECT u.email::text, u.first_name, u.last_name, m.role, CASE m.role WHEN 'owner' THEN 0 ELSE 1 END
			FROM account_members m JOIN users u ON u.id = m.user_id
			WHERE m.account_id = $1 AND m.role IN ('owner', 'admin')
		) c
		ORDER BY lower(email), rank`
	var out []BillingContact
	if err := s.DB.SelectContext(ctx, &out, q, accountID); err != nil {
		return nil, fmt.Errorf("billing contacts of account %d: %w", accountID, err)
	}
	// Owner first, then admins by address: a stable order for callers and logs.
	ordered := make([]BillingContact, 0, len(out))
	for _, c := range out {
		if c.Role == "owner" {
			ordered = append(ordered, c)
		}
	}
	for _, c := range out {
		if c.Role != "owner" {
			ordered = append(ordered, c)
		}
	}
	return ordered, nil
}

// ListEmailDeliveries returns the newest deliveries first, at most limit,
// only those with status when it is not empty.
func (s *Store) ListEmailDeliveries(ctx context.Context, status string, limit int) ([]EmailDelivery, error) {
	const q = `SELECT ` + emailDeliveryColumns + ` FROM email_deliveries
		WHERE ($1 = '' OR status = $1)
		ORDER BY created_at DESC, id DESC
		LIMIT $2`
	var out []EmailDelivery
	if err := s.DB.SelectContext(ctx, &out, q, status, limit); err != nil {
		return nil, fmt.Errorf("list email deliveries: %w", err)
	}
	return out, nil
}
