package postgres

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
)

// Account is an account's identity and billing state. Text columns that may
// be NULL read as "".
type Account struct {
	ID                   int64      `db:"id"`
	Name                 string     `db:"name"`
	Slug                 string     `db:"slug"`
	OwnerID              int64      `db:"owner_id"`
	Plan                 string     `db:"plan"`
	Status               string     `db:"status"`
	StripeCustomerID     string     `db:"stripe_customer_id"`
	StripeSubscriptionID string     `db:"stripe_subscription_id"`
	SubscriptionEndDate  *time.Time `db:"subscription_end_date"`
	Timezone             string     `db:"timezone"`
	BillingEventAt       *time.Time `db:"billing_event_at"`
	LastPaymentAt        *time.Time `db:"last_payment_at"`
	LastPaymentAmount    *int64     `db:"last_payment_amount"`
	LastPaymentCurrency  string     `db:"last_payment_currency"`
	CreatedAt            time.Time  `db:"created_at"`
	UpdatedAt            time.Time  `db:"updated_at"`
}

const accountColumns = `
	id, name, slug, owner_id, plan, status,
	COALESCE(stripe_customer_id, '') AS stripe_customer_id,
	COALESCE(stripe_subscription_id, '') AS stripe_subscription_id,
	subscription_end_date, timezone, billing_event_at,
	last_payment_at, last_payment_amount,
	COALESCE(last_payment_currency, '') AS last_payment_currency,
	created_at, updated_at`

// AccountByID returns the account with id, or ErrNotFound.
func (s *Store) AccountByID(ctx context.Context, id int64) (Account, error) {
	q := `SELECT ` + accountColumns + ` FROM accounts WHERE id = $1`
	var a Account
	if err := s.DB.GetContext(ctx, &a, q, id); err != nil {
		return Account{}, fmt.Errorf("account %d: %w", id, notFound(err))
	}
	return a, nil
}

// AccountBySlug returns the account whose slug is slug, or ErrNotFound.
func (s *Store) AccountBySlug(ctx context.Context, slug string) (Account, error) {
	q := `SELECT ` + accountColumns + ` FROM accounts WHERE slug = $1`
	var a Account
	if err := s.DB.GetContext(ctx, &a, q, slug); err != nil {
		return Account{}, fmt.Errorf("account %q: %w", slug, notFound(err))
	}
	return a, nil
}

// AccountByStripeCustomer returns the account linked to the Stripe customer
// id, or ErrNotFound when no account is linked to it (yet).
func (s *Store) AccountByStripeCustomer(ctx context.Context, customerID string) (Account, error) {
	q := `SELECT ` + accountColumns + ` FROM accounts WHERE stripe_customer_id = $1`
	var a Account
	if err := s.DB.GetContext(ctx, &a, q, customerID); err != nil {
		return Account{}, fmt.Errorf("account for customer %s: %w", customerID, notFound(err))
	}
	return a, nil
}

// Plan is a row of plans: what a Stripe price buys.
type Plan struct {
	Code          string `db:"code"`
	Name          string `db:"name"`
	StripePriceID string `db:"stripe_price_id"`
	MaxLocations  int    `db:"max_locations"`
	MaxUsers      int    `db:"max_users"`
}

// PlanByPriceID returns the plan sold at the Stripe price id, or ErrNotFound.
func (s *Store) PlanByPriceID(ctx context.Context, priceID string) (Plan, error) {
	const q = `
		SELECT code, name, COALESCE(stripe_price_id, '') AS stripe_price_id, max_locations, max_users
		FROM plans WHERE stripe_price_id = $1`
	var p Plan
	if err := s.DB.GetContext(ctx, &p, q, priceID); err != nil {
		return Plan{}, fmt.Errorf("plan for price %s: %w", priceID, notFound(err))
	}
	return p, nil
}

// PlanByCode returns the plan with code, or ErrNotFound.
func (s *Store) PlanByCode(ctx context.Context, code string) (Plan, error) {
	const q = `
		SELECT code, name, COALESCE(stripe_price_id, '') AS stripe_price_id, max_locations, max_users
		FROM plans WHERE code = $1`
	var p Plan
	if err := s.DB.GetContext(ctx, &p, q, code); err != nil {
		return Plan{}, fmt.Errorf("plan %q: %w", code, notFound(err))
	}
	return p, nil
}

// InboxEvent is a stripe_events row: a recorded Stripe event and what the
// worker made of it.
type InboxEvent struct {
	ID          string     `db:"id" json:"id"`
	Type        string     `db:"type" json:"type"`
	APIVersion  string     `db:"api_version" json:"api_version"`
	Livemode    bool       `db:"livemode" json:"livemode"`
	CreatedAt   time.Time  `db:"stripe_created_at" json:"stripe_created_at"` // Stripe's event.created
	Payload     []byte     `db:"payload" json:"-"`                           // the whole event JSON
	ReceivedAt  time.Time  `db:"received_at" json:"received_at"`
	ProcessedAt *time.Time `db:"processed_at" json:"processed_at"`
	Attempts    int        `db:"attempts" json:"attempts"`
	LastError   string     `db:"last_error" json:"last_error"`
	FailedAt    *time.Time `db:"failed_at" json:"failed_at"`
	Note        string     `db:"note" json:"note"`
	// UnmatchedAt is set while the row waits for an account to be linked to
	// UnmatchedCustomer, which stays set once the row was parked.
	UnmatchedAt       *time.Time `db:"unmatched_at" json:"unmatched_at"`
	UnmatchedCustomer string     `db:"unmatched_customer" json:"unmatched_customer"`
	// DismissedAt, DismissedBy and DismissedReason say who decided the row
	// is not to be applied, and why.
	DismissedAt     *time.Time `db:"dismissed_at" json:"dismissed_at"`
	DismissedBy     string     `db:"dismissed_by" json:"dismissed_by"`
	DismissedReason string     `db:"dismissed_reason" json:"dismissed_reason"`
	Source          string     `db:"source" json:"source"` // SourceWebhook, SourceSync or SourceReconcile
	Kind            string     `db:"kind" json:"kind"`     // KindSnapshot or KindThin
	// SnapshotEvent is a thin event's snapshot twin, when it names one.
	SnapshotEvent string `db:"snapshot_event" json:"snapshot_event,omitempty"`
	// TwinOf is the twin applied first, on a row marked processed without
	// effect because of it.
	TwinOf string `db:"twin_of" json:"twin_of,omitempty"`
	// FetchedObject is the object a thin event or a reconcile applied, as
	// fetched at FetchedAt.
	FetchedObject []byte     `db:"fetched_object" json:"-"`
	FetchedAt     *time.Time `db:"fetched_at" json:"fetched_at,omitempty"`
}

// TwinKey is the id that ties a snapshot event to the thin event of the same
// change: the snapshot event's id, which the thin event names in
// snapshot_event. "" for a thin event that names no twin.
func (e InboxEvent) TwinKey() string {
	if e.Kind == KindThin {
		return e.SnapshotEvent
	}
	return e.ID
}

// Inbox event states, as Status reports them.
const (
	InboxPending   = "pending"
	InboxProcessed = "processed"
	InboxFailed    = "failed"
	InboxUnmatched = "unmatched"
	InboxDismissed = "dismissed"
)

// Status is "processed", "dismissed" (kept, not to be applied), "failed"
// (archived, waiting for a replay), "unmatched" (waiting for an account to be
// linked to its customer) or "pending" (queued or retrying).
func (e InboxEvent) Status() string {
	switch {
	case e.ProcessedAt != nil:
		return InboxProcessed
	case e.DismissedAt != nil:
		return InboxDismissed
	case e.FailedAt != nil:
		return InboxFailed
	case e.UnmatchedAt != nil:
		return InboxUnmatched
	}
	return InboxPending
}

// StaleNotePrefix starts the note of an event that was processed without
// effect because the account had already applied a newer one.
const StaleNotePrefix = "stale: "

const inboxColumns = `
	id, type, api_version, livemode, stripe_created_at, payload, received_at,
	processed_at, attempts, COALESCE(last_error, '') AS last_error, failed_at,
	COALESCE(note, '') AS note,
	unmatched_at, COALESCE(unmatched_customer, '') AS unmatched_customer,
	dismissed_at, COALESCE(dismissed_by, '') AS dismissed_by,
	COALESCE(dismissed_reason, '') AS dismissed_reason, source, kind,
	COALESCE(snapshot_event, '') AS snapshot_event, COALESCE(twin_of, '') AS twin_of,
	fetched_object, fetched_at`

// StripeEventByID returns the inbox row with id, or ErrNotFound.
func (s *Store) StripeEventByID(ctx context.Context, id string) (InboxEvent, error) {
	q := `SELECT ` + inboxColumns + ` FROM stripe_events WHERE id = $1`
	var e InboxEvent
	if err := s.DB.GetContext(ctx, &e, q, id); err != nil {
		return InboxEvent{}, fmt.Errorf("stripe event %s: %w", id, notFound(err))
	}
	return e, nil
}

// InboxFilter selects inbox rows for ListStripeEvents.
type InboxFilter struct {
	FailedOnly    bool      // only failed rows (not processed, not dismissed)
	UnmatchedOnly bool      // only unmatched rows (not processed, not dismissed)
	Since         time.Time // only rows received at or after; zero for all
	Limit         int       // at most this many, newest first; 0 means 50
}

// ListStripeEvents returns inbox rows matching f, most recently received first.
func (s *Store) ListStripeEvents(ctx context.Context, f InboxFilter) ([]InboxEvent, error) {
	q := `SELECT ` + inboxColumns + `
		FROM stripe_events
		WHERE ($1 = false OR (failed_at IS NOT NULL AND processed_at IS NULL AND dismissed_at IS NULL))
		  AND ($4 = false OR (unmatched_at IS NOT NULL AND processed_at IS NULL AND dismissed_at IS NULL))
		  AND ($2::timestamptz IS NULL OR received_at >= $2)
		ORDER BY received_at DESC, id DESC
		LIMIT $3`
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	var since *time.Time
	if !f.Since.IsZero() {
		t := f.Since.UTC()
		since = &t
	}
	out := []InboxEvent{}
	if err := s.DB.SelectContext(ctx, &out, q, f.FailedOnly, since, limit, f.UnmatchedOnly); err != nil {
		return nil, fmt.Errorf("list stripe events: %w", err)
	}
	return out, nil
}

// PendingStripeEvent is what the re-drive sweep needs of an inbox row.
type PendingStripeEvent struct {
	ID         string    `db:"id"`
	Type       string    `db:"type"`
	ReceivedAt time.Time `db:"received_at"`
}

// PendingStripeEvents returns up to limit rows that are pending (not
// processed, failed, unmatched or dismissed) and were received before
// receivedBefore, in (received_at, id) order
// strictly after the cursor given by the previous page's last row (pass nil
// for the first page).
func (s *Store) PendingStripeEvents(ctx context.Context, receivedBefore time.Time, after *PendingStripeEvent, limit int) ([]PendingStripeEvent, error) {
	const q = `
		SELECT id, type, received_at
		FROM stripe_events
		WHERE processed_at IS NULL AND failed_at IS NULL AND unmatched_at IS NULL AND dismissed_at IS NULL
		  AND received_at < $1
		  AND ($2::timestamptz IS NULL OR (received_at, id) > ($2, $3))
		ORDER BY received_at, id
		LIMIT $4`
	var afterAt *time.Time
	afterID := ""
	if after != nil {
		afterAt, afterID = &after.ReceivedAt, after.ID
	}
	var out []PendingStripeEvent
	if err := s.DB.SelectContext(ctx, &out, q, receivedBefore.UTC(), afterAt, afterID, limit); err != nil {
		return nil, fmt.Errorf("pending stripe events: %w", err)
	}
	return out, nil
}

// RecordStripeEventFailure counts a failed attempt at applying the event and
// keeps reason, a sentence for the person reading the inbox. With final set
// (the task is being archived) it also sets failed_at, which takes the row out
// of the re-drive sweep until a replay. A processed row only gets its
// last_error updated: it stays processed.
func (s *Store) RecordStripeEventFailure(ctx context.Context, id, reason string, final bool) error {
	const q = `
		UPDATE stripe_events
		SET attempts = attempts + 1,
		    last_error = $2,
		    failed_at = CASE WHEN $3 AND processed_at IS NULL THEN now() ELSE failed_at END
		WHERE id = $1`
	res, err := s.DB.ExecContext(ctx, q, id, reason, final)
	if err != nil {
		return fmt.Errorf("record failure of stripe event %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("record failure of stripe event %s: %w", id, ErrNotFound)
	}
	return nil
}

// MarkStripeEventFailed sets failed_at and last_error on an unprocessed row
// whose task was archived without the worker recording it (the database was
// down at the last attempt). It does not count an attempt. It reports whether
// the row changed.
func (s *Store) MarkStripeEventFailed(ctx context.Context, id, reason string) (bool, error) {
	const q = `
		UPDATE stripe_events
		SET failed_at = now(), last_error = $2
		WHERE id = $1 AND processed_at IS NULL AND failed_at IS NULL`
	res, err := s.DB.ExecContext(ctx, q, id, reason)
	if err != nil {
		return false, fmt.Errorf("mark stripe event %s failed: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("mark stripe event %s failed: %w", id, err)
	}
	return n == 1, nil
}

// ClearStripeEventFailure takes failed_at off the row, so the event counts as
// pending again (for a replay, and for the sweep should the replay be lost).
// It keeps attempts and last_error as history.
func (s *Store) ClearStripeEventFailure(ctx context.Context, id string) error {
	const q = `UPDATE stripe_events SET failed_at = NULL WHERE id = $1`
	res, err := s.DB.ExecContext(ctx, q, id)
	if err != nil {
		return fmt.Errorf("clear failure of stripe event %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("clear failure of stripe event %s: %w", id, ErrNotFound)
	}
	return nil
}

// Outcome says what applying an inbox event did.
type Outcome int

// Outcomes of the Apply and Mark methods.
const (
	// Applied: the change was made and the event marked processed.
	Applied Outcome = iota + 1
	// Stale: the account had applied a newer event; nothing changed but the
	// event is marked processed with a note saying so.
	Stale
	// Skipped: the change did not apply to this account (see the note); the
	// event is marked processed.
	Skipped
	// AlreadyProcessed: an earlier run processed the event; nothing was done.
	AlreadyProcessed
	// Twin: the other event of the same change (the snapshot event and the
	// thin event naming it) was applied first; the event is marked processed
	// without effect, with a note and twin_of naming the first.
	Twin
)

// String names the outcome for logs: "applied", "stale", "skipped",
// "already_processed" or "twin".
func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Stale:
		return "stale"
	case Skipped:
		return "skipped"
	case AlreadyProcessed:
		return "already_processed"
	case Twin:
		return "twin"
	}
	return "unknown"
}

// Payment is a successful payment as last_payment_* records it.
type Payment struct {
	At       time.Time
	Amount   int64 // in the currency's minor unit
	Currency string
}

// InvoicePaymentFailure is a row of invoice_payment_failures: what the
// payment-failed email needs.
type InvoicePaymentFailure struct {
	InvoiceID        string     `db:"invoice_id"`
	AttemptCount     int        `db:"attempt_count"`
	AccountID        int64      `db:"account_id"`
	StripeEventID    string     `db:"stripe_event_id"`
	AmountDue        int64      `db:"amount_due"`
	Currency         string     `db:"currency"`
	NextAttemptAt    *time.Time `db:"next_attempt_at"`
	HostedInvoiceURL string     `db:"hosted_invoice_url"`
	CreatedAt        time.Time  `db:"created_at"`
}

// BillingChange is what one Stripe event does to an account's billing state.
// Nil fields are left as they are.
type BillingChange struct {
	SubscriptionID      *string
	SubscriptionEndDate *time.Time
	Plan                *string // a plans.code
	Status              *string
	// StatusFrom, when not empty, limits Status to accounts whose current
	// status is one of these.
	StatusFrom []string
	// OnlySubscription, when set, skips the change (Skipped) if the account is
	// linked to a different subscription: a deleted old subscription must not
	// cancel the account's current one.
	OnlySubscription string
	LastPayment      *Payment
	// PaymentFailure is recorded once per invoice and attempt, even when the
	// event is stale.
	PaymentFailure *InvoicePaymentFailure
	// AsOf is when the state the change carries was read: zero for a
	// snapshot event (its created time), the fetch time for an object
	// fetched from the API (a thin event, a reconcile). A fetched object is
	// newer than every event created before the fetch.
	AsOf time.Time
}

// ApplyResult reports what ApplyBillingEvent did and the account as it is
// afterwards.
type ApplyResult struct {
	Outcome Outcome
	Note    string // the note stored on the event (the earlier one when AlreadyProcessed)
	Account Account
}

// ApplyBillingEvent applies change to the account for inbox event eventID and
// marks the event processed, in one transaction: exactly once however often
// and however concurrently it is called for the same event.
//
// The event row and the account row are locked. An event already processed
// changes nothing (AlreadyProcessed), nor does one whose twin (the snapshot
// event and the thin event of the same change) was applied first (Twin). An
// event older (Stripe's created, or change.AsOf) than the newest state
// applied to the account's billing state changes nothing and is marked
// processed with a "stale: " note (a PaymentFailure is still recorded: it is
// history, not state). Otherwise the change is made,
// accounts.billing_event_at moves to the event's created time (or AsOf),
// and the event is marked processed with note (empty for none). A failed_at
// left by an earlier archived attempt is cleared.
func (s *Store) ApplyBillingEvent(ctx context.Context, eventID string, accountID int64, change BillingChange, note string) (ApplyResult, error) {
	var res ApplyResult
	err := s.inTx(ctx, func(tx *sqlx.Tx) (err error) {
		res, err = applyBillingEvent(ctx, tx, eventID, accountID, change, note)
		return err
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply stripe event %s to account %d: %w", eventID, accountID, err)
	}
	return res, nil
}

// ApplyReconcile records e, Stripe's state of the account's subscription as
// fetched at e.CreatedAt, as an inbox row (e.Source is SourceReconcile,
// fetched_object the subscription) and applies change to the account
// through the same path as an event (see ApplyBillingEvent), in one
// transaction: the account's history shows the row and its note, and a
// crash leaves neither half.
func (s *Store) ApplyReconcile(ctx context.Context, e StripeEvent, fetched []byte, accountID int64, change BillingChange, note string) (ApplyResult, error) {
	var res ApplyResult
	err := s.inTx(ctx, func(tx *sqlx.Tx) (err error) {
		const q = `
			INSERT INTO stripe_events (id, type, api_version, livemode, stripe_created_at, payload, source, kind, fetched_object, fetched_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $5)`
		if _, err := tx.ExecContext(ctx, q, e.ID, e.Type, e.APIVersion, e.Livemode, e.CreatedAt.UTC(), string(e.Payload),
			cmp.Or(e.Source, SourceReconcile), cmp.Or(e.Kind, KindSnapshot), string(fetched)); err != nil {
			if isInvalidJSON(err) {
				return ErrInvalidPayload
			}
			return err
		}
		change.AsOf = e.CreatedAt
		res, err = applyBillingEvent(ctx, tx, e.ID, accountID, change, note)
		return err
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("reconcile account %d (%s): %w", accountID, e.ID, err)
	}
	return res, nil
}

// AccountsWithStripeCustomer returns every account linked to a Stripe
// customer, by slug.
func (s *Store) AccountsWithStripeCustomer(ctx context.Context) ([]Account, error) {
	q := `SELECT ` + accountColumns + ` FROM accounts WHERE stripe_customer_id IS NOT NULL ORDER BY slug`
	out := []Account{}
	if err := s.DB.SelectContext(ctx, &out, q); err != nil {
		return nil, fmt.Errorf("accounts with a stripe customer: %w", err)
	}
	return out, nil
}

func applyBillingEvent(ctx context.Context, tx *sqlx.Tx, eventID string, accountID int64, change BillingChange, note string) (ApplyResult, error) {
	var res ApplyResult
	err := func() error {
		ev, err := lockInboxEvent(ctx, tx, eventID)
		if err != nil {
			return err
		}
		if ev.ProcessedAt != nil {
			res = ApplyResult{Outcome: AlreadyProcessed, Note: ev.Note}
			return nil
		}
		if twin, err := settleTwin(ctx, tx, ev); err != nil || twin.Outcome != 0 {
			res = ApplyResult{Outcome: twin.Outcome, Note: twin.Note}
			return err
		}
		a, err := lockAccount(ctx, tx, accountID)
		if err != nil {
			return err
		}
		// A failed payment is a fact about an invoice, whatever the order it
		// arrives in: it is kept even when the account state moved on.
		if f := change.PaymentFailure; f != nil {
			f.AccountID, f.StripeEventID = a.ID, eventID
			if err := insertPaymentFailure(ctx, tx, *f); err != nil {
				return err
			}
		}
		res.Account = a
		asOf, what := ev.CreatedAt, "event created"
		if !change.AsOf.IsZero() {
			asOf, what = change.AsOf, "state fetched"
		}
		if a.BillingEventAt != nil && asOf.Before(*a.BillingEventAt) {
			res.Outcome = Stale
			res.Note = fmt.Sprintf("%s%s %s is older than the last event applied to account %d (%s); account unchanged",
				StaleNotePrefix, what, asOf.UTC().Format(time.RFC3339), a.ID, a.BillingEventAt.UTC().Format(time.RFC3339))
			return markProcessed(ctx, tx, eventID, res.Note)
		}
		if change.OnlySubscription != "" && a.StripeSubscriptionID != "" && a.StripeSubscriptionID != change.OnlySubscription {
			res.Outcome = Skipped
			res.Note = fmt.Sprintf("subscription %s is not account %d's current subscription (%s); account unchanged",
				change.OnlySubscription, a.ID, a.StripeSubscriptionID)
			return markProcessed(ctx, tx, eventID, res.Note)
		}
		applyChange(&a, change, asOf)
		if err := updateBillingState(ctx, tx, a); err != nil {
			return err
		}
		res = ApplyResult{Outcome: Applied, Note: note, Account: a}
		return markProcessed(ctx, tx, eventID, note)
	}()
	return res, err
}

func applyChange(a *Account, c BillingChange, asOf time.Time) {
	if c.SubscriptionID != nil {
		a.StripeSubscriptionID = *c.SubscriptionID
	}
	if c.SubscriptionEndDate != nil {
		t := *c.SubscriptionEndDate
		a.SubscriptionEndDate = &t
	}
	if c.Plan != nil {
		a.Plan = *c.Plan
	}
	if c.Status != nil && (len(c.StatusFrom) == 0 || slices.Contains(c.StatusFrom, a.Status)) {
		a.Status = *c.Status
	}
	if p := c.LastPayment; p != nil {
		at, amount := p.At, p.Amount
		a.LastPaymentAt, a.LastPaymentAmount, a.LastPaymentCurrency = &at, &amount, p.Currency
	}
	a.BillingEventAt = &asOf
}

// LinkResult reports what LinkStripeCustomer did.
type LinkResult struct {
	Outcome Outcome // Applied, Skipped, AlreadyProcessed or Twin
	Note    string
}

// LinkStripeCustomer links the Stripe customer to the account for inbox
// event eventID (customer.created) and marks the event processed, in one
// transaction. When the account already has a customer, or another account
// has this one, nothing changes and the event is marked processed with a note
// saying why (Skipped). When the event's twin was applied first, nothing
// changes (Twin).
func (s *Store) LinkStripeCustomer(ctx context.Context, eventID string, accountID int64, customerID string) (LinkResult, error) {
	var res LinkResult
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		ev, err := lockInboxEvent(ctx, tx, eventID)
		if err != nil {
			return err
		}
		if ev.ProcessedAt != nil {
			res = LinkResult{Outcome: AlreadyProcessed, Note: ev.Note}
			return nil
		}
		if twin, err := settleTwin(ctx, tx, ev); err != nil || twin.Outcome != 0 {
			res = LinkResult{Outcome: twin.Outcome, Note: twin.Note}
			return err
		}
		a, err := lockAccount(ctx, tx, accountID)
		if err != nil {
			return err
		}
		const other = `SELECT id FROM accounts WHERE stripe_customer_id = $1 AND id <> $2`
		var otherID int64
		err = tx.GetContext(ctx, &otherID, other, customerID, accountID)
		switch {
		case err == nil:
			res = LinkResult{Outcome: Skipped, Note: fmt.Sprintf("Stripe customer %s is already linked to account %d; account %d left unlinked", customerID, otherID, a.ID)}
		case !errors.Is(notFound(err), ErrNotFound):
			return err
		case a.StripeCustomerID == customerID:
			res = LinkResult{Outcome: Skipped, Note: fmt.Sprintf("account %d is already linked to Stripe customer %s; nothing changed", a.ID, customerID)}
		case a.StripeCustomerID != "":
			res = LinkResult{Outcome: Skipped, Note: fmt.Sprintf("account %d already has Stripe customer %s; %s not linked", a.ID, a.StripeCustomerID, customerID)}
		default:
			const link = `UPDATE accounts SET stripe_customer_id = $2, updated_at = now() WHERE id = $1`
			if _, err := tx.ExecContext(ctx, link, a.ID, customerID); err != nil {
				return err
			}
			res = LinkResult{Outcome: Applied}
		}
		return markProcessed(ctx, tx, eventID, res.Note)
	})
	if err != nil {
		return LinkResult{}, fmt.Errorf("link stripe customer %s to account %d: %w", customerID, accountID, err)
	}
	return res, nil
}

// MarkStripeEventProcessed marks an event that changes no account processed,
// with note saying why. It reports false when an earlier run had already
// processed it (the earlier note stays).
func (s *Store) MarkStripeEventProcessed(ctx context.Context, eventID, note string) (bool, error) {
	const q = `
		UPDATE stripe_events
		SET processed_at = now(), attempts = attempts + 1, failed_at = NULL, note = NULLIF($2, '')
		WHERE id = $1 AND processed_at IS NULL`
	res, err := s.DB.ExecContext(ctx, q, eventID, note)
	if err != nil {
		return false, fmt.Errorf("mark stripe event %s processed: %w", eventID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("mark stripe event %s processed: %w", eventID, err)
	}
	return n == 1, nil
}

// InvoicePaymentFailureByKey returns the recorded failure of the invoice's
// attempt, or ErrNotFound.
func (s *Store) InvoicePaymentFailureByKey(ctx context.Context, invoiceID string, attemptCount int) (InvoicePaymentFailure, error) {
	const q = `
		SELECT invoice_id, attempt_count, account_id, stripe_event_id, amount_due, currency,
		       next_attempt_at, COALESCE(hosted_invoice_url, '') AS hosted_invoice_url, created_at
		FROM invoice_payment_failures
		WHERE invoice_id = $1 AND attempt_count = $2`
	var f InvoicePaymentFailure
	if err := s.DB.GetContext(ctx, &f, q, invoiceID, attemptCount); err != nil {
		return InvoicePaymentFailure{}, fmt.Errorf("payment failure of invoice %s attempt %d: %w", invoiceID, attemptCount, notFound(err))
	}
	return f, nil
}

// TwinResult reports what SettleTwin did.
type TwinResult struct {
	Outcome Outcome // Twin, AlreadyProcessed, or 0 when the event is still to apply
	TwinOf  string  // the twin applied first
	Note    string
}

// SettleTwin marks the inbox event processed without effect when its twin
// (the snapshot event and the thin event of the same change) has already
// been applied, with twin_of and a note naming it (Twin). It changes nothing
// for an event already processed (AlreadyProcessed) or still to apply
// (Outcome 0). The worker asks before fetching a thin event's object; the
// apply methods ask again under the same lock, so two twins applied at once
// still make one change.
func (s *Store) SettleTwin(ctx context.Context, eventID string) (TwinResult, error) {
	var res TwinResult
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		ev, err := lockInboxEvent(ctx, tx, eventID)
		if err != nil {
			return err
		}
		if ev.ProcessedAt != nil {
			res = TwinResult{Outcome: AlreadyProcessed, TwinOf: ev.TwinOf, Note: ev.Note}
			return nil
		}
		res, err = settleTwin(ctx, tx, ev)
		return err
	})
	if err != nil {
		return TwinResult{}, fmt.Errorf("settle twin of stripe event %s: %w", eventID, err)
	}
	return res, nil
}

// settleTwin serialises the twins of one change on a transaction-scoped
// advisory lock (PgBouncer's transaction mode allows it), then, if the other
// twin is processed and was not itself a twin, marks ev processed as its
// twin. The lock is taken after ev's row lock and before any other, and the
// twin is read by a statement that starts after the lock is held, so it sees
// a twin committed meanwhile.
func settleTwin(ctx context.Context, tx *sqlx.Tx, ev InboxEvent) (TwinResult, error) {
	key := ev.TwinKey()
	if key == "" {
		return TwinResult{}, nil
	}
	const lock = `SELECT pg_advisory_xact_lock(hashtextextended('stripe_twin:' || $1, 0))`
	if _, err := tx.ExecContext(ctx, lock, key); err != nil {
		return TwinResult{}, fmt.Errorf("lock twins of %s: %w", key, err)
	}
	const q = `
		SELECT id, kind FROM stripe_events
		WHERE id <> $1 AND processed_at IS NOT NULL AND twin_of IS NULL
		  AND (id = $2 OR snapshot_event = $2)
		ORDER BY processed_at
		LIMIT 1`
	var twin struct {
		ID   string `db:"id"`
		Kind string `db:"kind"`
	}
	err := tx.GetContext(ctx, &twin, q, ev.ID, key)
	if errors.Is(err, sql.ErrNoRows) {
		return TwinResult{}, nil
	}
	if err != nil {
		return TwinResult{}, fmt.Errorf("find twin of %s: %w", ev.ID, err)
	}
	note := fmt.Sprintf("twin: %s event %s of the same change was applied first; nothing changed", twin.Kind, twin.ID)
	const mark = `
		UPDATE stripe_events
		SET processed_at = now(), attempts = attempts + 1, failed_at = NULL, twin_of = $2, note = $3
		WHERE id = $1`
	if _, err := tx.ExecContext(ctx, mark, ev.ID, twin.ID, note); err != nil {
		return TwinResult{}, fmt.Errorf("mark stripe event %s as twin of %s: %w", ev.ID, twin.ID, err)
	}
	return TwinResult{Outcome: Twin, TwinOf: twin.ID, Note: note}, nil
}

func lockInboxEvent(ctx context.Context, tx *sqlx.Tx, id string) (InboxEvent, error) {
	q := `SELECT ` + inboxColumns + ` FROM stripe_events WHERE id = $1 FOR UPDATE`
	var e InboxEvent
	if err := tx.GetContext(ctx, &e, q, id); err != nil {
		return InboxEvent{}, fmt.Errorf("lock stripe event %s: %w", id, notFound(err))
	}
	return e, nil
}

func lockAccount(ctx context.Context, tx *sqlx.Tx, id int64) (Account, error) {
	q := `SELECT ` + accountColumns + ` FROM accounts WHERE id = $1 FOR UPDATE`
	var a Account
	if err := tx.GetContext(ctx, &a, q, id); err != nil {
		return Account{}, fmt.Errorf("lock account %d: %w", id, notFound(err))
	}
	return a, nil
}

func updateBillingState(ctx context.Context, tx *sqlx.Tx, a Account) error {
	const q = `
		UPDATE accounts
		SET stripe_subscription_id = NULLIF($2, ''),
		    subscription_end_date = $3,
		    plan = $4,
		    status = $5,
		    billing_event_at = $6,
		    last_payment_at = $7,
		    last_payment_amount = $8,
		    last_payment_currency = NULLIF($9, ''),
		    updated_at = now()
		WHERE id = $1`
	_, err := tx.ExecContext(ctx, q, a.ID, a.StripeSubscriptionID, a.SubscriptionEndDate, a.Plan, a.Status,
		a.BillingEventAt, a.LastPaymentAt, a.LastPaymentAmount, a.LastPaymentCurrency)
	if err != nil {
		return fmt.Errorf("update billing state: %w", err)
	}
	return nil
}

func insertPaymentFailure(ctx context.Context, tx *sqlx.Tx, f InvoicePaymentFailure) error {
	const q = `
		INSERT INTO invoice_payment_failures
		    (invoice_id, attempt_count, account_id, stripe_event_id, amount_due, currency, next_attempt_at, hosted_invoice_url)
		VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''))
		ON CONFLICT (invoice_id, attempt_count) DO NOTHING`
	_, err := tx.ExecContext(ctx, q, f.InvoiceID, f.AttemptCount, f.AccountID, f.StripeEventID,
		f.AmountDue, f.Currency, f.NextAttemptAt, f.HostedInvoiceURL)
	if err != nil {
		return fmt.Errorf("record payment failure of invoice %s: %w", f.InvoiceID, err)
	}
	return nil
}

func markProcessed(ctx context.Context, tx *sqlx.Tx, id, note string) error {
	const q = `
		UPDATE stripe_events
		SET processed_at = now(), attempts = attempts + 1, failed_at = NULL, note = NULLIF($2, '')
		WHERE id = $1`
	if _, err := tx.ExecContext(ctx, q, id, note); err != nil {
		return fmt.Errorf("mark stripe event %s processed: %w", id, err)
	}
	return nil
}
