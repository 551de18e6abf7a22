package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/cleantrack/jobs/internal/billing"
	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/stripetest"
	"github.com/cleantrack/jobs/internal/testfactory"
	"github.com/cleantrack/jobs/tasks"
)

const stripeTestSecret = "whsec_cli_test"

type stripeCLIFixture struct {
	store *postgres.Store
	env   map[string]string
}

func newStripeCLIFixture(t *testing.T) *stripeCLIFixture {
	t.Helper()
	store, dbURL := pgtest.NewStore(t)
	return &stripeCLIFixture{store: store, env: map[string]string{
		"DATABASE_URL":          dbURL,
		"REDIS_URL":             redistest.NewURL(t),
		"STRIPE_WEBHOOK_SECRET": stripeTestSecret + ",whsec_next",
	}}
}

func (f *stripeCLIFixture) account(t *testing.T, slug, customerID string) int64 {
	t.Helper()
	return testfactory.Account(t, f.store, &testfactory.AccountOpts{Slug: slug, Name: slug, StripeCustomerID: customerID}).ID
}

func (f *stripeCLIFixture) record(t *testing.T, opts stripetest.EventOptions) string {
	t.Helper()
	payload, err := stripetest.BuildEvent(opts)
	require.NoError(t, err)
	ev, err := billing.DecodeEvent(payload)
	require.NoError(t, err)
	_, err = f.store.InsertStripeEvent(context.Background(), postgres.StripeEvent{
		ID: ev.ID, Type: ev.Type, APIVersion: ev.APIVersion, CreatedAt: ev.CreatedAt(), Payload: payload,
	})
	require.NoError(t, err)
	return ev.ID
}

func (f *stripeCLIFixture) redis(t *testing.T) (*asynq.Client, *asynq.Inspector) {
	t.Helper()
	opt, err := queue.RedisOpt(f.env["REDIS_URL"])
	require.NoError(t, err)
	c := asynq.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	i := asynq.NewInspector(opt)
	t.Cleanup(func() { i.Close() })
	return c, i
}

// fakeWebhook stands in for the web process: it verifies the signature as
// the web process does and keeps the events it accepted.
type fakeWebhook struct {
	mu     sync.Mutex
	events []billing.Event
	status int
}

func (w *fakeWebhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	_, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), stripeTestSecret,
		webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		http.Error(rw, `{"error":"bad signature"}`, http.StatusBadRequest)
		return
	}
	ev, err := billing.DecodeEvent(body)
	if err != nil {
		http.Error(rw, `{"error":"not an event"}`, http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.events = append(w.events, ev)
	status := w.status
	w.mu.Unlock()
	if status != 0 {
		http.Error(rw, `{"error":"unavailable"}`, status)
		return
	}
	rw.Write([]byte(`{"received":true,"duplicate":false}`))
}

func TestStripeTriggerPostsSignedEvent(t *testing.T) {
	t.Parallel()
	f := newStripeCLIFixture(t)
	f.account(t, "acme", "cus_acme")
	fake := &fakeWebhook{}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)

	for _, shape := range []string{"2023", "2025"} {
		out, _, err := cli(t, f.env, "stripe", "trigger", "invoice.payment_failed", "--account", "acme", "--shape", shape, "--url", srv.URL)
		require.NoError(t, err)
		assert.Contains(t, out, "HTTP 200 OK")
		assert.Contains(t, out, `{"received":true,"duplicate":false}`)
	}

	require.Len(t, fake.events, 2)
	for i, want := range []string{stripetest.APIVersion2023, stripetest.APIVersion2025} {
		ev := fake.events[i]
		assert.Equal(t, want, ev.APIVersion)
		in, err := ev.DecodeInvoice()
		require.NoError(t, err)
		assert.Equal(t, "cus_acme", string(in.Customer))
		assert.NotEmpty(t, in.SubscriptionID(), "both shapes name the subscription")
	}
}

func TestStripeTriggerCustomerCreatedNamesAccount(t *testing.T) {
	t.Parallel()
	f := newStripeCLIFixture(t)
	id := f.account(t, "fresh", "")
	fake := &fakeWebhook{}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)

	// An event about a customer the account does not have yet, then the
	// customer.created that links it: both must name the same customer.
	_, stderr, err := cli(t, f.env, "stripe", "trigger", "customer.subscription.created", "--account", "fresh", "--url", srv.URL)
	require.NoError(t, err)
	assert.Contains(t, stderr, "has no Stripe customer")
	_, _, err = cli(t, f.env, "stripe", "trigger", "customer.created", "--account", "fresh", "--url", srv.URL)
	require.NoError(t, err)

	require.Len(t, fake.events, 2)
	sub, err := fake.events[0].DecodeSubscription()
	require.NoError(t, err)
	c, err := fake.events[1].DecodeCustomer()
	require.NoError(t, err)
	assert.Regexp(t, `^cus_`, c.ID)
	assert.Equal(t, string(sub.Customer), c.ID)
	assert.Equal(t, jsonNumber(id), c.Metadata["account_id"])
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestStripeTriggerFailures(t *testing.T) {
	t.Parallel()
	f := newStripeCLIFixture(t)
	f.account(t, "acme", "cus_acme")
	refusing := &fakeWebhook{status: http.StatusServiceUnavailable}
	srv := httptest.NewServer(refusing)
	t.Cleanup(srv.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	cases := []struct {
		name     string
		args     []string
		env      map[string]string
		errHas   string
		exitCode int
	}{
		{"non-2xx answer", []string{"customer.subscription.updated", "--account", "acme", "--url", srv.URL}, nil, "answered 503 Service Unavailable", 1},
		{"web process down", []string{"customer.subscription.updated", "--account", "acme", "--url", gone.URL}, nil, "cannot reach the web process", 1},
		{"unknown account", []string{"customer.subscription.updated", "--account", "nope", "--url", srv.URL}, nil, `no account has slug "nope"`, 2},
		{"unknown type", []string{"charge.refunded", "--account", "acme"}, nil, "is not one of", 2},
		{"missing account", []string{"customer.created"}, nil, "--account is required", 2},
		{"bad shape", []string{"customer.created", "--account", "acme", "--shape", "2019"}, nil, "--shape", 2},
		{"no secret", []string{"customer.created", "--account", "acme", "--url", srv.URL}, map[string]string{"STRIPE_WEBHOOK_SECRET": ""}, "STRIPE_WEBHOOK_SECRET is required", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range f.env {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			_, _, err := cli(t, env, append([]string{"stripe", "trigger"}, tc.args...)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.errHas)
			assert.Equal(t, tc.exitCode, exitCode(err))
		})
	}
}

func TestStripeReplayDeletesArchivedCopy(t *testing.T) {
	t.Parallel()
	f := newStripeCLIFixture(t)
	client, insp := f.redis(t)
	ctx := context.Background()
	eventID := f.record(t, stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated, CustomerID: "cus_ghost"})
	// The worker gave up on it: archived in Redis, failed in the inbox.
	task, err := tasks.NewStripeEvent(tasks.StripeEventPayload{EventID: eventID, Type: tasks.EventSubscriptionUpdated})
	require.NoError(t, err)
	_, err = client.Enqueue(task)
	require.NoError(t, err)
	require.NoError(t, insp.ArchiveTask(tasks.QueueCritical, eventID))
	require.NoError(t, f.store.RecordStripeEventFailure(ctx, eventID, "no account has Stripe customer cus_ghost", true))

	out, _, err := cli(t, f.env, "stripe", "replay", eventID)
	require.NoError(t, err)

	assert.Contains(t, out, "cleared failed_at (last error: no account has Stripe customer cus_ghost)")
	assert.Contains(t, out, "deleted the archived task "+eventID)
	assert.Contains(t, out, "enqueued stripe:event "+eventID)
	info, err := insp.GetTaskInfo(tasks.QueueCritical, eventID)
	require.NoError(t, err)
	assert.Equal(t, asynq.TaskStatePending, info.State)
	ev, err := f.store.StripeEventByID(ctx, eventID)
	require.NoError(t, err)
	assert.Equal(t, postgres.InboxPending, ev.Status())

	out, _, err = cli(t, f.env, "stripe", "replay", eventID)
	require.NoError(t, err)
	assert.Contains(t, out, "already pending")

	_, _, err = cli(t, f.env, "stripe", "replay", "evt_missing")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no Stripe event evt_missing in the inbox")
}

func TestStripeReplayEnqueuesLostEvent(t *testing.T) {
	t.Parallel()
	f := newStripeCLIFixture(t)
	_, insp := f.redis(t)
	eventID := f.record(t, stripetest.EventOptions{Type: tasks.EventCustomerCreated})

	out, _, err := cli(t, f.env, "stripe", "replay", eventID)
	require.NoError(t, err)
	assert.Contains(t, out, "enqueued stripe:event "+eventID)
	info, err := insp.GetTaskInfo(tasks.QueueCritical, eventID)
	require.NoError(t, err)
	assert.Equal(t, tasks.TypeStripeEvent, info.Type)
}

func TestStripeEventsListsInbox(t *testing.T) {
	t.Parallel()
	f := newStripeCLIFixture(t)
	ctx := context.Background()
	pending := f.record(t, stripetest.EventOptions{Type: tasks.EventSubscriptionCreated})
	failed := f.record(t, stripetest.EventOptions{Type: tasks.EventInvoicePaymentFailed})
	require.NoError(t, f.store.RecordStripeEventFailure(ctx, failed, "no account has Stripe customer cus_x", true))
	processed := f.record(t, stripetest.EventOptions{Type: tasks.EventCustomerCreated})
	_, err := f.store.MarkStripeEventProcessed(ctx, processed, "customer cus_y has no metadata.account_id; no account linked")
	require.NoError(t, err)

	out, _, err := cli(t, f.env, "stripe", "events", "--json")
	require.NoError(t, err)
	var rows []stripeEventView
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	byID := map[string]stripeEventView{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	require.Len(t, byID, 3)
	assert.Equal(t, "pending", byID[pending].Status)
	assert.Equal(t, "failed", byID[failed].Status)
	assert.Equal(t, 1, byID[failed].Attempts)
	assert.Equal(t, "no account has Stripe customer cus_x", byID[failed].LastError)
	assert.Equal(t, "processed", byID[processed].Status)
	assert.Contains(t, byID[processed].Note, "no metadata.account_id")

	out, _, err = cli(t, f.env, "stripe", "events", "--failed", "--json")
	require.NoError(t, err)
	rows = nil
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	require.Len(t, rows, 1)
	assert.Equal(t, failed, rows[0].ID)

	out, _, err = cli(t, f.env, "stripe", "events")
	require.NoError(t, err)
	assert.Regexp(t, `ID\s+TYPE\s+KIND\s+SOURCE\s+RECEIVED\s+STATUS\s+ATTEMPTS\s+LAST ERROR / NOTE`, out)
	assert.Regexp(t, failed+`\s+invoice.payment_failed\s+snapshot\s+webhook\s+\S+ \S+\s+failed\s+1\s+no account has Stripe customer cus_x`, out)
	assert.Contains(t, out, "3 events")

	out, _, err = cli(t, f.env, "stripe", "events", "--since", time.Now().Add(time.Hour).Format(time.RFC3339))
	require.NoError(t, err)
	assert.Contains(t, out, "no Stripe events match")

	out, _, err = cli(t, f.env, "stripe", "events", "--since", "24h", "--limit", "2", "--json")
	require.NoError(t, err)
	rows = nil
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	assert.Len(t, rows, 2)

	_, _, err = cli(t, f.env, "stripe", "events", "--since", "yesterday")
	require.Error(t, err)
	assert.Equal(t, 2, exitCode(err))
}

// An event whose customer no account has is parked by the worker (here with
// no wait for a racing customer.created), listed by "stripe events
// --unmatched", and released once an account has the customer.
func TestStripeEventsUnmatched(t *testing.T) {
	t.Parallel()
	f := newStripeCLIFixture(t)
	client, insp := f.redis(t)
	ctx := context.Background()
	h := billing.New(f.store, nil, client, nil, billing.Options{UnmatchedRetryDelays: []time.Duration{}})
	eventID := f.record(t, stripetest.EventOptions{Type: tasks.EventInvoicePaymentFailed, CustomerID: "cus_elsewhere"})
	other := f.record(t, stripetest.EventOptions{Type: tasks.EventCustomerCreated})
	task, err := tasks.NewStripeEvent(tasks.StripeEventPayload{EventID: eventID, Type: tasks.EventInvoicePaymentFailed})
	require.NoError(t, err)

	err = h.ProcessStripeEvent(ctx, task)
	require.ErrorIs(t, err, asynq.RevokeTask, "the task ends, neither retried nor archived")

	out, _, err := cli(t, f.env, "stripe", "events", "--unmatched")
	require.NoError(t, err)
	assert.Regexp(t, eventID+`\s+invoice.payment_failed\s+snapshot\s+webhook\s+\S+ \S+\s+unmatched\s+1\s+no account has Stripe customer cus_elsewhere`, out)
	assert.NotContains(t, out, other)

	out, _, err = cli(t, f.env, "stripe", "events", "--unmatched", "--json")
	require.NoError(t, err)
	var rows []stripeEventView
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	require.Len(t, rows, 1)
	assert.Equal(t, "unmatched", rows[0].Status)
	assert.Equal(t, "cus_elsewhere", rows[0].UnmatchedCustomer)
	require.NotNil(t, rows[0].UnmatchedAt)
	assert.Nil(t, rows[0].FailedAt)

	out, _, err = cli(t, f.env, "stripe", "events", "--failed")
	require.NoError(t, err)
	assert.Contains(t, out, "no Stripe events match", "unmatched is not failed")

	_, _, err = cli(t, f.env, "stripe", "events", "--failed", "--unmatched")
	require.Error(t, err)
	assert.Equal(t, 2, exitCode(err))

	// An account gets the customer: the sweep releases the row and enqueues it.
	f.account(t, "elsewhere", "cus_elsewhere")
	res, err := h.Redrive(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Released)
	info, err := insp.GetTaskInfo(tasks.QueueCritical, eventID)
	require.NoError(t, err)
	assert.Equal(t, asynq.TaskStatePending, info.State)
	out, _, err = cli(t, f.env, "stripe", "events", "--unmatched")
	require.NoError(t, err)
	assert.Contains(t, out, "no Stripe events match")
}

// "stripe dismiss" takes a failed or unmatched event out of the failed and
// unmatched lists and out of the sweep, keeps it with who and why, and
// refuses anything else.
func TestStripeDismiss(t *testing.T) {
	t.Parallel()
	f := newStripeCLIFixture(t)
	client, insp := f.redis(t)
	ctx := context.Background()
	f.env["USER"] = "alice"
	failed := f.record(t, stripetest.EventOptions{Type: tasks.EventInvoicePaymentFailed})
	require.NoError(t, f.store.RecordStripeEventFailure(ctx, failed, "malformed event: event has no data.object", true))
	unmatched := f.record(t, stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated, CustomerID: "cus_other_product"})
	parked, err := f.store.ParkStripeEvent(ctx, unmatched, "cus_other_product", "no account has Stripe customer cus_other_product")
	require.NoError(t, err)
	require.True(t, parked)
	pending := f.record(t, stripetest.EventOptions{Type: tasks.EventCustomerCreated})

	out, _, err := cli(t, f.env, "stripe", "dismiss", failed, "--reason", "a malformed test event")
	require.NoError(t, err)
	assert.Regexp(t, `dismissed event `+failed+` \(invoice.payment_failed, 1 attempts, last error: malformed event: event has no data.object\) by alice at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: a malformed test event`, out)

	out, _, err = cli(t, f.env, "stripe", "dismiss", unmatched, "--reason", "another product's customer", "--by", "bob")
	require.NoError(t, err)
	assert.Contains(t, out, "by bob at ")

	// Out of the failed and unmatched lists, shown as dismissed with who and why.
	for _, flag := range []string{"--failed", "--unmatched"} {
		out, _, err = cli(t, f.env, "stripe", "events", flag)
		require.NoError(t, err)
		assert.Contains(t, out, "no Stripe events match", flag)
	}
	out, _, err = cli(t, f.env, "stripe", "events")
	require.NoError(t, err)
	assert.Regexp(t, failed+`\s+invoice.payment_failed\s+snapshot\s+webhook\s+\S+ \S+\s+dismissed\s+1\s+dismissed by alice: a malformed test event`, out)
	assert.Regexp(t, unmatched+`\s+\S+\s+snapshot\s+webhook\s+\S+ \S+\s+dismissed\s+1\s+dismissed by bob: another product's customer`, out)
	out, _, err = cli(t, f.env, "stripe", "events", "--json")
	require.NoError(t, err)
	var rows []stripeEventView
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	byID := map[string]stripeEventView{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	assert.Equal(t, "dismissed", byID[failed].Status)
	assert.Equal(t, "alice", byID[failed].DismissedBy)
	assert.Equal(t, "a malformed test event", byID[failed].DismissedReason)
	require.NotNil(t, byID[failed].DismissedAt)
	assert.Equal(t, "malformed event: event has no data.object", byID[failed].LastError, "the history stays")

	// Out of the sweep and of the release of unmatched rows.
	f.account(t, "other", "cus_other_product")
	res, err := billing.New(f.store, nil, client, nil, billing.Options{}).Redrive(ctx)
	require.NoError(t, err)
	assert.Equal(t, billing.RedriveResult{Enqueued: 1}, res, "only the pending event")
	for _, id := range []string{failed, unmatched} {
		_, err := insp.GetTaskInfo(tasks.QueueCritical, id)
		assert.ErrorIs(t, err, asynq.ErrTaskNotFound, id)
	}

	// Again: nothing changes; the first who and why stay.
	out, _, err = cli(t, f.env, "stripe", "dismiss", failed, "--reason", "again", "--by", "carol")
	require.NoError(t, err)
	assert.Contains(t, out, "was already dismissed by alice at ")
	assert.Contains(t, out, "a malformed test event; nothing changed")

	// What cannot be dismissed, and how to call it.
	_, _, err = cli(t, f.env, "stripe", "dismiss", pending, "--reason", "x")
	require.Error(t, err)
	assert.Equal(t, 1, exitCode(err))
	assert.Contains(t, err.Error(), "event "+pending+" is pending; only a failed or unmatched event can be dismissed")
	_, _, err = cli(t, f.env, "stripe", "dismiss", "evt_missing", "--reason", "x")
	require.Error(t, err)
	assert.Equal(t, 1, exitCode(err))
	assert.Contains(t, err.Error(), "no Stripe event evt_missing in the inbox")
	_, _, err = cli(t, f.env, "stripe", "dismiss", failed)
	require.Error(t, err)
	assert.Equal(t, 2, exitCode(err))
	assert.Contains(t, err.Error(), "--reason is required")
	noUser := map[string]string{"DATABASE_URL": f.env["DATABASE_URL"], "REDIS_URL": f.env["REDIS_URL"]}
	_, _, err = cli(t, noUser, "stripe", "dismiss", failed, "--reason", "x")
	require.Error(t, err)
	assert.Equal(t, 2, exitCode(err))
	assert.Contains(t, err.Error(), "--by is required")
	noUser["LOGNAME"] = "dave"
	another := f.record(t, stripetest.EventOptions{Type: tasks.EventInvoicePaymentFailed})
	require.NoError(t, f.store.RecordStripeEventFailure(ctx, another, "malformed event: event has no data.object", true))
	out, _, err = cli(t, noUser, "stripe", "dismiss", another, "--reason", "a duplicate test event", "--json")
	require.NoError(t, err)
	var view stripeEventView
	require.NoError(t, json.Unmarshal([]byte(out), &view))
	assert.Equal(t, "dismissed", view.Status)
	assert.Equal(t, "dave", view.DismissedBy, "LOGNAME when USER is unset")
	assert.Equal(t, "a duplicate test event", view.DismissedReason)

	// A replay takes the dismissal off and enqueues the event.
	out, _, err = cli(t, f.env, "stripe", "replay", failed)
	require.NoError(t, err)
	assert.Contains(t, out, "cleared the dismissal by alice (a malformed test event)")
	assert.Contains(t, out, "enqueued stripe:event "+failed)
}
