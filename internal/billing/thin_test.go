package billing_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/inbox"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/stripeapi"
	"github.com/cleantrack/jobs/internal/stripetest"
	"github.com/cleantrack/jobs/internal/testfactory"
	"github.com/cleantrack/jobs/tasks"
)

// fetchTime is the fixed clock of handlers that fetch: every fetched object
// counts as the state at this moment.
var fetchTime = base.Add(10 * time.Minute)

// withStripe gives f's handler a Stripe client on a fake API and the fixed
// clock, and returns the fake.
func (f *fixture) withStripe(t *testing.T) *stripetest.API {
	t.Helper()
	api := stripetest.NewAPI()
	t.Cleanup(api.Close)
	c, err := stripeapi.New(stripeapi.Config{Key: "sk_test_billing", BaseURL: api.URL(),
		Sleep: func(context.Context, time.Duration) error { return nil }})
	require.NoError(t, err)
	f.opts.Stripe = c
	f.opts.Now = func() time.Time { return fetchTime }
	f.rebuild()
	return api
}

// recordThin stores a thin event in the inbox as the intake would.
func (f *fixture) recordThin(t *testing.T, o stripetest.ThinEventOptions) string {
	t.Helper()
	payload, err := stripetest.BuildThinEvent(o)
	require.NoError(t, err)
	ev, err := inbox.Decode(payload)
	require.NoError(t, err)
	dup, err := f.store.InsertStripeEvent(context.Background(), postgres.StripeEvent{
		ID: ev.ID, Type: ev.SnapshotType(), Livemode: ev.Livemode, CreatedAt: ev.Created, Payload: payload,
		Kind: ev.Kind, SnapshotEvent: ev.SnapshotEvent,
	})
	require.NoError(t, err)
	require.False(t, dup)
	return ev.ID
}

// paths lists the paths of the requests the fake API received.
func paths(api *stripetest.API) []string {
	var out []string
	for _, r := range api.Requests() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

func TestThinEventOfEachTypeIsAppliedFromTheFetchedObject(t *testing.T) {
	t.Parallel()
	shared := newFixture(t)
	shared.addPlan(t, "pro", "price_pro_monthly")
	periodEnd := base.AddDate(0, 1, 0)
	cases := []struct {
		typ string
		// prepare puts the object in the fake API (and sets the account
		// up); it returns the object's id.
		prepare func(t *testing.T, f *fixture, api *stripetest.API, accountID int64) string
		check   func(t *testing.T, f *fixture, a postgres.Account, objectID string)
	}{
		{tasks.EventCustomerCreated,
			func(t *testing.T, f *fixture, api *stripetest.API, id int64) string {
				api.PutCustomer(stripetest.Customer{ID: "cus_thin_new", AccountID: id})
				return "cus_thin_new"
			},
			func(t *testing.T, f *fixture, a postgres.Account, id string) {
				assert.Equal(t, "cus_thin_new", a.StripeCustomerID)
			}},
		{tasks.EventSubscriptionCreated,
			func(t *testing.T, f *fixture, api *stripetest.API, id int64) string {
				api.PutSubscription(stripetest.Subscription{ID: "sub_thin_c", Customer: customerOf(t, f, id), Status: "trialing", PriceID: "price_pro_monthly", PeriodEnd: periodEnd})
				return "sub_thin_c"
			},
			func(t *testing.T, f *fixture, a postgres.Account, id string) {
				assert.Equal(t, id, a.StripeSubscriptionID)
				assert.Equal(t, "trialing", a.Status)
				assert.Equal(t, "pro", a.Plan)
				require.NotNil(t, a.SubscriptionEndDate)
				assert.True(t, periodEnd.Equal(*a.SubscriptionEndDate))
				assert.Equal(t, []notification{{Kind: "subscription_created", AccountID: a.ID, ObjectID: id}}, f.notifier.Calls())
			}},
		{tasks.EventSubscriptionUpdated,
			func(t *testing.T, f *fixture, api *stripetest.API, id int64) string {
				api.PutSubscription(stripetest.Subscription{ID: "sub_thin_u", Customer: customerOf(t, f, id), Status: "past_due", PriceID: "price_pro_monthly", PeriodEnd: periodEnd})
				return "sub_thin_u"
			},
			func(t *testing.T, f *fixture, a postgres.Account, id string) {
				assert.Equal(t, id, a.StripeSubscriptionID)
				assert.Equal(t, "past_due", a.Status)
				assert.Equal(t, "pro", a.Plan)
				assert.Empty(t, f.notifier.Calls())
			}},
		{tasks.EventSubscriptionDeleted,
			func(t *testing.T, f *fixture, api *stripetest.API, id int64) string {
				api.PutSubscription(stripetest.Subscription{ID: "sub_thin_d", Customer: customerOf(t, f, id), Status: "canceled", EndedAt: base.Add(-time.Hour)})
				return "sub_thin_d"
			},
			func(t *testing.T, f *fixture, a postgres.Account, id string) {
				assert.Equal(t, "canceled", a.Status)
				require.NotNil(t, a.SubscriptionEndDate)
				assert.True(t, base.Add(-time.Hour).Equal(*a.SubscriptionEndDate))
			}},
		{tasks.EventInvoicePaymentSucceeded,
			func(t *testing.T, f *fixture, api *stripetest.API, id int64) string {
				f.setStatus(t, id, "past_due")
				api.PutInvoice(stripetest.Invoice{ID: "in_thin_ok", Customer: customerOf(t, f, id), Subscription: "sub_x", Amount: 12900, Currency: "eur", Paid: true, Created: base})
				return "in_thin_ok"
			},
			func(t *testing.T, f *fixture, a postgres.Account, id string) {
				assert.Equal(t, "active", a.Status)
				require.NotNil(t, a.LastPaymentAmount)
				assert.Equal(t, int64(12900), *a.LastPaymentAmount)
				assert.Equal(t, "eur", a.LastPaymentCurrency)
			}},
		{tasks.EventInvoicePaymentFailed,
			func(t *testing.T, f *fixture, api *stripetest.API, id int64) string {
				api.PutInvoice(stripetest.Invoice{ID: "in_thin_fail", Customer: customerOf(t, f, id), Subscription: "sub_x", AttemptCount: 2, NextAttempt: base.Add(72 * time.Hour)})
				return "in_thin_fail"
			},
			func(t *testing.T, f *fixture, a postgres.Account, id string) {
				assert.Equal(t, "past_due", a.Status)
				fail, err := f.store.InvoicePaymentFailureByKey(context.Background(), id, 2)
				require.NoError(t, err)
				assert.Equal(t, a.ID, fail.AccountID)
				assert.Equal(t, []notification{{Kind: "payment_failed", AccountID: a.ID, ObjectID: id, Attempt: 2}}, f.notifier.Calls())
			}},
	}
	for i, tc := range cases {
		t.Run(tc.typ, func(t *testing.T) {
			f := shared.fresh()
			api := f.withStripe(t)
			customer := ""
			if tc.typ != tasks.EventCustomerCreated {
				customer = "cus_thin_" + string(rune('a'+i))
			}
			accountID := f.createAccount(t, "thin-"+string(rune('a'+i)), customer)
			objectID := tc.prepare(t, f, api, accountID)
			id := f.recordThin(t, stripetest.ThinEventOptions{Type: tasks.ThinEventPrefix + tc.typ, ObjectID: objectID, Created: base})

			require.NoError(t, f.process(t, id))
			tc.check(t, f, f.account(t, accountID), objectID)

			row := f.event(t, id)
			assert.NotNil(t, row.ProcessedAt)
			assert.Equal(t, postgres.KindThin, row.Kind)
			require.NotNil(t, row.FetchedAt, "the fetched object is kept")
			assert.True(t, fetchTime.Equal(*row.FetchedAt))
			var kept struct {
				ID string `json:"id"`
			}
			require.NoError(t, json.Unmarshal(row.FetchedObject, &kept))
			assert.Equal(t, objectID, kept.ID)
			kind := map[string]string{tasks.EventCustomerCreated: "customers", tasks.EventInvoicePaymentFailed: "invoices", tasks.EventInvoicePaymentSucceeded: "invoices"}[tc.typ]
			if kind == "" {
				kind = "subscriptions"
			}
			assert.Equal(t, []string{"GET /v1/" + kind + "/" + objectID}, paths(api), "built from the type and id")
			if tc.typ != tasks.EventCustomerCreated {
				a := f.account(t, accountID)
				require.NotNil(t, a.BillingEventAt)
				assert.True(t, fetchTime.Equal(*a.BillingEventAt), "a fetched object counts as the state at the fetch: %s", a.BillingEventAt)
			}
		})
	}
}

func customerOf(t *testing.T, f *fixture, accountID int64) string {
	t.Helper()
	return f.account(t, accountID).StripeCustomerID
}

// A fetched object is newer than every event created before the fetch: a
// snapshot event created earlier but processed later is stale.
func TestFetchedObjectOutranksOlderEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	api := f.withStripe(t)
	id := f.createAccount(t, "outrank", "cus_outrank")
	api.PutSubscription(stripetest.Subscription{ID: "sub_o", Customer: "cus_outrank", Status: "active"})
	thin := f.recordThin(t, stripetest.ThinEventOptions{Type: "v1.customer.subscription.updated", ObjectID: "sub_o", Created: base})
	require.NoError(t, f.process(t, thin))

	// Created after the thin event, but before the fetch: stale.
	late := f.record(t, stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated, CustomerID: "cus_outrank", SubscriptionID: "sub_o", Status: "past_due", Created: base.Add(time.Minute)})
	require.NoError(t, f.process(t, late))
	assert.Equal(t, "active", f.account(t, id).Status)
	assert.Contains(t, f.event(t, late).Note, "stale: ")

	// A thin event fetched later again is newer than anything before.
	api.PutSubscription(stripetest.Subscription{ID: "sub_o", Customer: "cus_outrank", Status: "unpaid"})
	f.opts.Now = func() time.Time { return fetchTime.Add(time.Hour) }
	f.rebuild()
	again := f.recordThin(t, stripetest.ThinEventOptions{Type: "v1.customer.subscription.updated", ObjectID: "sub_o", Created: base.Add(2 * time.Minute)})
	require.NoError(t, f.process(t, again))
	assert.Equal(t, "unpaid", f.account(t, id).Status)
}

// twinWorld is an account whose events reach a real email notifier, so that
// emails are counted as the email:send tasks in Redis.
type twinWorld struct {
	f       *fixture
	api     *stripetest.API
	insp    *asynq.Inspector
	account int64
}

func newTwinWorld(t *testing.T, f *fixture, slug, customer string) *twinWorld {
	t.Helper()
	_, client, insp := f.withQueue(t)
	f.notify = email.NewNotifier(f.store, email.NewService(client, f.store), "https://app.example")
	api := f.withStripe(t) // rebuilds with the notifier
	acct := testfactory.Account(t, f.store, &testfactory.AccountOpts{Slug: slug, StripeCustomerID: customer})
	testfactory.Member(t, f.store, acct.ID, "admin", nil)
	return &twinWorld{f: f, api: api, insp: insp, account: acct.ID}
}

// emails returns the keys of the queued email:send tasks.
func (w *twinWorld) emails(t *testing.T) []string {
	t.Helper()
	list, err := w.insp.ListPendingTasks(tasks.Types[tasks.TypeEmailSend].Queue)
	if err != nil {
		return nil
	}
	var keys []string
	for _, ti := range list {
		keys = append(keys, ti.ID)
	}
	return keys
}

// Snapshot and thin event of the same change, in both orders and delivered
// again: one account change, one welcome email, one payment-failed email
// per recipient and attempt.
func TestSnapshotAndThinTwinsMakeOneChange(t *testing.T) {
	t.Parallel()
	shared := newFixture(t)
	shared.addPlan(t, "pro", "price_pro_monthly")
	type twins struct{ snapshot, thin string }
	for _, order := range []string{"snapshot first", "thin first"} {
		t.Run("subscription created, "+order, func(t *testing.T) {
			f := shared.fresh()
			cus := "cus_twin_sub_" + map[string]string{"snapshot first": "s", "thin first": "t"}[order]
			w := newTwinWorld(t, f, "twin-sub-"+cus[len(cus)-1:], cus)
			w.api.PutSubscription(stripetest.Subscription{ID: "sub_" + cus, Customer: cus, Status: "trialing", PriceID: "price_pro_monthly"})
			snap := f.record(t, stripetest.EventOptions{Type: tasks.EventSubscriptionCreated, CustomerID: cus, SubscriptionID: "sub_" + cus,
				Status: "trialing", PriceID: "price_pro_monthly", Created: base})
			thin := f.recordThin(t, stripetest.ThinEventOptions{Type: "v1.customer.subscription.created", ObjectID: "sub_" + cus, SnapshotEvent: snap, Created: base})
			tw := twins{snap, thin}
			seq := []string{tw.snapshot, tw.thin, tw.snapshot, tw.thin, tw.thin, tw.snapshot}
			if order == "thin first" {
				seq = []string{tw.thin, tw.snapshot, tw.thin, tw.snapshot, tw.snapshot, tw.thin}
			}
			for _, id := range seq {
				require.NoError(t, f.process(t, id))
			}
			first, later := tw.snapshot, tw.thin
			if order == "thin first" {
				first, later = tw.thin, tw.snapshot
			}
			assert.Empty(t, f.event(t, first).TwinOf)
			assert.Equal(t, first, f.event(t, later).TwinOf)
			assert.Contains(t, f.event(t, later).Note, "was applied first; nothing changed")
			a := f.account(t, w.account)
			assert.Equal(t, "sub_"+cus, a.StripeSubscriptionID)
			assert.Equal(t, "pro", a.Plan)
			require.NotNil(t, a.BillingEventAt)
			if order == "snapshot first" {
				assert.True(t, base.Equal(*a.BillingEventAt), "the thin twin did not change the account again: %s", a.BillingEventAt)
				assert.Empty(t, paths(w.api), "nothing fetched for a twin already applied")
			} else {
				assert.True(t, fetchTime.Equal(*a.BillingEventAt))
			}
			assert.Equal(t, []string{email.WelcomeKey("sub_" + cus)}, w.emails(t), "one welcome email")
		})

		t.Run("payment failed, "+order, func(t *testing.T) {
			f := shared.fresh()
			cus := "cus_twin_inv_" + map[string]string{"snapshot first": "s", "thin first": "t"}[order]
			w := newTwinWorld(t, f, "twin-inv-"+cus[len(cus)-1:], cus)
			// By the time the thin event is fetched, Stripe has tried again:
			// the invoice says attempt 2, the snapshot event attempt 1.
			w.api.PutInvoice(stripetest.Invoice{ID: "in_" + cus, Customer: cus, Subscription: "sub_1", AttemptCount: 2, NextAttempt: base.Add(48 * time.Hour)})
			snap := f.record(t, stripetest.EventOptions{Type: tasks.EventInvoicePaymentFailed, CustomerID: cus, InvoiceID: "in_" + cus, AttemptCount: 1, Created: base})
			thin := f.recordThin(t, stripetest.ThinEventOptions{Type: "v1.invoice.payment_failed", ObjectID: "in_" + cus, SnapshotEvent: snap, Created: base})
			seq := []string{snap, thin, thin, snap}
			if order == "thin first" {
				seq = []string{thin, snap, snap, thin}
			}
			for _, id := range seq {
				require.NoError(t, f.process(t, id))
			}
			var failures int
			require.NoError(t, f.store.DB.Get(&failures, `SELECT count(*) FROM invoice_payment_failures WHERE invoice_id = $1`, "in_"+cus))
			assert.Equal(t, 1, failures, "one failed attempt recorded")
			assert.Len(t, w.emails(t), 2, "one email to the owner and one to the admin: %v", w.emails(t))
			assert.Equal(t, "past_due", f.account(t, w.account).Status)
		})
	}

	t.Run("both at once", func(t *testing.T) {
		f := shared.fresh()
		w := newTwinWorld(t, f, "twin-race", "cus_twin_race")
		w.api.PutSubscription(stripetest.Subscription{ID: "sub_race", Customer: "cus_twin_race", Status: "active"})
		snap := f.record(t, stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated, CustomerID: "cus_twin_race", SubscriptionID: "sub_race", Created: base})
		thin := f.recordThin(t, stripetest.ThinEventOptions{Type: "v1.customer.subscription.updated", ObjectID: "sub_race", SnapshotEvent: snap, Created: base})
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := snap
				if i%2 == 1 {
					id = thin
				}
				assert.NoError(t, f.process(t, id))
			}()
		}
		wg.Wait()
		s, th := f.event(t, snap), f.event(t, thin)
		require.NotNil(t, s.ProcessedAt)
		require.NotNil(t, th.ProcessedAt)
		assert.True(t, (s.TwinOf == thin) != (th.TwinOf == snap), "exactly one is the twin of the other: %q %q", s.TwinOf, th.TwinOf)
	})
}

// A related_object.url that is absolute or not the object's own path is
// refused as malformed, and nothing is fetched.
func TestThinRelatedObjectURLElsewhereIsRefused(t *testing.T) {
	t.Parallel()
	shared := newFixture(t)
	for name, o := range map[string]stripetest.ThinEventOptions{
		"absolute":             {URL: "https://evil.example/v1/subscriptions/sub_u"},
		"absolute, Stripe":     {URL: "https://api.stripe.com/v1/subscriptions/sub_u"},
		"scheme-relative":      {URL: "//evil.example/v1/subscriptions/sub_u"},
		"another subscription": {URL: "/v1/subscriptions/sub_other"},
		"another kind":         {URL: "/v1/customers/cus_u"},
		"with a query":         {URL: "/v1/subscriptions/sub_u?expand[]=customer"},
		"a type that is not":   {ObjectType: "customer", URL: "/v1/customers/sub_u"},
		"an id that is a path": {ObjectID: "sub_u/../../v1/charges", URL: "/v1/subscriptions/sub_u/../../v1/charges"},
	} {
		t.Run(name, func(t *testing.T) {
			f := shared.fresh()
			api := f.withStripe(t)
			api.PutSubscription(stripetest.Subscription{ID: "sub_u", Customer: "cus_u"})
			o.Type = "v1.customer.subscription.updated"
			if o.ObjectID == "" {
				o.ObjectID = "sub_u"
			}
			id := f.recordThin(t, o)
			err := f.process(t, id)
			require.Error(t, err)
			assert.True(t, isSkipRetry(err), "malformed, not retried: %v", err)
			row := f.event(t, id)
			assert.NotNil(t, row.FailedAt)
			assert.Contains(t, row.LastError, "nothing fetched")
			assert.Empty(t, api.Requests(), "no request made")
		})
	}
}

// Without STRIPE_SECRET_KEY a thin event stays recorded and its task is
// retried with an error naming the variable.
func TestThinEventWithoutAKeyIsRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.createAccount(t, "nokey", "cus_nokey")
	id := f.recordThin(t, stripetest.ThinEventOptions{Type: "v1.customer.subscription.updated", ObjectID: "sub_nokey"})
	err := f.process(t, id)
	require.Error(t, err)
	assert.False(t, isSkipRetry(err), "retried")
	assert.Contains(t, err.Error(), "STRIPE_SECRET_KEY")
	row := f.event(t, id)
	assert.Nil(t, row.FailedAt)
	assert.Nil(t, row.ProcessedAt)
	assert.Equal(t, 1, row.Attempts)
	assert.Contains(t, row.LastError, "STRIPE_SECRET_KEY is not set on the worker")
}

// An object Stripe does not have is a permanent failure; a 5xx is retried.
func TestThinEventFetchFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	api := f.withStripe(t)
	f.createAccount(t, "fetchfail", "cus_ff")
	gone := f.recordThin(t, stripetest.ThinEventOptions{Type: "v1.customer.subscription.updated", ObjectID: "sub_gone"})
	err := f.process(t, gone)
	require.Error(t, err)
	assert.True(t, isSkipRetry(err))
	assert.Contains(t, f.event(t, gone).LastError, "stripe API GET /v1/subscriptions/sub_gone: 404 resource_missing")

	api.PutSubscription(stripetest.Subscription{ID: "sub_ff", Customer: "cus_ff"})
	api.SetHook(func(int, stripetest.Request) *stripetest.Reply { return &stripetest.Reply{Status: 500} })
	down := f.recordThin(t, stripetest.ThinEventOptions{Type: "v1.customer.subscription.updated", ObjectID: "sub_ff"})
	err = f.process(t, down)
	require.Error(t, err)
	assert.False(t, isSkipRetry(err))
	assert.Contains(t, err.Error(), "500")

	// Rate limits that outlast the client's retries go back to the queue
	// without using up the event's retries, after Retry-After.
	api.SetHook(func(int, stripetest.Request) *stripetest.Reply {
		return &stripetest.Reply{Status: 429, RetryAfter: "40"}
	})
	err = f.process(t, down)
	require.Error(t, err)
	assert.False(t, queue.IsFailure(err), "a rate limit is not a failure")
	assert.Equal(t, 40*time.Second, queue.RetryDelay(1, err, nil))

	api.SetHook(nil)
	require.NoError(t, f.process(t, down), "applied once Stripe answers")
}

// A thin payment_failed fetched after the invoice was paid records the
// failed attempt but does not put the account back to past_due.
func TestThinPaymentFailedOfAPaidInvoice(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	api := f.withStripe(t)
	id := f.createAccount(t, "paidlater", "cus_pl")
	api.PutInvoice(stripetest.Invoice{ID: "in_pl", Customer: "cus_pl", Subscription: "sub_pl", Paid: true})
	ev := f.recordThin(t, stripetest.ThinEventOptions{Type: "v1.invoice.payment_failed", ObjectID: "in_pl"})
	require.NoError(t, f.process(t, ev))
	assert.Equal(t, "trialing", f.account(t, id).Status)
	assert.Contains(t, f.event(t, ev).Note, "is paid as fetched at")
	_, err := f.store.InvoicePaymentFailureByKey(context.Background(), "in_pl", 1)
	assert.NoError(t, err)
}
