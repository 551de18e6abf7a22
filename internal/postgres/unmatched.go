package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// ParkStripeEvent marks the row unmatched: no account has customerID, so
// it waits, neither failed nor retried, until one does. It counts the
// attempt and keeps reason as last_error. It reports false, changing
// nothing, when an account has the customer by now (a customer.created
// linked it meanwhile) or the row is processed or dismissed: the caller
// applies it again instead.
func (s *Store) ParkStripeEvent(ctx context.Context, id, customerID, reason string) (bool, error) {
	const q = `
		UPDATE stripe_events
		SET unmatched_at = now(), unmatched_customer = $2,
		    attempts = attempts + 1, last_error = $3, failed_at = NULL
		WHERE id = $1 AND processed_at IS NULL AND dismissed_at IS NULL
		  AND NOT EXISTS (SELECT 1 FROM accounts WHERE stripe_customer_id = $2)`
	res, err := s.DB.ExecContext(ctx, q, id, customerID, reason)
	if err != nil {
		return false, fmt.Errorf("park stripe event %s as unmatched: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("park stripe event %s as unmatched: %w", id, err)
	}
	return n == 1, nil
}

// CustomerHasUnmatched reports whether an inbox row of customerID is
// unmatched: the customer has been unknown for minutes already.
func (s *Store) CustomerHasUnmatched(ctx context.Context, customerID string) (bool, error) {
	const q = `
		SELECT EXISTS (
			SELECT 1 FROM stripe_events
			WHERE unmatched_customer = $1
			  AND unmatched_at IS NOT NULL AND processed_at IS NULL AND dismissed_at IS NULL)`
	var ok bool
	if err := s.DB.GetContext(ctx, &ok, q, customerID); err != nil {
		return false, fmt.Errorf("unmatched stripe events of customer %s: %w", customerID, err)
	}
	return ok, nil
}

// ReleasedStripeEvent is an unmatched row made pending again.
type ReleasedStripeEvent struct {
	ID         string    `db:"id"`
	Type       string    `db:"type"`
	CustomerID string    `db:"unmatched_customer"`
	CreatedAt  time.Time `db:"stripe_created_at"`
}

// ReleaseUnmatchedStripeEvents makes pending again, in one statement, every
// unmatched row whose customer an account now has: those of customerID, or
// of every customer when it is "". It returns them oldest first (Stripe's
// created, then id), for the caller to enqueue in that order. The rows keep
// unmatched_customer; being pending, the re-drive sweep enqueues them should
// the caller's enqueue be lost.
func (s *Store) ReleaseUnmatchedStripeEvents(ctx context.Context, customerID string) ([]ReleasedStripeEvent, error) {
	const q = `
		WITH released AS (
			UPDATE stripe_events e SET unmatched_at = NULL
			FROM accounts a
			WHERE a.stripe_customer_id = e.unmatched_customer
			  AND e.unmatched_at IS NOT NULL AND e.processed_at IS NULL AND e.dismissed_at IS NULL
			  AND ($1 = '' OR e.unmatched_customer = $1)
			RETURNING e.id, e.type, e.unmatched_customer, e.stripe_created_at
		)
		SELECT id, type, unmatched_customer, stripe_created_at FROM released
		ORDER BY stripe_created_at, id`
	var out []ReleasedStripeEvent
	if err := s.DB.SelectContext(ctx, &out, q, customerID); err != nil {
		return nil, fmt.Errorf("release unmatched stripe events: %w", err)
	}
	return out, nil
}

// ErrNotDismissable is returned by DismissStripeEvent for a row that is
// neither failed nor unmatched (pending or processed).
var ErrNotDismissable = errors.New("only a failed or unmatched event can be dismissed")

// DismissStripeEvent marks a failed or unmatched row dismissed, kept with who
// (by) and why (reason), both required: it leaves the failed and unmatched
// lists, the re-drive sweep and the release of unmatched rows, and the
// worker no longer applies it. It returns the row as it is afterwards and
// whether it changed: a row dismissed before is returned as it is, with
// false. A pending or processed row gives ErrNotDismissable (with the row),
// a missing one ErrNotFound.
func (s *Store) DismissStripeEvent(ctx context.Context, id, by, reason string) (InboxEvent, bool, error) {
	if by == "" || reason == "" {
		return InboxEvent{}, false, fmt.Errorf("dismiss stripe event %s: who and why are both required", id)
	}
	var ev InboxEvent
	changed := false
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		ev, err = lockInboxEvent(ctx, tx, id)
		if err != nil {
			return err
		}
		switch ev.Status() {
		case InboxDismissed:
			return nil
		case InboxFailed, InboxUnmatched:
		default:
			return ErrNotDismissable
		}
		const q = `
			UPDATE stripe_events
			SET dismissed_at = now(), dismissed_by = $2, dismissed_reason = $3
			WHERE id = $1
			RETURNING ` + inboxColumns
		changed = true
		return tx.GetContext(ctx, &ev, q, id, by, reason)
	})
	if err != nil {
		return ev, false, fmt.Errorf("dismiss stripe event %s: %w", id, err)
	}
	return ev, changed, nil
}

// ClearStripeEventDismissal takes the dismissal off the row (for a replay),
// so it counts as failed, unmatched or pending again.
func (s *Store) ClearStripeEventDismissal(ctx context.Context, id string) error {
	const q = `
		UPDATE stripe_events
		SET dismissed_at = NULL, dismissed_by = NULL, dismissed_reason = NULL
		WHERE id = $1`
	res, err := s.DB.ExecContext(ctx, q, id)
	if err != nil {
		return fmt.Errorf("clear dismissal of stripe event %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("clear dismissal of stripe event %s: %w", id, ErrNotFound)
	}
	return nil
}
