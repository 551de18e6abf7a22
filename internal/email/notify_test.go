package email

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/billing"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/resendtest"
	"github.com/cleantrack/jobs/internal/testfactory"
)

var _ billing.Notifier = (*Notifier)(nil)

// seedAccount creates an account with an owner, an admin, a manager (who
// must not get billing mail) and a failed payment of invoice in_1 attempt 1.
func seedAccount(t *testing.T, store *postgres.Store) int64 {
	t.Helper()
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		_, err := store.DB.ExecContext(ctx, q, args...)
		require.NoError(t, err)
	}
	acc := testfactory.Account(t, store, &testfactory.AccountOpts{
		Slug: "harbor", Name: "Harbor Clinic", Status: "active", Timezone: "Europe/Berlin",
		StripeCustomerID: "cus_1", StripeSubscriptionID: "sub_1", SubscriptionEndDate: time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC),
		Owner: &testfactory.UserOpts{Email: "Owner@Harbor.example", FirstName: "Olivia", LastName: "Owner"},
	})
	testfactory.Member(t, store, acc.ID, postgres.RoleAdmin, &testfactory.UserOpts{Email: "admin@harbor.example", FirstName: "Adam", LastName: "Admin"})
	testfactory.Member(t, store, acc.ID, postgres.RoleManager, &testfactory.UserOpts{Email: "manager@harbor.example", FirstName: "Mia", LastName: "Manager"})
	exec(`INSERT INTO stripe_events (id, type, stripe_created_at, payload) VALUES ('evt_1', 'invoice.payment_failed', now(), '{}'), ('evt_2', 'invoice.payment_failed', now(), '{}')`)
	exec(`INSERT INTO invoice_payment_failures (invoice_id, attempt_count, account_id, stripe_event_id, amount_due, currency, next_attempt_at, hosted_invoice_url)
		VALUES ('in_1', 1, $1, 'evt_1', 490000, 'jpy', '2027-01-03T09:00:00Z', 'https://invoice.stripe.com/i/in_1'),
		       ('in_1', 2, $1, 'evt_2', 490000, 'jpy', NULL, NULL)`, acc.ID)
	return acc.ID
}

func TestNotifierWelcomeOncePerSubscription(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	s, store := newTestSender(t, fake, nil)
	w := startWorker(t, s)
	accountID := seedAccount(t, store)
	n := NewNotifier(store, w.svc, "https://app.cleantrack.example/")
	ctx := context.Background()

	// The billing handler calls again on every redelivery of the event.
	require.NoError(t, n.SubscriptionCreated(ctx, accountID, "sub_1", time.Time{}))
	require.NoError(t, n.SubscriptionCreated(ctx, accountID, "sub_1", time.Time{}))
	waitStatus(t, store, "welcome/sub_1", postgres.EmailSent)
	require.NoError(t, n.SubscriptionCreated(ctx, accountID, "sub_1", time.Time{}))
	time.Sleep(200 * time.Millisecond) // give a wrongly enqueued duplicate time to arrive

	reqs := fake.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "welcome/sub_1", reqs[0].IdempotencyKey)
	r := reqs[0].Email()
	assert.Equal(t, []string{"Owner@Harbor.example"}, r.To, "the address as the user wrote it")
	assert.Contains(t, r.Subject, "Welcome to CleanTrack")
	assert.Contains(t, r.Text, "Hello Olivia Owner,")
	assert.Contains(t, r.Text, "up to 5")
	assert.Contains(t, r.Text, "up to 10")
	// 23:30 UTC on December 31 is already January 1 in Berlin.
	assert.Contains(t, r.Text, "January 1, 2027")
	assert.Contains(t, r.Html, "https://app.cleantrack.example/dashboard/")

	// Another subscription of the same account is welcomed too.
	require.NoError(t, n.SubscriptionCreated(ctx, accountID, "sub_2", time.Time{}))
	waitStatus(t, store, "welcome/sub_2", postgres.EmailSent)
	assert.Equal(t, 2, fake.RequestCount())
}

// A subscription.created that arrives after a newer event is stale and leaves
// the account without an end date; the welcome email takes the period end
// from the event instead of failing to render.
func TestNotifierWelcomeUsesTheEventsPeriodEnd(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	s, store := newTestSender(t, fake, nil)
	w := startWorker(t, s)
	accountID := seedAccount(t, store)
	_, err := store.DB.Exec(`UPDATE accounts SET subscription_end_date = NULL WHERE id = $1`, accountID)
	require.NoError(t, err)
	n := NewNotifier(store, w.svc, "https://app.cleantrack.example/")

	end := time.Date(2027, 2, 14, 12, 0, 0, 0, time.UTC)
	require.NoError(t, n.SubscriptionCreated(context.Background(), accountID, "sub_stale", end))
	waitStatus(t, store, "welcome/sub_stale", postgres.EmailSent)
	reqs := fake.Requests()
	require.Len(t, reqs, 1)
	assert.Contains(t, reqs[0].Email().Text, "February 14, 2027")
}

func TestNotifierPaymentFailedOncePerAttemptAndRecipient(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	s, store := newTestSender(t, fake, nil)
	w := startWorker(t, s)
	accountID := seedAccount(t, store)
	n := NewNotifier(store, w.svc, "https://app.cleantrack.example")
	ctx := context.Background()

	require.NoError(t, n.PaymentFailed(ctx, accountID, "in_1", 1))
	require.NoError(t, n.PaymentFailed(ctx, accountID, "in_1", 1))
	waitStatus(t, store, PaymentFailedKey("in_1", 1, "owner@harbor.example"), postgres.EmailSent)
	waitStatus(t, store, PaymentFailedKey("in_1", 1, "admin@harbor.example"), postgres.EmailSent)
	require.NoError(t, n.PaymentFailed(ctx, accountID, "in_1", 1))
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, 2, fake.RequestCount(), "owner and admin once each; the manager gets none")

	byTo := map[string]resendtest.Request{}
	for _, r := range fake.Requests() {
		byTo[strings.ToLower(r.Email().To[0])] = r
	}
	require.ElementsMatch(t, []string{"owner@harbor.example", "admin@harbor.example"}, keys(byTo))
	owner := byTo["owner@harbor.example"]
	assert.Equal(t, PaymentFailedKey("in_1", 1, "owner@harbor.example"), owner.IdempotencyKey)
	assert.NotContains(t, owner.IdempotencyKey, "@", "no address in a key")
	assert.Contains(t, owner.Email().Subject, "¥490,000")
	assert.Contains(t, owner.Email().Text, "Hello Olivia Owner,")
	assert.Contains(t, owner.Email().Text, "January 3, 2027 at 10:00 AM CET")
	assert.Contains(t, owner.Email().Html, "https://invoice.stripe.com/i/in_1")
	assert.Contains(t, byTo["admin@harbor.example"].Email().Text, "Hello Adam Admin,")

	// The next attempt of the same invoice is news again; without a hosted
	// invoice URL the link goes to the billing page.
	require.NoError(t, n.PaymentFailed(ctx, accountID, "in_1", 2))
	waitStatus(t, store, PaymentFailedKey("in_1", 2, "owner@harbor.example"), postgres.EmailSent)
	waitStatus(t, store, PaymentFailedKey("in_1", 2, "admin@harbor.example"), postgres.EmailSent)
	assert.Equal(t, 4, fake.RequestCount())
	for _, r := range fake.Requests()[2:] {
		assert.Contains(t, r.Email().Text, "Pay the invoice: https://app.cleantrack.example/dashboard/billing/")
		assert.True(t, strings.Contains(r.Email().Text, "None scheduled"))
	}
}

func TestNotifierErrors(t *testing.T) {
	t.Parallel()
	store, _ := newTestStoreOnly(t)
	accountID := seedAccount(t, store)
	n := NewNotifier(store, NewService(nil, store), "https://app.cleantrack.example")
	ctx := context.Background()
	assert.ErrorIs(t, n.SubscriptionCreated(ctx, 999, "sub_x", time.Time{}), postgres.ErrNotFound)
	assert.ErrorIs(t, n.PaymentFailed(ctx, accountID, "in_missing", 1), postgres.ErrNotFound)
	assert.ErrorContains(t, n.PaymentFailed(ctx, accountID+1, "in_1", 1), fmt.Sprintf("belongs to account %d", accountID))
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
