package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/stripeapi"
	"github.com/cleantrack/jobs/tasks"
)

// Stripe subscription statuses CleanTrack acts on.
const (
	StatusActive     = "active"
	StatusPastDue    = "past_due"
	StatusUnpaid     = "unpaid"
	StatusIncomplete = "incomplete"
	StatusCanceled   = "canceled"
)

// Notifier hands billing news to the people of an account (internal/email
// implements it by enqueuing email:send tasks). The handler calls it only
// after the event's transaction committed, and calls it again whenever the
// same event runs again (a redelivery, a replay), because the enqueue may
// have failed after the commit: implementations must be idempotent. An error
// makes the task retry.
type Notifier interface {
	// SubscriptionCreated announces a new subscription (the welcome email).
	// periodEnd is the subscription's current period end as the event has
	// it (zero when it has none): the account row may not carry it, since a
	// stale event does not change the account.
	SubscriptionCreated(ctx context.Context, accountID int64, subscriptionID string, periodEnd time.Time) error
	// PaymentFailed announces a failed invoice payment; the details are in
	// invoice_payment_failures under (invoiceID, attemptCount).
	PaymentFailed(ctx context.Context, accountID int64, invoiceID string, attemptCount int) error
}

// DefaultRedrivePageSize is how many inbox rows the sweep reads per query
// when Options leave it zero.
const DefaultRedrivePageSize = 500

// DefaultUnmatchedRetryDelays are the waits between the attempts at an event
// whose customer no account has, for a customer.created that may be racing
// it: five attempts over about five minutes, then the row is parked as
// unmatched.
var DefaultUnmatchedRetryDelays = []time.Duration{20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second}

// maxCustomerIDLength bounds a Stripe customer id taken from an event
// (Stripe's are about 18 characters): an unmatched row is indexed by it.
const maxCustomerIDLength = 255

// Options tune the billing handler.
type Options struct {
	// RedriveMinAge is how long an inbox row must have waited before the
	// sweep enqueues it again (INBOX_REDRIVE_MIN_AGE): the web process
	// enqueues it itself first. Zero means no wait.
	RedriveMinAge time.Duration
	// RedrivePageSize is how many rows the sweep reads per query;
	// DefaultRedrivePageSize when zero.
	RedrivePageSize int
	// Tasks, when set (a *queue.Tasks), lets the sweep read the state of a
	// whole page of tasks in one round trip, enqueue only those Redis lost,
	// and notice archived tasks whose row was never marked failed. Without
	// it the sweep enqueues every pending row and counts the taken ids.
	Tasks TaskStates
	// UnmatchedRetryDelays are the waits between the attempts at an event
	// whose customer no account has; after the last one the row is parked
	// as unmatched. Nil means DefaultUnmatchedRetryDelays.
	UnmatchedRetryDelays []time.Duration
	// Stripe reads the Stripe API (STRIPE_SECRET_KEY): the objects thin
	// events name, the scheduled sync and reconcile. Nil without a key:
	// thin events are then retried with an error naming the variable.
	Stripe *stripeapi.Client
	// ReconcileFix makes the scheduled reconcile apply what it finds
	// (STRIPE_RECONCILE_FIX); without it, it only reports.
	ReconcileFix bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler runs the billing tasks: stripe:event and stripe:inbox_redrive.
// Build it with New.
type Handler struct {
	store    *postgres.Store
	notifier Notifier       // nil: no notifications
	enq      queue.Enqueuer // for the re-drive sweep
	log      *slog.Logger
	opt      Options
}

// New builds the billing handler. notifier may be nil (no notifications);
// enq enqueues the sweep's stripe:event tasks.
func New(store *postgres.Store, notifier Notifier, enq queue.Enqueuer, log *slog.Logger, opt Options) *Handler {
	if opt.RedrivePageSize <= 0 {
		opt.RedrivePageSize = DefaultRedrivePageSize
	}
	if opt.UnmatchedRetryDelays == nil {
		opt.UnmatchedRetryDelays = DefaultUnmatchedRetryDelays
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{store: store, notifier: notifier, enq: enq, log: log, opt: opt}
}

// Register adds the billing task handlers to mux.
func (h *Handler) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(tasks.TypeStripeEvent, h.ProcessStripeEvent)
	mux.HandleFunc(tasks.TypeInboxRedrive, h.ProcessInboxRedrive)
	mux.HandleFunc(tasks.TypeStripeSync, h.ProcessStripeSync)
	mux.HandleFunc(tasks.TypeStripeReconcile, h.ProcessStripeReconcile)
}

func (h *Handler) now() time.Time {
	if h.opt.Now != nil {
		return h.opt.Now()
	}
	return time.Now()
}

// ProcessStripeEvent is the stripe:event handler. It applies the inbox row
// named by the payload to its account exactly once (see
// postgres.Store.ApplyBillingEvent), then notifies.
//
// A thin event is applied from the object its related_object names, fetched
// from the Stripe API (see fetch), as the state as of the fetch. Of a
// snapshot event and the thin event of the same change (snapshot_event),
// whichever is applied first makes the change; the other is marked
// processed with a note naming it.
//
// Every failed attempt is counted on the row with a sentence naming what is
// wrong. An event whose customer no account has yet is tried a few times
// over a few minutes (Options.UnmatchedRetryDelays: the customer.created link
// may be racing it), then parked as unmatched: the task ends without being
// archived (asynq.RevokeTask) and the row waits until an account is linked
// to the customer (see ReleaseUnmatched). A malformed event or an object
// Stripe does not have (asynq.SkipRetry), and any other failure at its last
// retry, gets failed_at as the task is archived. A dismissed row is not
// applied.
func (h *Handler) ProcessStripeEvent(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Payload[tasks.StripeEventPayload](t)
	if err != nil {
		return err
	}
	if p.EventID == "" {
		return fmt.Errorf("%s task names no event: %w", t.Type(), asynq.SkipRetry)
	}
	row, err := h.store.StripeEventByID(ctx, p.EventID)
	if errors.Is(err, postgres.ErrNotFound) {
		return fmt.Errorf("no stripe_events row has id %s: %w", p.EventID, asynq.SkipRetry)
	}
	if err != nil {
		return fmt.Errorf("load stripe event %s: %w", p.EventID, err)
	}
	if row.DismissedAt != nil && row.ProcessedAt == nil {
		h.log.LogAttrs(ctx, slog.LevelInfo, "stripe event dismissed; not applied",
			slog.String("event_id", row.ID), slog.String("dismissed_by", row.DismissedBy),
			slog.String("reason", row.DismissedReason))
		return nil
	}
	if err := h.apply(ctx, row); err != nil {
		var na noAccountError
		if errors.As(err, &na) {
			return h.unmatched(ctx, row, na)
		}
		return h.failed(ctx, row.ID, err)
	}
	return nil
}

// unmatched handles an event whose customer no account has. While the
// short retries last it records the attempt and asks for the next delay;
// then, or at once when the row was parked before or another event of the
// customer waits already (no customer.created is racing those), it parks the
// row as unmatched and ends the task without archiving it.
func (h *Handler) unmatched(ctx context.Context, row postgres.InboxEvent, cause noAccountError) error {
	// Record even when the task's context is done, as failed does.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	n, _ := asynq.GetRetryCount(ctx)
	park := row.UnmatchedCustomer != "" || n >= len(h.opt.UnmatchedRetryDelays) || lastAttempt(ctx)
	if !park {
		waiting, err := h.store.CustomerHasUnmatched(rctx, cause.customerID)
		if err != nil {
			return errors.Join(cause, err)
		}
		park = waiting
	}
	if !park {
		if err := h.store.RecordStripeEventFailure(rctx, row.ID, cause.Error(), false); err != nil {
			return errors.Join(cause, err)
		}
		return &queue.RetryAfterError{Delay: h.opt.UnmatchedRetryDelays[n], Err: cause}
	}
	parked, err := h.store.ParkStripeEvent(rctx, row.ID, cause.customerID, cause.Error())
	if err != nil {
		return errors.Join(cause, err)
	}
	if !parked {
		// An account got the customer meanwhile (or the row was processed
		// or dismissed): run it again soon rather than park it.
		return &queue.RetryAfterError{Delay: time.Second, Err: fmt.Errorf("%w (linked meanwhile; trying again)", cause)}
	}
	h.log.LogAttrs(ctx, slog.LevelInfo, "stripe event parked as unmatched",
		slog.String("event_id", row.ID), slog.String("event_type", row.Type),
		slog.String("customer_id", cause.customerID), slog.Int("attempts", row.Attempts+1))
	return queue.Revoked(fmt.Errorf("%w: parked as unmatched until an account is linked to it", cause))
}

// failed records the failed attempt on the inbox row and returns the error
// for Asynq: SkipRetry for a malformed event, as is otherwise.
func (h *Handler) failed(ctx context.Context, eventID string, cause error) error {
	permanent := errors.Is(cause, ErrMalformed) || errors.Is(cause, stripeapi.ErrNotFound)
	final := permanent || lastAttempt(ctx)
	// Record even when the task's context is done (shutdown, timeout): the
	// row is what ops looks at.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := h.store.RecordStripeEventFailure(rctx, eventID, cause.Error(), final); err != nil {
		cause = errors.Join(cause, err)
	}
	if permanent {
		return fmt.Errorf("%w: %w", cause, asynq.SkipRetry)
	}
	return cause
}

// lastAttempt reports whether Asynq archives the task if this attempt fails.
func lastAttempt(ctx context.Context) bool {
	n, ok1 := asynq.GetRetryCount(ctx)
	m, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && n >= m
}

func (h *Handler) apply(ctx context.Context, row postgres.InboxEvent) error {
	ev, err := DecodeEvent(row.Payload)
	if err != nil {
		return err
	}
	if ev.ID != row.ID || ev.SnapshotType() != row.Type {
		return malformed("payload is event %s (%s), but the row is %s (%s)", ev.ID, ev.Type, row.ID, row.Type)
	}
	if row.ProcessedAt != nil {
		// Done before; only the notification, or the release of the
		// customer's unmatched events, may have been lost.
		if ev.SnapshotType() == tasks.EventCustomerCreated {
			customerID := ev.RelatedObject.ID
			if ev.Kind != postgres.KindThin {
				c, err := ev.DecodeCustomer()
				if err != nil {
					return err
				}
				customerID = c.ID
			}
			if _, err := h.ReleaseUnmatched(ctx, customerID); err != nil {
				return err
			}
		}
		return h.renotify(ctx, row, ev)
	}
	if ev.Kind == postgres.KindThin {
		var settled bool
		ev, settled, err = h.fetch(ctx, row, ev)
		if err != nil || settled {
			return err
		}
	}
	switch ev.SnapshotType() {
	case tasks.EventCustomerCreated:
		return h.customerCreated(ctx, ev)
	case tasks.EventSubscriptionCreated, tasks.EventSubscriptionUpdated:
		return h.subscriptionChanged(ctx, ev)
	case tasks.EventSubscriptionDeleted:
		return h.subscriptionDeleted(ctx, ev)
	case tasks.EventInvoicePaymentSucceeded:
		return h.paymentSucceeded(ctx, ev)
	case tasks.EventInvoicePaymentFailed:
		return h.paymentFailed(ctx, ev)
	}
	note := fmt.Sprintf("event type %s is not one CleanTrack applies; nothing changed", ev.Type)
	if _, err := h.store.MarkStripeEventProcessed(ctx, ev.ID, note); err != nil {
		return err
	}
	h.logOutcome(ctx, ev, 0, "skipped", note)
	return nil
}

// noAccountError is the failure of an event whose customer is not linked to
// any account (yet).
type noAccountError struct{ customerID string }

func (e noAccountError) Error() string { return "no account has Stripe customer " + e.customerID }

func (h *Handler) accountFor(ctx context.Context, ev Event, customerID ExpandableID) (postgres.Account, error) {
	a, err := h.store.AccountByStripeCustomer(ctx, string(customerID))
	if errors.Is(err, postgres.ErrNotFound) {
		if len(customerID) > maxCustomerIDLength {
			return postgres.Account{}, malformed("event %s: a customer id of %d bytes is not a Stripe customer id", ev.ID, len(customerID))
		}
		return postgres.Account{}, noAccountError{customerID: string(customerID)}
	}
	return a, err
}

func (h *Handler) customerCreated(ctx context.Context, ev Event) error {
	c, err := ev.DecodeCustomer()
	if err != nil {
		return err
	}
	raw := c.Metadata["account_id"]
	accountID, perr := strconv.ParseInt(raw, 10, 64)
	note := ""
	switch {
	case raw == "":
		note = fmt.Sprintf("customer %s has no metadata.account_id; no account linked", c.ID)
	case perr != nil || accountID <= 0:
		note = fmt.Sprintf("customer %s has metadata.account_id %q, which is not an account id; no account linked", c.ID, raw)
	default:
		if _, err := h.store.AccountByID(ctx, accountID); errors.Is(err, postgres.ErrNotFound) {
			note = fmt.Sprintf("customer %s names account %d in metadata.account_id, and no such account exists; no account linked", c.ID, accountID)
		} else if err != nil {
			return err
		}
	}
	if note != "" {
		if _, err := h.store.MarkStripeEventProcessed(ctx, ev.ID, note); err != nil {
			return err
		}
		h.logOutcome(ctx, ev, 0, "skipped", note)
		return nil
	}
	res, err := h.store.LinkStripeCustomer(ctx, ev.ID, accountID, c.ID)
	if err != nil {
		return err
	}
	h.logOutcome(ctx, ev, accountID, res.Outcome.String(), res.Note)
	_, err = h.ReleaseUnmatched(ctx, c.ID)
	return err
}

func (h *Handler) subscriptionChanged(ctx context.Context, ev Event) error {
	sub, err := ev.DecodeSubscription()
	if err != nil {
		return err
	}
	acct, err := h.accountFor(ctx, ev, sub.Customer)
	if err != nil {
		return err
	}
	change, note, err := h.subscriptionChange(ctx, sub, acct)
	if err != nil {
		return err
	}
	change.AsOf = ev.FetchedAt
	res, err := h.store.ApplyBillingEvent(ctx, ev.ID, acct.ID, change, note)
	if err != nil {
		return err
	}
	h.logOutcome(ctx, ev, acct.ID, res.Outcome.String(), res.Note)
	if ev.SnapshotType() == tasks.EventSubscriptionCreated && res.Outcome != postgres.Twin {
		return h.notifySubscriptionCreated(ctx, acct.ID, sub)
	}
	return nil
}

// subscriptionChange is what a subscription's state makes of the account:
// its id, status, period end and the plan its price buys (a note warns when
// the price matches no plan).
func (h *Handler) subscriptionChange(ctx context.Context, sub Subscription, acct postgres.Account) (postgres.BillingChange, string, error) {
	change := postgres.BillingChange{SubscriptionID: &sub.ID, Status: &sub.Status}
	if end := sub.PeriodEnd(); !end.IsZero() {
		change.SubscriptionEndDate = &end
	}
	switch price := sub.PriceID(); price {
	case "":
		return change, fmt.Sprintf("warning: subscription %s has no price; plan left as %s", sub.ID, acct.Plan), nil
	default:
		plan, err := h.store.PlanByPriceID(ctx, price)
		switch {
		case errors.Is(err, postgres.ErrNotFound):
			return change, fmt.Sprintf("warning: price %s of subscription %s matches no plan; plan left as %s", price, sub.ID, acct.Plan), nil
		case err != nil:
			return change, "", err
		}
		change.Plan = &plan.Code
	}
	return change, "", nil
}

func (h *Handler) subscriptionDeleted(ctx context.Context, ev Event) error {
	sub, err := ev.DecodeSubscription()
	if err != nil {
		return err
	}
	acct, err := h.accountFor(ctx, ev, sub.Customer)
	if err != nil {
		return err
	}
	ended := sub.EndedTime()
	if ended.IsZero() {
		ended = ev.CreatedAt()
	}
	canceled := StatusCanceled
	change := postgres.BillingChange{Status: &canceled, SubscriptionEndDate: &ended, OnlySubscription: sub.ID, AsOf: ev.FetchedAt}
	res, err := h.store.ApplyBillingEvent(ctx, ev.ID, acct.ID, change, "")
	if err != nil {
		return err
	}
	h.logOutcome(ctx, ev, acct.ID, res.Outcome.String(), res.Note)
	return nil
}

func (h *Handler) paymentSucceeded(ctx context.Context, ev Event) error {
	in, err := ev.DecodeInvoice()
	if err != nil {
		return err
	}
	acct, err := h.accountFor(ctx, ev, in.Customer)
	if err != nil {
		return err
	}
	paidAt := ev.CreatedAt()
	if in.StatusTransitions.PaidAt != 0 {
		paidAt = time.Unix(in.StatusTransitions.PaidAt, 0).UTC()
	}
	active := StatusActive
	change := postgres.BillingChange{
		Status:      &active,
		StatusFrom:  []string{StatusPastDue, StatusUnpaid, StatusIncomplete},
		LastPayment: &postgres.Payment{At: paidAt, Amount: in.AmountPaid, Currency: in.Currency},
		AsOf:        ev.FetchedAt,
	}
	res, err := h.store.ApplyBillingEvent(ctx, ev.ID, acct.ID, change, "")
	if err != nil {
		return err
	}
	h.logOutcome(ctx, ev, acct.ID, res.Outcome.String(), res.Note, slog.String("invoice_id", in.ID), slog.String("subscription_id", in.SubscriptionID()))
	return nil
}

func (h *Handler) paymentFailed(ctx context.Context, ev Event) error {
	in, err := ev.DecodeInvoice()
	if err != nil {
		return err
	}
	acct, err := h.accountFor(ctx, ev, in.Customer)
	if err != nil {
		return err
	}
	pastDue := StatusPastDue
	change := postgres.BillingChange{
		Status: &pastDue,
		PaymentFailure: &postgres.InvoicePaymentFailure{
			InvoiceID:        in.ID,
			AttemptCount:     in.AttemptCount,
			AmountDue:        in.AmountDue,
			Currency:         in.Currency,
			NextAttemptAt:    in.NextAttempt(),
			HostedInvoiceURL: in.HostedInvoiceURL,
		},
		AsOf: ev.FetchedAt,
	}
	note := ""
	if !ev.FetchedAt.IsZero() && in.Status == "paid" {
		// Fetched after a later attempt succeeded: the failure is history,
		// and the status it implied is no longer the invoice's state.
		change.Status = nil
		note = fmt.Sprintf("invoice %s is paid as fetched at %s; the failed attempt %d is recorded, status left as it is",
			in.ID, ev.FetchedAt.UTC().Format(time.RFC3339), in.AttemptCount)
	}
	res, err := h.store.ApplyBillingEvent(ctx, ev.ID, acct.ID, change, note)
	if err != nil {
		return err
	}
	h.logOutcome(ctx, ev, acct.ID, res.Outcome.String(), res.Note, slog.String("invoice_id", in.ID), slog.String("subscription_id", in.SubscriptionID()))
	if res.Outcome == postgres.Twin {
		return nil
	}
	return h.notifyPaymentFailed(ctx, acct.ID, in)
}

// renotify repeats the notification of an event processed earlier: the
// enqueue may have failed after the commit, and the notifier deduplicates.
// A twin processed without effect notifies nothing (its first twin did); a
// thin event notifies from the object it applied.
func (h *Handler) renotify(ctx context.Context, row postgres.InboxEvent, ev Event) error {
	if h.notifier == nil || row.TwinOf != "" {
		return nil
	}
	if ev.Kind == postgres.KindThin {
		if len(row.FetchedObject) == 0 {
			return nil
		}
		ev.Data.Object = row.FetchedObject
	}
	switch ev.SnapshotType() {
	case tasks.EventSubscriptionCreated:
		sub, err := ev.DecodeSubscription()
		if err != nil {
			return err
		}
		acct, err := h.store.AccountByStripeCustomer(ctx, string(sub.Customer))
		if errors.Is(err, postgres.ErrNotFound) {
			return nil // unlinked since; nobody to tell
		}
		if err != nil {
			return err
		}
		return h.notifySubscriptionCreated(ctx, acct.ID, sub)
	case tasks.EventInvoicePaymentFailed:
		in, err := ev.DecodeInvoice()
		if err != nil {
			return err
		}
		acct, err := h.store.AccountByStripeCustomer(ctx, string(in.Customer))
		if errors.Is(err, postgres.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return h.notifyPaymentFailed(ctx, acct.ID, in)
	}
	return nil
}

func (h *Handler) notifySubscriptionCreated(ctx context.Context, accountID int64, sub Subscription) error {
	if h.notifier == nil {
		return nil
	}
	if err := h.notifier.SubscriptionCreated(ctx, accountID, sub.ID, sub.PeriodEnd()); err != nil {
		return fmt.Errorf("event applied, but notifying account %d of subscription %s failed: %w", accountID, sub.ID, err)
	}
	return nil
}

func (h *Handler) notifyPaymentFailed(ctx context.Context, accountID int64, in Invoice) error {
	if h.notifier == nil {
		return nil
	}
	if err := h.notifier.PaymentFailed(ctx, accountID, in.ID, in.AttemptCount); err != nil {
		return fmt.Errorf("event applied, but notifying account %d of the failed payment of invoice %s failed: %w", accountID, in.ID, err)
	}
	return nil
}

func (h *Handler) logOutcome(ctx context.Context, ev Event, accountID int64, outcome, note string, attrs ...slog.Attr) {
	attrs = append([]slog.Attr{
		slog.String("event_id", ev.ID),
		slog.String("event_type", ev.Type),
		slog.String("kind", ev.Kind),
		slog.String("api_version", ev.APIVersion),
		slog.Int64("account_id", accountID),
		slog.String("outcome", outcome),
	}, attrs...)
	if note != "" {
		attrs = append(attrs, slog.String("note", note))
	}
	h.log.LogAttrs(ctx, slog.LevelInfo, "stripe event processed", attrs...)
}
