package email

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cleantrack/jobs/internal/postgres"
)

// errNoRecipients is returned when an account has nobody to write to.
var errNoRecipients = errors.New("no recipients")

// Notifier turns billing events into emails. It implements billing.Notifier:
// the billing handler calls it after its transaction commits, and it only
// reads the committed state and enqueues, keyed so that a re-run of the same
// Stripe event sends nothing new.
type Notifier struct {
	store   *postgres.Store
	svc     *Service
	siteURL string
}

// NewNotifier returns a Notifier reading from store and enqueuing through
// svc; siteURL (SITE_URL) prefixes the dashboard and help links.
func NewNotifier(store *postgres.Store, svc *Service, siteURL string) *Notifier {
	return &Notifier{store: store, svc: svc, siteURL: strings.TrimRight(siteURL, "/")}
}

// SubscriptionCreated enqueues the welcome email to the account's owner, with
// the plan's limits and the current period's end, keyed
// "welcome/<subscription id>": one welcome per subscription, however often
// customer.subscription.created is delivered.
func (n *Notifier) SubscriptionCreated(ctx context.Context, accountID int64, subscriptionID string, periodEnd time.Time) error {
	w, err := n.store.WelcomeContext(ctx, accountID)
	if err != nil {
		return fmt.Errorf("welcome email: %w", err)
	}
	data := WelcomeData{
		UserName:     DisplayName(w.OwnerFirstName, w.OwnerLastName),
		AccountName:  w.AccountName,
		PlanName:     w.PlanName,
		MaxLocations: w.MaxLocations,
		MaxUsers:     w.MaxUsers,
		DashboardURL: n.siteURL + "/dashboard/",
		HelpURL:      n.siteURL + "/help/",
		Timezone:     w.Timezone,
	}
	// The event's own period end first: a stale subscription.created (one
	// that arrived after a newer event) left the account row as it was.
	switch {
	case !periodEnd.IsZero():
		data.SubscriptionEndDate = periodEnd
	case w.SubscriptionEndDate.Valid:
		data.SubscriptionEndDate = w.SubscriptionEndDate.Time
	}
	// An owner address that cannot be sent to is recorded as a failed
	// delivery; the subscription's event still succeeds.
	if _, err := n.svc.SendWelcomeEmail(ctx, w.OwnerEmail, data, WelcomeKey(subscriptionID)); err != nil && !errors.Is(err, ErrUndeliverable) {
		return fmt.Errorf("welcome email for account %d: %w", accountID, err)
	}
	return nil
}

// PaymentFailed enqueues the payment-failed email to the account's owner and
// admins, from the invoice_payment_failures row of (invoiceID, attemptCount):
// amount due in the invoice's currency, next attempt, link to the hosted
// invoice. One email per invoice attempt and recipient, however often
// invoice.payment_failed is delivered.
func (n *Notifier) PaymentFailed(ctx context.Context, accountID int64, invoiceID string, attemptCount int) error {
	f, err := n.store.PaymentFailureContext(ctx, invoiceID, attemptCount)
	if err != nil {
		return fmt.Errorf("payment failed email: %w", err)
	}
	if f.AccountID != accountID {
		return fmt.Errorf("payment failed email: invoice %s belongs to account %d, not %d", invoiceID, f.AccountID, accountID)
	}
	contacts, err := n.store.BillingContacts(ctx, accountID)
	if err != nil {
		return fmt.Errorf("payment failed email: %w", err)
	}
	if len(contacts) == 0 {
		return fmt.Errorf("payment failed email for account %d: %w", accountID, errNoRecipients)
	}
	data := PaymentFailedData{
		AccountName:  f.AccountName,
		AmountDue:    f.AmountDue,
		Currency:     f.Currency,
		InvoiceURL:   f.HostedInvoiceURL.String,
		AttemptCount: f.AttemptCount,
		DashboardURL: n.siteURL + "/dashboard/billing/",
		Timezone:     f.Timezone,
	}
	if data.InvoiceURL == "" {
		// Stripe leaves hosted_invoice_url empty for some invoices; the
		// billing page is the next best place to pay.
		data.InvoiceURL = data.DashboardURL
	}
	if f.NextAttemptAt.Valid {
		next := f.NextAttemptAt.Time
		data.NextAttempt = &next
	}
	// Recipients are independent: an address that cannot be sent to has
	// its own failed row, and the others are still enqueued. Any other
	// error is returned after trying them all, so the event is retried and
	// the keys of those already enqueued make them duplicates.
	var errs []error
	for _, c := range contacts {
		data.UserName = DisplayName(c.FirstName, c.LastName)
		key := PaymentFailedKey(invoiceID, attemptCount, c.Email)
		if _, err := n.svc.SendPaymentFailedEmail(ctx, c.Email, data, key); err != nil && !errors.Is(err, ErrUndeliverable) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("payment failed email for account %d: %w", accountID, err)
	}
	return nil
}
