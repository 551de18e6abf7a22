package stripetest_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/cleantrack/jobs/internal/stripetest"
)

// stripeClient is stripe-go v76 pointed at the fake.
func stripeClient(t *testing.T, api *stripetest.API, key string, retries int64) *client.API {
	t.Helper()
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(api.URL()),
		MaxNetworkRetries: stripe.Int64(retries),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	return client.New(key, &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
}

func newAPI(t *testing.T) *stripetest.API {
	api := stripetest.NewAPI()
	t.Cleanup(api.Close)
	return api
}

func TestAPIServesObjectsInTheClientsShape(t *testing.T) {
	t.Parallel()
	api := newAPI(t)
	end := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	api.PutCustomer(stripetest.Customer{ID: "cus_1", Email: "owner@example.com", AccountID: 42})
	api.PutSubscription(stripetest.Subscription{ID: "sub_1", Customer: "cus_1", Status: "past_due", PeriodEnd: end})
	api.PutInvoice(stripetest.Invoice{ID: "in_1", Customer: "cus_1", Subscription: "sub_1", AttemptCount: 2})
	sc := stripeClient(t, api, "sk_test_123", 0)

	c, err := sc.Customers.Get("cus_1", nil)
	require.NoError(t, err)
	assert.Equal(t, "owner@example.com", c.Email)
	assert.Equal(t, "42", c.Metadata["account_id"])

	// stripe-go v76 pins 2023-10-16: the period end is on the subscription.
	s, err := sc.Subscriptions.Get("sub_1", nil)
	require.NoError(t, err)
	assert.Equal(t, stripe.SubscriptionStatusPastDue, s.Status)
	assert.Equal(t, end.Unix(), s.CurrentPeriodEnd)
	assert.Equal(t, "cus_1", s.Customer.ID)

	in, err := sc.Invoices.Get("in_1", nil)
	require.NoError(t, err)
	require.NotNil(t, in.Subscription)
	assert.Equal(t, "sub_1", in.Subscription.ID)
	assert.Equal(t, int64(2), in.AttemptCount)

	_, err = sc.Subscriptions.Get("sub_missing", nil)
	var se *stripe.Error
	require.True(t, errors.As(err, &se), "%v", err)
	assert.Equal(t, 404, se.HTTPStatusCode)
	assert.Equal(t, stripe.ErrorCodeResourceMissing, se.Code)
	assert.Equal(t, "No such subscription: 'sub_missing'", se.Msg)

	reqs := api.Requests()
	require.Len(t, reqs, 4)
	assert.Equal(t, "GET", reqs[1].Method)
	assert.Equal(t, "/v1/subscriptions/sub_1", reqs[1].Path)
	assert.Equal(t, "2023-10-16", reqs[1].Header.Get("Stripe-Version"))
	assert.Equal(t, "Bearer sk_test_123", reqs[1].Header.Get("Authorization"))
	assert.Equal(t, 404, reqs[3].Status)
}

func TestAPIListsSubscriptionsOfACustomer(t *testing.T) {
	t.Parallel()
	api := newAPI(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	api.PutSubscription(stripetest.Subscription{ID: "sub_old", Customer: "cus_1", Status: "canceled", Created: base})
	api.PutSubscription(stripetest.Subscription{ID: "sub_new", Customer: "cus_1", Status: "active", Created: base.Add(time.Minute)})
	api.PutSubscription(stripetest.Subscription{ID: "sub_other", Customer: "cus_2", Created: base})
	sc := stripeClient(t, api, "sk_test_123", 0)

	ids := func(p *stripe.SubscriptionListParams) []string {
		var out []string
		it := sc.Subscriptions.List(p)
		for it.Next() {
			out = append(out, it.Subscription().ID)
		}
		require.NoError(t, it.Err())
		return out
	}
	assert.Equal(t, []string{"sub_new", "sub_old"}, ids(&stripe.SubscriptionListParams{Customer: stripe.String("cus_1"), Status: stripe.String("all")}))
	assert.Equal(t, []string{"sub_new"}, ids(&stripe.SubscriptionListParams{Customer: stripe.String("cus_1")}), "canceled ones only with status=all")
	assert.Equal(t, "cus_1", api.Requests()[0].Query.Get("customer"))
	assert.Equal(t, "all", api.Requests()[0].Query.Get("status"))
}

func TestAPIListsEventsAsStripePagesThem(t *testing.T) {
	t.Parallel()
	api := newAPI(t)
	base := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	var want []string // oldest first
	for i := range 25 {
		typ := "customer.subscription.updated"
		if i%5 == 0 {
			typ = "charge.refunded" // a type CleanTrack does not ask for
			raw := fmt.Appendf(nil, `{"id":"evt_charge_%d","object":"event","type":%q,"created":%d,"data":{"object":{}}}`, i, typ, base.Add(time.Duration(i)*time.Minute).Unix())
			require.NoError(t, api.AddEvent(raw))
			continue
		}
		id := fmt.Sprintf("evt_%02d", i)
		raw, err := stripetest.BuildEvent(stripetest.EventOptions{Type: typ, ID: id, Created: base.Add(time.Duration(i) * time.Minute), Shape: stripetest.Shapes[i%2]})
		require.NoError(t, err)
		require.NoError(t, api.AddEvent(raw))
		if i >= 3 {
			want = append(want, id)
		}
	}
	sc := stripeClient(t, api, "sk_test_123", 0)

	// Newest first through every page (20 events, 7 at a time), filtered by
	// type and created.
	params := &stripe.EventListParams{
		Types:        stripe.StringSlice([]string{"customer.subscription.updated", "invoice.payment_failed"}),
		CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: base.Add(3 * time.Minute).Unix()},
	}
	params.Limit = stripe.Int64(7)
	var got []string
	it := sc.Events.List(params)
	for it.Next() {
		got = append(got, it.Event().ID)
	}
	require.NoError(t, it.Err())
	newestFirst := make([]string, len(want))
	for i, id := range want {
		newestFirst[len(want)-1-i] = id
	}
	assert.Equal(t, newestFirst, got)
	reqs := api.Requests()
	require.Len(t, reqs, 3, "three pages")
	assert.Equal(t, "customer.subscription.updated", reqs[0].Query.Get("types[0]"))
	assert.Equal(t, got[6], reqs[1].Query.Get("starting_after"))

	// Walking back from the oldest with ending_before gives the newer ones,
	// oldest first, as a catch-up reads them.
	params = &stripe.EventListParams{Types: stripe.StringSlice([]string{"customer.subscription.updated"})}
	params.EndingBefore = stripe.String(want[0])
	params.Limit = stripe.Int64(4)
	got = nil
	it = sc.Events.List(params)
	for it.Next() {
		got = append(got, it.Event().ID)
	}
	require.NoError(t, it.Err())
	assert.Equal(t, want[1:], got)
}

func TestAPIScriptedFailuresAndStripesRetryHeaders(t *testing.T) {
	t.Parallel()
	api := newAPI(t)
	api.PutCustomer(stripetest.Customer{ID: "cus_1"})
	api.ReplyNext(stripetest.Reply{Status: 429, RetryAfter: "1", ShouldRetry: "true"})
	sc := stripeClient(t, api, "sk_live_123", 1)

	_, err := sc.Customers.Get("cus_1", nil)
	require.NoError(t, err, "stripe-go retries when Stripe-Should-Retry says so")
	reqs := api.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, []int{429, 200}, []int{reqs[0].Status, reqs[1].Status})

	api.ReplyNext(stripetest.Reply{Status: 500, ShouldRetry: "false"})
	_, err = sc.Customers.Get("cus_1", nil)
	var se *stripe.Error
	require.True(t, errors.As(err, &se))
	assert.Equal(t, 500, se.HTTPStatusCode)
	assert.Equal(t, stripe.ErrorTypeAPI, se.Type)
	assert.Len(t, api.Requests(), 3, "no retry against Stripe-Should-Retry: false")

	bal, err := sc.Balance.Get(nil)
	require.NoError(t, err)
	assert.True(t, bal.Livemode, "a live key sees live mode")

	_, err = stripeClient(t, api, "pk_test_123", 0).Customers.Get("cus_1", nil)
	require.True(t, errors.As(err, &se))
	assert.Equal(t, 401, se.HTTPStatusCode)
}
