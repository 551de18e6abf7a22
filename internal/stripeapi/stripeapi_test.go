package stripeapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/stripeapi"
	"github.com/cleantrack/jobs/internal/stripetest"
)

// waits records the client's waits instead of sleeping.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(_ context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return nil
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

func newClient(t *testing.T, api *stripetest.API, cfg stripeapi.Config) (*stripeapi.Client, *waits) {
	t.Helper()
	w := &waits{}
	if cfg.Key == "" {
		cfg.Key = "sk_test_123"
	}
	cfg.BaseURL = api.URL()
	if cfg.Sleep == nil {
		cfg.Sleep = w.sleep
	}
	c, err := stripeapi.New(cfg)
	require.NoError(t, err)
	return c, w
}

func newAPI(t *testing.T) *stripetest.API {
	api := stripetest.NewAPI()
	t.Cleanup(api.Close)
	return api
}

func TestNewNeedsAKey(t *testing.T) {
	t.Parallel()
	_, err := stripeapi.New(stripeapi.Config{})
	assert.ErrorIs(t, err, stripeapi.ErrNoKey)
	assert.ErrorContains(t, err, "STRIPE_SECRET_KEY")
	_, err = stripeapi.New(stripeapi.Config{Key: "sk_test_1", BaseURL: "ftp://x"})
	assert.ErrorContains(t, err, "STRIPE_API_BASE")
}

func TestObjectsComeBackAsStripeSentThem(t *testing.T) {
	t.Parallel()
	api := newAPI(t)
	end := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	api.PutSubscription(stripetest.Subscription{ID: "sub_1", Customer: "cus_1", Status: "past_due", PeriodEnd: end})
	api.PutCustomer(stripetest.Customer{ID: "cus_1", AccountID: 7})
	api.PutInvoice(stripetest.Invoice{ID: "in_1", Customer: "cus_1", Subscription: "sub_1"})
	c, _ := newClient(t, api, stripeapi.Config{})

	raw, err := c.Object(context.Background(), stripeapi.ObjectSubscription, "sub_1")
	require.NoError(t, err)
	var sub struct {
		ID               string `json:"id"`
		Status           string `json:"status"`
		CurrentPeriodEnd int64  `json:"current_period_end"`
	}
	require.NoError(t, json.Unmarshal(raw, &sub))
	assert.Equal(t, "past_due", sub.Status)
	assert.Equal(t, end.Unix(), sub.CurrentPeriodEnd, "stripe-go v76 pins 2023-10-16: the period end is on the subscription")

	_, err = c.Object(context.Background(), stripeapi.ObjectCustomer, "cus_1")
	require.NoError(t, err)
	_, err = c.Object(context.Background(), stripeapi.ObjectInvoice, "in_1")
	require.NoError(t, err)

	reqs := api.Requests()
	require.Len(t, reqs, 3)
	assert.Equal(t, "/v1/subscriptions/sub_1", reqs[0].Path)
	assert.Equal(t, "2023-10-16", reqs[0].Header.Get("Stripe-Version"))
	assert.Equal(t, "Bearer sk_test_123", reqs[0].Header.Get("Authorization"))
	assert.Equal(t, "/v1/customers/cus_1", reqs[1].Path)
	assert.Equal(t, "/v1/invoices/in_1", reqs[2].Path)
}

func TestErrorsNameRequestStatusAndMessage(t *testing.T) {
	t.Parallel()
	api := newAPI(t)
	c, w := newClient(t, api, stripeapi.Config{})
	_, err := c.Object(context.Background(), stripeapi.ObjectSubscription, "sub_missing")
	require.Error(t, err)
	assert.Equal(t, "stripe API GET /v1/subscriptions/sub_missing: 404 resource_missing: No such subscription: 'sub_missing'", err.Error())
	assert.ErrorIs(t, err, stripeapi.ErrNotFound)
	var apiErr *stripeapi.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 404, apiErr.Status)
	assert.Empty(t, w.all(), "a 404 is not retried")
	assert.Len(t, api.Requests(), 1)

	// A key Stripe refuses: 401, not retried either.
	bad, w := newClient(t, api, stripeapi.Config{Key: "pk_test_wrong"})
	err = bad.Check(context.Background())
	assert.ErrorContains(t, err, "stripe API GET /v1/events: 401")
	assert.ErrorContains(t, err, "Invalid API Key provided")
	assert.Empty(t, w.all())
}

func TestRetries429And5xxHonouringRetryAfter(t *testing.T) {
	t.Parallel()
	api := newAPI(t)
	api.PutCustomer(stripetest.Customer{ID: "cus_1"})
	api.ReplyNext(
		stripetest.Reply{Status: 429, RetryAfter: "3"},
		stripetest.Reply{Status: 500},
		stripetest.Reply{Status: 503, RetryAfter: "120"}, // capped at MaxWait
	)
	var retries []stripeapi.Retry
	var mu sync.Mutex
	c, w := newClient(t, api, stripeapi.Config{MaxWait: 30 * time.Second, OnRetry: func(r stripeapi.Retry) {
		mu.Lock()
		defer mu.Unlock()
		retries = append(retries, r)
	}})
	_, err := c.Object(context.Background(), stripeapi.ObjectCustomer, "cus_1")
	require.NoError(t, err)

	got := w.all()
	require.Len(t, got, 3)
	assert.Equal(t, 3*time.Second, got[0], "Retry-After is honoured")
	assert.Greater(t, got[1], time.Duration(0))
	assert.LessOrEqual(t, got[1], time.Second, "backoff of the second attempt")
	assert.Equal(t, 30*time.Second, got[2], "a Retry-After beyond MaxWait waits MaxWait")
	require.Len(t, retries, 3)
	assert.Equal(t, "/v1/customers/cus_1", retries[0].Path)
	assert.Contains(t, retries[0].Reason, "429 rate_limit")
	assert.Equal(t, 1, retries[0].Attempt)
	assert.Len(t, api.Requests(), 4)
}

func TestStripeShouldRetryDecides(t *testing.T) {
	t.Parallel()
	api := newAPI(t)
	api.PutCustomer(stripetest.Customer{ID: "cus_1"})

	// false: a 500 is not retried.
	api.ReplyNext(stripetest.Reply{Status: 500, ShouldRetry: "false"})
	c, w := newClient(t, api, stripeapi.Config{})
	_, err := c.Object(context.Background(), stripeapi.ObjectCustomer, "cus_1")
	assert.ErrorContains(t, err, "500")
	assert.Empty(t, w.all())

	// true: even a 409 is retried.
	api.ReplyNext(stripetest.Reply{Status: 409, Code: "lock_timeout", ShouldRetry: "true"})
	_, err = c.Object(context.Background(), stripeapi.ObjectCustomer, "cus_1")
	assert.NoError(t, err)
	assert.Len(t, w.all(), 1)
}

func TestGivesUpAfterMaxRetries(t *testing.T) {
	t.Parallel()
	api := newAPI(t)
	api.SetHook(func(int, stripetest.Request) *stripetest.Reply { return &stripetest.Reply{Status: 502} })
	c, w := newClient(t, api, stripeapi.Config{MaxRetries: 2})
	_, err := c.Object(context.Background(), stripeapi.ObjectCustomer, "cus_1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "stripe API GET /v1/customers/cus_1: 502")
	assert.Contains(t, err.Error(), "(after 3 attempts)")
	assert.Len(t, w.all(), 2)
	assert.Len(t, api.Requests(), 3)
}

func TestEveryAttemptHasATimeout(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"cus_1","object":"customer"}`)
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	w := &waits{}
	c, err := stripeapi.New(stripeapi.Config{Key: "sk_test_1", BaseURL: slow.URL, Timeout: 200 * time.Millisecond, Sleep: w.sleep})
	require.NoError(t, err)
	raw, err := c.Object(context.Background(), stripeapi.ObjectCustomer, "cus_1")
	require.NoError(t, err, "the hung first attempt times out and the second succeeds")
	assert.JSONEq(t, `{"id":"cus_1","object":"customer"}`, string(raw))
	assert.Len(t, w.all(), 1)
}

func TestTransportOnlyReads(t *testing.T) {
	t.Parallel()
	api := newAPI(t)
	c, _ := newClient(t, api, stripeapi.Config{})
	ctx := context.Background()

	// Ids that would leave the object's own path are refused before any
	// request.
	for _, id := range []string{"../charges", "sub_1/cancel", "sub_1?expand=x", ""} {
		_, err := c.Object(ctx, stripeapi.ObjectSubscription, id)
		assert.Error(t, err, id)
	}
	_, err := c.Object(ctx, "charge", "ch_1")
	assert.Error(t, err)

	// Webhook endpoints only for a client built for "stripe check".
	_, err = c.WebhookEndpoints(ctx)
	assert.ErrorIs(t, err, stripeapi.ErrRefused)
	assert.Empty(t, api.Requests(), "nothing refused reached the API")

	checker, _ := newClient(t, api, stripeapi.Config{AllowWebhookEndpoints: true})
	api.PutWebhookEndpoint(stripetest.WebhookEndpoint{URL: "https://app.example/billing/webhooks/stripe/"})
	eps, err := checker.WebhookEndpoints(ctx)
	require.NoError(t, err)
	require.Len(t, eps, 1)
	assert.Equal(t, "https://app.example/billing/webhooks/stripe/", eps[0].URL)
}

func TestListEventsPagesAndFilters(t *testing.T) {
	t.Parallel()
	api := newAPI(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 5 {
		raw := stripetest.MustBuildEvent(stripetest.EventOptions{Type: "customer.subscription.updated", ID: fmt.Sprintf("evt_%d", i), Created: base.Add(time.Duration(i) * time.Minute)})
		require.NoError(t, api.AddEvent(raw))
	}
	c, _ := newClient(t, api, stripeapi.Config{})
	page, err := c.ListEvents(context.Background(), stripeapi.EventQuery{Types: []string{"customer.subscription.updated"}, CreatedGTE: base.Add(time.Minute), Limit: 3})
	require.NoError(t, err)
	assert.True(t, page.HasMore)
	require.Len(t, page.Events, 3)
	assert.Equal(t, "evt_4", page.Events[0].ID, "newest first")
	assert.Equal(t, "customer.subscription.updated", page.Events[0].Type)
	assert.Equal(t, base.Add(4*time.Minute).Unix(), page.Events[0].Created)

	page, err = c.ListEvents(context.Background(), stripeapi.EventQuery{Types: []string{"customer.subscription.updated"}, CreatedGTE: base.Add(time.Minute), StartingAfter: "evt_2", Limit: 3})
	require.NoError(t, err)
	assert.False(t, page.HasMore)
	require.Len(t, page.Events, 1)
	assert.Equal(t, "evt_1", page.Events[0].ID)

	q := api.Requests()[0].Query
	assert.Equal(t, "customer.subscription.updated", q.Get("types[0]"))
	assert.Equal(t, fmt.Sprint(base.Add(time.Minute).Unix()), q.Get("created[gte]"))
	assert.Equal(t, "3", q.Get("limit"))
}

func TestSubscriptionsOfACustomerEveryPage(t *testing.T) {
	t.Parallel()
	api := newAPI(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 205 {
		api.PutSubscription(stripetest.Subscription{ID: fmt.Sprintf("sub_%03d", i), Customer: "cus_1", Status: "canceled", Created: base.Add(time.Duration(i) * time.Second)})
	}
	api.PutSubscription(stripetest.Subscription{ID: "sub_other", Customer: "cus_2"})
	c, _ := newClient(t, api, stripeapi.Config{})
	subs, err := c.Subscriptions(context.Background(), "cus_1")
	require.NoError(t, err)
	assert.Len(t, subs, 205, "canceled ones too, through three pages")
	assert.Len(t, api.Requests(), 3)
	assert.Equal(t, "all", api.Requests()[0].Query.Get("status"))
}

func TestCheckReadsOneEvent(t *testing.T) {
	t.Parallel()
	api := newAPI(t)
	c, _ := newClient(t, api, stripeapi.Config{Key: "sk_live_abc"})
	require.NoError(t, c.Check(context.Background()))
	assert.True(t, c.Livemode())
	reqs := api.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "/v1/events", reqs[0].Path)
	assert.Equal(t, "1", reqs[0].Query.Get("limit"))
}

func TestCanceledContextStopsWaiting(t *testing.T) {
	t.Parallel()
	api := newAPI(t)
	api.SetHook(func(int, stripetest.Request) *stripetest.Reply {
		return &stripetest.Reply{Status: 429, RetryAfter: "30"}
	})
	ctx, cancel := context.WithCancel(context.Background())
	c, err := stripeapi.New(stripeapi.Config{Key: "sk_test_1", BaseURL: api.URL(), OnRetry: func(stripeapi.Retry) { cancel() }})
	require.NoError(t, err)
	_, err = c.Object(ctx, stripeapi.ObjectCustomer, "cus_1")
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
	assert.Len(t, api.Requests(), 1)
}

// stripe-mock serves the real API's objects (in its newest shape); the
// client reads them.
func TestAgainstStripeMock(t *testing.T) {
	t.Parallel()
	base := stripetest.StartMock(t)
	c, err := stripeapi.New(stripeapi.Config{Key: "sk_test_123", BaseURL: base})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Check(ctx))
	raw, err := c.Object(ctx, stripeapi.ObjectSubscription, "sub_123")
	require.NoError(t, err)
	var sub struct {
		Object string `json:"object"`
		Status string `json:"status"`
	}
	require.NoError(t, json.Unmarshal(raw, &sub))
	assert.Equal(t, "subscription", sub.Object)
	assert.NotEmpty(t, sub.Status)
	subs, err := c.Subscriptions(ctx, "cus_123")
	require.NoError(t, err)
	assert.NotEmpty(t, subs)
	page, err := c.ListEvents(ctx, stripeapi.EventQuery{Types: []string{"customer.subscription.updated"}, CreatedGTE: time.Now().Add(-time.Hour)})
	require.NoError(t, err)
	assert.NotEmpty(t, page.Events, "stripe-mock answers its fixture event whatever the filter")
}
