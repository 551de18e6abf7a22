package billing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/billing"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/stripetest"
	"github.com/cleantrack/jobs/tasks"
)

var shapes = []string{stripetest.Shape2023, stripetest.Shape2025}

// base is a fixed event time; tests move forward from it.
var base = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)

func TestEveryTypeInBothShapes(t *testing.T) {
	t.Parallel()
	periodEnd := base.AddDate(0, 1, 0)
	cases := []struct {
		typ string
		// prepare sets the account up; opts completes the event.
		prepare func(t *testing.T, f *fixture, accountID int64)
		opts    func(o *stripetest.EventOptions)
		check   func(t *testing.T, f *fixture, a postgres.Account, eventID string, o stripetest.EventOptions)
	}{
		{
			typ: tasks.EventCustomerCreated,
			check: func(t *testing.T, f *fixture, a postgres.Account, _ string, o stripetest.EventOptions) {
				assert.Equal(t, o.CustomerID, a.StripeCustomerID)
				assert.Empty(t, f.notifier.Calls())
			},
		},
		{
			typ:  tasks.EventSubscriptionCreated,
			opts: func(o *stripetest.EventOptions) { o.Status = "trialing"; o.PriceID = "price_pro_monthly" },
			check: func(t *testing.T, f *fixture, a postgres.Account, _ string, o stripetest.EventOptions) {
				assert.Equal(t, o.SubscriptionID, a.StripeSubscriptionID)
				assert.Equal(t, "trialing", a.Status)
				assert.Equal(t, "pro", a.Plan)
				require.NotNil(t, a.SubscriptionEndDate)
				assert.True(t, periodEnd.Equal(*a.SubscriptionEndDate), "end date %s", a.SubscriptionEndDate)
				assert.Equal(t, []notification{{Kind: "subscription_created", AccountID: a.ID, ObjectID: o.SubscriptionID}}, f.notifier.Calls())
			},
		},
		{
			typ:  tasks.EventSubscriptionUpdated,
			opts: func(o *stripetest.EventOptions) { o.Status = "past_due"; o.PriceID = "price_pro_monthly" },
			check: func(t *testing.T, f *fixture, a postgres.Account, _ string, o stripetest.EventOptions) {
				assert.Equal(t, o.SubscriptionID, a.StripeSubscriptionID)
				assert.Equal(t, "past_due", a.Status)
				assert.Equal(t, "pro", a.Plan)
				require.NotNil(t, a.SubscriptionEndDate)
				assert.True(t, periodEnd.Equal(*a.SubscriptionEndDate), "end date %s", a.SubscriptionEndDate)
				assert.Empty(t, f.notifier.Calls())
			},
		},
		{
			typ:  tasks.EventSubscriptionDeleted,
			opts: func(o *stripetest.EventOptions) { o.EndedAt = base.Add(-time.Hour) },
			check: func(t *testing.T, f *fixture, a postgres.Account, _ string, o stripetest.EventOptions) {
				assert.Equal(t, "canceled", a.Status)
				require.NotNil(t, a.SubscriptionEndDate)
				assert.True(t, base.Add(-time.Hour).Equal(*a.SubscriptionEndDate), "end date %s", a.SubscriptionEndDate)
			},
		},
		{
			typ:     tasks.EventInvoicePaymentSucceeded,
			prepare: func(t *testing.T, f *fixture, id int64) { f.setStatus(t, id, "past_due") },
			opts:    func(o *stripetest.EventOptions) { o.Amount = 12900; o.Currency = "eur" },
			check: func(t *testing.T, f *fixture, a postgres.Account, _ string, o stripetest.EventOptions) {
				assert.Equal(t, "active", a.Status)
				require.NotNil(t, a.LastPaymentAt)
				assert.True(t, base.Equal(*a.LastPaymentAt))
				require.NotNil(t, a.LastPaymentAmount)
				assert.EqualValues(t, 12900, *a.LastPaymentAmount)
				assert.Equal(t, "eur", a.LastPaymentCurrency)
			},
		},
		{
			typ: tasks.EventInvoicePaymentFailed,
			opts: func(o *stripetest.EventOptions) {
				o.Amount, o.Currency, o.AttemptCount = 4900, "usd", 2
				o.NextAttempt = base.Add(48 * time.Hour)
				o.HostedInvoiceURL = "https://invoice.stripe.com/i/acct_1/test_" + o.InvoiceID
			},
			check: func(t *testing.T, f *fixture, a postgres.Account, eventID string, o stripetest.EventOptions) {
				assert.Equal(t, "past_due", a.Status)
				pf, err := f.store.InvoicePaymentFailureByKey(context.Background(), o.InvoiceID, 2)
				require.NoError(t, err)
				assert.Equal(t, a.ID, pf.AccountID)
				assert.Equal(t, eventID, pf.StripeEventID)
				assert.EqualValues(t, 4900, pf.AmountDue)
				assert.Equal(t, "usd", pf.Currency)
				require.NotNil(t, pf.NextAttemptAt)
				assert.True(t, base.Add(48*time.Hour).Equal(*pf.NextAttemptAt))
				assert.Equal(t, "https://invoice.stripe.com/i/acct_1/test_"+o.InvoiceID, pf.HostedInvoiceURL)
				assert.Equal(t, []notification{{Kind: "payment_failed", AccountID: a.ID, ObjectID: o.InvoiceID, Attempt: 2}}, f.notifier.Calls())
			},
		},
	}
	// The subtests share one database (creating one costs more than the
	// test): each has its own account and Stripe ids, and its own handler and
	// notifier.
	shared := newFixture(t)
	shared.addPlan(t, "pro", "price_pro_monthly")
	n := 0
	for _, shape := range shapes {
		for _, expand := range []bool{false, true} {
			for _, tc := range cases {
				n++
				name := tc.typ + "/" + shape
				if expand {
					name += "/expanded"
				}
				suffix := fmt.Sprint(n)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					f := shared.fresh()
					customer := "cus_acme_" + suffix
					linked := customer
					if tc.typ == tasks.EventCustomerCreated {
						linked = "" // the event links it
					}
					id := f.createAccount(t, "acme-"+suffix, linked)
					if tc.prepare != nil {
						tc.prepare(t, f, id)
					}
					opts := stripetest.EventOptions{
						Type: tc.typ, Shape: shape, Expand: expand, Created: base,
						CustomerID: customer, AccountID: id, SubscriptionID: "sub_acme_" + suffix, InvoiceID: "in_acme_" + suffix,
						PeriodEnd: periodEnd,
					}
					if tc.opts != nil {
						tc.opts(&opts)
					}
					eventID := f.record(t, opts)

					require.NoError(t, f.process(t, eventID))

					ev := f.event(t, eventID)
					assert.Equal(t, postgres.InboxProcessed, ev.Status())
					assert.Equal(t, 1, ev.Attempts)
					assert.Empty(t, ev.LastError)
					assert.Empty(t, ev.Note)
					tc.check(t, f, f.account(t, id), eventID, opts)
				})
			}
		}
	}
}

func TestSameEventConcurrentlyHasOneEffect(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.createAccount(t, "acme", "cus_acme")
	eventID := f.record(t, stripetest.EventOptions{
		Type: tasks.EventInvoicePaymentFailed, Shape: stripetest.Shape2025, Created: base,
		CustomerID: "cus_acme", InvoiceID: "in_acme", AttemptCount: 1,
	})

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- f.process(t, eventID)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	ev := f.event(t, eventID)
	require.NotNil(t, ev.ProcessedAt)
	assert.Equal(t, 1, ev.Attempts, "only one run may apply the event")
	var rows int
	require.NoError(t, f.store.DB.Get(&rows, `SELECT count(*) FROM invoice_payment_failures WHERE invoice_id = 'in_acme'`))
	assert.Equal(t, 1, rows)
	assert.Equal(t, "past_due", f.account(t, id).Status)
	// Every run notifies (the email side deduplicates), none before the commit.
	calls := f.notifier.Calls()
	assert.Len(t, calls, 20)
	for _, c := range calls {
		assert.Equal(t, notification{Kind: "payment_failed", AccountID: id, ObjectID: "in_acme", Attempt: 1}, c)
	}

	// A later run changes nothing either.
	processedAt := *ev.ProcessedAt
	require.NoError(t, f.process(t, eventID))
	ev = f.event(t, eventID)
	assert.True(t, processedAt.Equal(*ev.ProcessedAt))
	assert.Equal(t, 1, ev.Attempts)
}

func TestOutOfOrderNewerStateWins(t *testing.T) {
	t.Parallel()
	shared := newFixture(t)
	shared.addPlan(t, "pro", "price_pro_monthly")
	for _, shape := range shapes {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			f := shared.fresh()
			cus, sub := "cus_acme_"+shape, "sub_acme_"+shape
			id := f.createAccount(t, "acme-"+shape, cus)
			created := f.record(t, stripetest.EventOptions{
				Type: tasks.EventSubscriptionCreated, Shape: shape, Created: base,
				CustomerID: cus, SubscriptionID: sub, Status: "incomplete",
				PriceID: "price_trial_monthly", PeriodEnd: base.AddDate(0, 0, 14),
			})
			updated := f.record(t, stripetest.EventOptions{
				Type: tasks.EventSubscriptionUpdated, Shape: shape, Created: base.Add(5 * time.Second),
				CustomerID: cus, SubscriptionID: sub, Status: "active",
				PriceID: "price_pro_monthly", PeriodEnd: base.AddDate(0, 1, 0),
			})

			require.NoError(t, f.process(t, updated))
			require.NoError(t, f.process(t, created))

			a := f.account(t, id)
			assert.Equal(t, "active", a.Status)
			assert.Equal(t, "pro", a.Plan)
			require.NotNil(t, a.SubscriptionEndDate)
			assert.True(t, base.AddDate(0, 1, 0).Equal(*a.SubscriptionEndDate))
			require.NotNil(t, a.BillingEventAt)
			assert.True(t, base.Add(5*time.Second).Equal(*a.BillingEventAt))

			stale := f.event(t, created)
			assert.Equal(t, postgres.InboxProcessed, stale.Status())
			assert.True(t, strings.HasPrefix(stale.Note, postgres.StaleNotePrefix), "note %q", stale.Note)
			assert.Contains(t, stale.Note, "account unchanged")
			assert.Empty(t, f.event(t, updated).Note)
			// The welcome email is about the subscription, not the account's
			// latest state: it still goes out for the late created event.
			assert.Equal(t, []notification{{Kind: "subscription_created", AccountID: id, ObjectID: sub}}, f.notifier.Calls())
		})
	}
}

func TestUnknownCustomerIsRecordedAndRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	eventID := f.record(t, stripetest.EventOptions{
		Type: tasks.EventSubscriptionCreated, Created: base, CustomerID: "cus_nobody",
	})

	err := f.process(t, eventID)
	require.Error(t, err)
	assert.False(t, isSkipRetry(err), "an unknown customer may be linked soon: retry")
	err = f.process(t, eventID)
	require.Error(t, err)

	ev := f.event(t, eventID)
	assert.Equal(t, postgres.InboxPending, ev.Status())
	assert.Equal(t, 2, ev.Attempts)
	assert.Equal(t, "no account has Stripe customer cus_nobody", ev.LastError)

	// Once the customer is linked, the retry applies it.
	id := f.createAccount(t, "late", "cus_nobody")
	require.NoError(t, f.process(t, eventID))
	ev = f.event(t, eventID)
	assert.Equal(t, postgres.InboxProcessed, ev.Status())
	assert.Equal(t, 3, ev.Attempts)
	assert.Equal(t, "active", f.account(t, id).Status)
}

func TestMalformedEventsFailAtOnce(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"subscription without customer": `{"id":"evt_m1","type":"customer.subscription.updated","created":1700000000,"data":{"object":{"id":"sub_1","status":"active"}}}`,
		"no object":                     `{"id":"evt_m2","type":"invoice.payment_failed","created":1700000000,"data":{}}`,
		"object of the wrong kind":      `{"id":"evt_m3","type":"invoice.payment_failed","created":1700000000,"data":{"object":{"id":"in_1","customer":"cus_1","amount_due":"lots"}}}`,
		"customer reference a number":   `{"id":"evt_m4","type":"customer.subscription.created","created":1700000000,"data":{"object":{"id":"sub_1","status":"active","customer":42}}}`,
		"customer without id":           `{"id":"evt_m5","type":"customer.created","created":1700000000,"data":{"object":{"email":"a@example.com"}}}`,
		"customer id no Stripe id is":   `{"id":"evt_m6","type":"invoice.payment_failed","created":1700000000,"data":{"object":{"id":"in_1","customer":"cus_` + strings.Repeat("x", 300) + `"}}}`,
	}
	shared := newFixture(t)
	shared.createAccount(t, "acme", "cus_1")
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := shared.fresh()
			eventID := f.recordRaw(t, []byte(payload))

			err := f.process(t, eventID)
			require.Error(t, err)
			assert.True(t, isSkipRetry(err), "malformed events must not be retried: %v", err)
			assert.True(t, errors.Is(err, billing.ErrMalformed))

			ev := f.event(t, eventID)
			assert.Equal(t, postgres.InboxFailed, ev.Status())
			assert.Equal(t, 1, ev.Attempts)
			assert.Contains(t, ev.LastError, "malformed event")
			assert.Contains(t, ev.LastError, eventID)
		})
	}
}

func TestUnknownPriceKeepsPlanWithWarning(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.createAccount(t, "acme", "cus_acme")
	eventID := f.record(t, stripetest.EventOptions{
		Type: tasks.EventSubscriptionUpdated, Shape: stripetest.Shape2025, Created: base,
		CustomerID: "cus_acme", SubscriptionID: "sub_acme", PriceID: "price_mystery", Status: "active",
	})

	require.NoError(t, f.process(t, eventID))

	a := f.account(t, id)
	assert.Equal(t, "trial", a.Plan)
	assert.Equal(t, "active", a.Status, "the rest of the event still applies")
	assert.Equal(t, "sub_acme", a.StripeSubscriptionID)
	ev := f.event(t, eventID)
	assert.Equal(t, postgres.InboxProcessed, ev.Status())
	assert.Equal(t, "warning: price price_mystery of subscription sub_acme matches no plan; plan left as trial", ev.Note)
}

func TestCustomerCreatedLinking(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// setup returns the metadata.account_id to send (0: none).
		setup    func(t *testing.T, f *fixture) int64
		linked   string // the customer the account named by setup ends with
		noteHas  string
		accounts func(t *testing.T, f *fixture) // extra checks
	}{
		{
			name:   "links an account without customer",
			setup:  func(t *testing.T, f *fixture) int64 { return f.createAccount(t, "acme", "") },
			linked: "cus_new",
		},
		{
			name:    "keeps an existing customer",
			setup:   func(t *testing.T, f *fixture) int64 { return f.createAccount(t, "acme", "cus_old") },
			linked:  "cus_old",
			noteHas: "already has Stripe customer cus_old; cus_new not linked",
		},
		{
			name: "customer already linked elsewhere",
			setup: func(t *testing.T, f *fixture) int64 {
				f.createAccount(t, "other", "cus_new")
				return f.createAccount(t, "acme", "")
			},
			linked:  "",
			noteHas: "Stripe customer cus_new is already linked to account",
		},
		{
			name:    "no metadata",
			setup:   func(t *testing.T, f *fixture) int64 { f.createAccount(t, "acme", ""); return 0 },
			noteHas: "customer cus_new has no metadata.account_id; no account linked",
		},
		{
			name:    "metadata names no account",
			setup:   func(t *testing.T, f *fixture) int64 { return 9999 },
			noteHas: "names account 9999 in metadata.account_id, and no such account exists",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			accountID := tc.setup(t, f)
			eventID := f.record(t, stripetest.EventOptions{Type: tasks.EventCustomerCreated, CustomerID: "cus_new", AccountID: accountID})

			require.NoError(t, f.process(t, eventID))

			ev := f.event(t, eventID)
			assert.Equal(t, postgres.InboxProcessed, ev.Status())
			if tc.noteHas == "" {
				assert.Empty(t, ev.Note)
			} else {
				assert.Contains(t, ev.Note, tc.noteHas)
			}
			if accountID != 0 && accountID != 9999 {
				assert.Equal(t, tc.linked, f.account(t, accountID).StripeCustomerID)
			}
		})
	}
}

func TestDeletedOldSubscriptionLeavesCurrentOne(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.createAccount(t, "acme", "cus_acme")
	current := f.record(t, stripetest.EventOptions{
		Type: tasks.EventSubscriptionCreated, Created: base, CustomerID: "cus_acme", SubscriptionID: "sub_new",
	})
	require.NoError(t, f.process(t, current))
	old := f.record(t, stripetest.EventOptions{
		Type: tasks.EventSubscriptionDeleted, Created: base.Add(time.Minute), CustomerID: "cus_acme", SubscriptionID: "sub_old",
	})

	require.NoError(t, f.process(t, old))

	a := f.account(t, id)
	assert.Equal(t, "active", a.Status)
	assert.Equal(t, "sub_new", a.StripeSubscriptionID)
	assert.Contains(t, f.event(t, old).Note, "subscription sub_old is not account")
}

func TestPaymentSucceededLeavesHealthyStatus(t *testing.T) {
	t.Parallel()
	shared := newFixture(t)
	for _, status := range []string{"trialing", "canceled", "active"} {
		t.Run(status, func(t *testing.T) {
			t.Parallel()
			f := shared.fresh()
			id := f.createAccount(t, "acme-"+status, "cus_acme_"+status)
			f.setStatus(t, id, status)
			eventID := f.record(t, stripetest.EventOptions{Type: tasks.EventInvoicePaymentSucceeded, Created: base, CustomerID: "cus_acme_" + status, Amount: 100})

			require.NoError(t, f.process(t, eventID))

			a := f.account(t, id)
			assert.Equal(t, status, a.Status)
			require.NotNil(t, a.LastPaymentAmount)
			assert.EqualValues(t, 100, *a.LastPaymentAmount)
		})
	}
}

func TestNotifierFailureRetriesAndNotifiesAgain(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.createAccount(t, "acme", "cus_acme")
	eventID := f.record(t, stripetest.EventOptions{
		Type: tasks.EventSubscriptionCreated, Created: base, CustomerID: "cus_acme", SubscriptionID: "sub_acme",
	})
	f.notifier.setFailure(errors.New("redis: connection refused"))

	err := f.process(t, eventID)
	require.Error(t, err)
	assert.False(t, isSkipRetry(err))

	ev := f.event(t, eventID)
	assert.Equal(t, postgres.InboxProcessed, ev.Status(), "the account change committed before the notification")
	assert.Contains(t, ev.LastError, "notifying account")
	assert.Equal(t, "active", f.account(t, id).Status)

	f.notifier.setFailure(nil)
	require.NoError(t, f.process(t, eventID))
	assert.Equal(t, []notification{{Kind: "subscription_created", AccountID: id, ObjectID: "sub_acme"}}, f.notifier.Calls())
}

func TestNilNotifier(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.notify = nil
	f.rebuild()
	id := f.createAccount(t, "acme", "cus_acme")
	eventID := f.record(t, stripetest.EventOptions{Type: tasks.EventInvoicePaymentFailed, Created: base, CustomerID: "cus_acme"})

	require.NoError(t, f.process(t, eventID))
	require.NoError(t, f.process(t, eventID))
	assert.Equal(t, "past_due", f.account(t, id).Status)
}

func TestUnsupportedTypeIsNotedNotFailed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	eventID := f.recordRaw(t, []byte(`{"id":"evt_u1","type":"charge.refunded","created":1700000000,"data":{"object":{"id":"ch_1"}}}`))

	require.NoError(t, f.process(t, eventID))
	ev := f.event(t, eventID)
	assert.Equal(t, postgres.InboxProcessed, ev.Status())
	assert.Contains(t, ev.Note, "charge.refunded is not one CleanTrack applies")
}
