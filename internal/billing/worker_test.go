package billing_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/billing"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/stripetest"
	"github.com/cleantrack/jobs/internal/web"
	"github.com/cleantrack/jobs/tasks"
)

// withQueue gives the fixture a private Redis database: a client as the
// handler's enqueuer, and an inspector to look at the queue.
func (f *fixture) withQueue(t *testing.T) (asynq.RedisConnOpt, *asynq.Client, *asynq.Inspector) {
	t.Helper()
	opt, err := queue.RedisOpt(redistest.NewURL(t))
	require.NoError(t, err)
	client := asynq.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { insp.Close() })
	f.enq = client
	f.rebuild()
	return opt, client, insp
}

// withTasks gives the sweep a reader of task states on the fixture's Redis,
// through a client whose round trips are counted.
func (f *fixture) withTasks(t *testing.T, opt asynq.RedisConnOpt) *redistest.RoundTrips {
	t.Helper()
	rdb := queue.RedisClient(opt)
	t.Cleanup(func() { rdb.Close() })
	trips := &redistest.RoundTrips{}
	rdb.AddHook(trips)
	f.opts.Tasks = queue.NewTasks(rdb)
	f.rebuild()
	return trips
}

// startWorker runs a real Asynq server with the billing handlers, retrying
// after a few milliseconds instead of the production backoff, or after the
// delay a handler asks for (queue.RetryAfterError).
func (f *fixture) startWorker(t *testing.T, opt asynq.RedisConnOpt) {
	t.Helper()
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency: 4,
		Queues:      queue.Weights,
		RetryDelayFunc: func(_ int, err error, _ *asynq.Task) time.Duration {
			var ra *queue.RetryAfterError
			if errors.As(err, &ra) {
				return ra.Delay
			}
			return 10 * time.Millisecond
		},
		IsFailure:                queue.IsFailure,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		Logger:                   queue.Logger{L: slog.New(slog.NewTextHandler(io.Discard, nil))},
		LogLevel:                 asynq.FatalLevel,
	})
	mux := asynq.NewServeMux()
	f.handler.Register(mux)
	require.NoError(t, srv.Start(mux))
	t.Cleanup(srv.Shutdown)
}

// enqueue puts the event's task in the queue as the web process does, with
// maxRetry retries.
func enqueue(t *testing.T, c *asynq.Client, ev postgres.InboxEvent, maxRetry int) {
	t.Helper()
	task, err := tasks.NewStripeEvent(tasks.StripeEventPayload{EventID: ev.ID, Type: ev.Type})
	require.NoError(t, err)
	_, err = c.Enqueue(task, asynq.MaxRetry(maxRetry))
	require.NoError(t, err)
}

// waitArchived waits until the event's task is archived and returns it.
func waitArchived(t *testing.T, insp *asynq.Inspector, eventID string) *asynq.TaskInfo {
	t.Helper()
	var info *asynq.TaskInfo
	require.Eventually(t, func() bool {
		var err error
		info, err = insp.GetTaskInfo(tasks.QueueCritical, eventID)
		return err == nil && info.State == asynq.TaskStateArchived
	}, 30*time.Second, 20*time.Millisecond, "task %s was never archived", eventID)
	return info
}

// An event for a customer no account has (a Stripe account shared with other
// products) is tried a few times, for a customer.created that may be racing
// it, then parked as unmatched: its task ends, neither retried nor archived.
// When an account gets the customer, the parked events apply by themselves,
// oldest first, exactly once.
func TestWorkerParksUnknownCustomerThenAppliesOnceLinked(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	opt, client, insp := f.withQueue(t)
	f.opts.UnmatchedRetryDelays = []time.Duration{20 * time.Millisecond, 20 * time.Millisecond}
	f.rebuild()
	f.startWorker(t, opt)
	older := f.record(t, stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated, Created: base, CustomerID: "cus_ghost", SubscriptionID: "sub_ghost", Status: "past_due"})

	enqueue(t, client, f.event(t, older), tasks.StripeEventMaxRetry)

	require.Eventually(t, func() bool { return f.event(t, older).Status() == postgres.InboxUnmatched }, 20*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		_, err := insp.GetTaskInfo(tasks.QueueCritical, older)
		return errors.Is(err, asynq.ErrTaskNotFound)
	}, 10*time.Second, 20*time.Millisecond, "the task ends, neither archived nor waiting to retry")
	ev := f.event(t, older)
	assert.Equal(t, 3, ev.Attempts, "the first attempt and the two short retries")
	assert.Equal(t, "no account has Stripe customer cus_ghost", ev.LastError)
	assert.Equal(t, "cus_ghost", ev.UnmatchedCustomer)
	assert.Nil(t, ev.FailedAt)
	archived, err := insp.ListArchivedTasks(tasks.QueueCritical)
	require.NoError(t, err)
	assert.Empty(t, archived)

	// A later event of the same customer does not wait again: the first one
	// waited its minutes already.
	newer := f.record(t, stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated, Created: base.Add(time.Hour), CustomerID: "cus_ghost", SubscriptionID: "sub_ghost", Status: "active"})
	enqueue(t, client, f.event(t, newer), tasks.StripeEventMaxRetry)
	require.Eventually(t, func() bool { return f.event(t, newer).Status() == postgres.InboxUnmatched }, 20*time.Second, 20*time.Millisecond)
	assert.Equal(t, 1, f.event(t, newer).Attempts, "parked at the first attempt")

	// Nothing more happens to them: not failed, not retried.
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, 3, f.event(t, older).Attempts)
	assert.Equal(t, 1, f.event(t, newer).Attempts)

	// customer.created links an account to the customer: both parked events
	// apply, and the newer state wins.
	id := f.createAccount(t, "late", "")
	link := f.record(t, stripetest.EventOptions{Type: tasks.EventCustomerCreated, CustomerID: "cus_ghost", AccountID: id})
	enqueue(t, client, f.event(t, link), tasks.StripeEventMaxRetry)

	require.Eventually(t, func() bool {
		return f.event(t, older).ProcessedAt != nil && f.event(t, newer).ProcessedAt != nil
	}, 20*time.Second, 20*time.Millisecond)
	a := f.account(t, id)
	assert.Equal(t, "cus_ghost", a.StripeCustomerID)
	assert.Equal(t, "sub_ghost", a.StripeSubscriptionID)
	assert.Equal(t, "active", a.Status, "the newer event's state")
	require.NotNil(t, a.BillingEventAt)
	assert.True(t, base.Add(time.Hour).Equal(*a.BillingEventAt))
	assert.Equal(t, postgres.InboxProcessed, f.event(t, older).Status())
	assert.Equal(t, 4, f.event(t, older).Attempts, "applied once more, once")
	assert.Equal(t, 2, f.event(t, newer).Attempts)
}

func TestWorkerArchivesMalformedAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	opt, client, insp := f.withQueue(t)
	f.startWorker(t, opt)
	eventID := f.recordRaw(t, []byte(`{"id":"evt_bad","type":"customer.subscription.deleted","created":1700000000,"data":{"object":{"id":"sub_1","customer":{"object":"customer"}}}}`))

	enqueue(t, client, f.event(t, eventID), 5)

	info := waitArchived(t, insp, eventID)
	assert.Equal(t, 0, info.Retried, "a malformed event is not retried")
	assert.Contains(t, info.LastErr, "malformed event")
	ev := f.event(t, eventID)
	assert.Equal(t, postgres.InboxFailed, ev.Status())
	assert.Equal(t, 1, ev.Attempts)
	assert.Contains(t, ev.LastError, "subscription sub_1 has no customer")
}

func TestWorkerAppliesQueuedEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	opt, client, _ := f.withQueue(t)
	f.startWorker(t, opt)
	id := f.createAccount(t, "acme", "cus_acme")
	eventID := f.record(t, stripetest.EventOptions{Type: tasks.EventSubscriptionCreated, Shape: stripetest.Shape2025, Created: base, CustomerID: "cus_acme", SubscriptionID: "sub_acme"})

	enqueue(t, client, f.event(t, eventID), tasks.StripeEventMaxRetry)

	require.Eventually(t, func() bool { return f.event(t, eventID).ProcessedAt != nil }, 20*time.Second, 20*time.Millisecond)
	assert.Equal(t, "sub_acme", f.account(t, id).StripeSubscriptionID)
}

func TestRedriveEnqueuesPendingRowsOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, _, insp := f.withQueue(t)
	f.opts.RedriveMinAge = 0
	f.opts.RedrivePageSize = 2 // three pending rows take two pages
	f.rebuild()
	f.createAccount(t, "acme", "cus_acme")
	var pending []string
	for range 3 {
		pending = append(pending, f.record(t, stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated, CustomerID: "cus_acme"}))
	}
	processed := f.record(t, stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated, CustomerID: "cus_acme"})
	require.NoError(t, f.process(t, processed))
	failed := f.recordRaw(t, []byte(`{"id":"evt_failed","type":"customer.subscription.updated","created":1700000000,"data":{"object":{}}}`))
	require.Error(t, f.process(t, failed))
	require.Equal(t, postgres.InboxFailed, f.event(t, failed).Status())
	ctx := context.Background()

	res, err := f.handler.Redrive(ctx)
	require.NoError(t, err)
	assert.Equal(t, billing.RedriveResult{Enqueued: 3}, res)

	res, err = f.handler.Redrive(ctx)
	require.NoError(t, err)
	assert.Equal(t, billing.RedriveResult{Duplicates: 3}, res, "a row whose task is queued is not doubled")

	queued, err := insp.ListPendingTasks(tasks.QueueCritical)
	require.NoError(t, err)
	var ids []string
	for _, q := range queued {
		assert.Equal(t, tasks.TypeStripeEvent, q.Type)
		ids = append(ids, q.ID)
	}
	assert.ElementsMatch(t, pending, ids)
}

// With a reader of task states, the sweep asks Redis once per page, not
// once or twice per row: a row whose task is queued costs nothing more, and
// only a row whose task Redis lost is enqueued.
func TestRedriveOneRoundTripPerPage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	opt, client, insp := f.withQueue(t)
	f.opts.RedriveMinAge = 0
	f.opts.RedrivePageSize = 2
	trips := f.withTasks(t, opt)
	var queued []string
	for range 5 {
		id := f.record(t, stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated, CustomerID: "cus_acme"})
		enqueue(t, client, f.event(t, id), 3)
		queued = append(queued, id)
	}
	ctx := context.Background()

	trips.Reset()
	res, err := f.handler.Redrive(ctx)
	require.NoError(t, err)
	assert.Equal(t, billing.RedriveResult{Duplicates: 5}, res)
	assert.Equal(t, int64(3), trips.Count(), "five rows in pages of two: three round trips")

	// Redis loses two of the tasks: the sweep enqueues those two only.
	require.NoError(t, insp.DeleteTask(tasks.QueueCritical, queued[1]))
	require.NoError(t, insp.DeleteTask(tasks.QueueCritical, queued[4]))
	res, err = f.handler.Redrive(ctx)
	require.NoError(t, err)
	assert.Equal(t, billing.RedriveResult{Enqueued: 2, Duplicates: 3}, res)
	pending, err := insp.ListPendingTasks(tasks.QueueCritical)
	require.NoError(t, err)
	assert.Len(t, pending, 5)
}

// Failed, unmatched and dismissed rows are not re-driven; an unmatched row
// whose customer got an account by any path (here a plain UPDATE) is
// released by the sweep and applied.
func TestRedriveLeavesParkedRowsAndReleasesLinkedOnes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	opt, _, insp := f.withQueue(t)
	f.opts.RedriveMinAge = 0
	f.withTasks(t, opt)
	ctx := context.Background()
	failed := f.recordRaw(t, []byte(`{"id":"evt_failed","type":"customer.subscription.updated","created":1700000000,"data":{"object":{}}}`))
	require.Error(t, f.process(t, failed))
	unmatched := f.record(t, stripetest.EventOptions{Type: tasks.EventInvoicePaymentFailed, CustomerID: "cus_later"})
	parked, err := f.store.ParkStripeEvent(ctx, unmatched, "cus_later", "no account has Stripe customer cus_later")
	require.NoError(t, err)
	require.True(t, parked)
	dismissed := f.record(t, stripetest.EventOptions{Type: tasks.EventInvoicePaymentFailed, CustomerID: "cus_later"})
	_, err = f.store.ParkStripeEvent(ctx, dismissed, "cus_later", "no account has Stripe customer cus_later")
	require.NoError(t, err)
	_, changed, err := f.store.DismissStripeEvent(ctx, dismissed, "ops", "a test event")
	require.NoError(t, err)
	require.True(t, changed)

	res, err := f.handler.Redrive(ctx)
	require.NoError(t, err)
	assert.Equal(t, billing.RedriveResult{}, res, "nothing pending, nothing linked")

	id := f.createAccount(t, "later", "")
	_, err = f.store.DB.ExecContext(ctx, `UPDATE accounts SET stripe_customer_id = 'cus_later' WHERE id = $1`, id)
	require.NoError(t, err)
	res, err = f.handler.Redrive(ctx)
	require.NoError(t, err)
	assert.Equal(t, billing.RedriveResult{Released: 1}, res, "the dismissed row stays dismissed")
	info, err := insp.GetTaskInfo(tasks.QueueCritical, unmatched)
	require.NoError(t, err)
	assert.Equal(t, asynq.TaskStatePending, info.State)
	assert.Equal(t, postgres.InboxPending, f.event(t, unmatched).Status())
	assert.Equal(t, postgres.InboxDismissed, f.event(t, dismissed).Status())

	require.NoError(t, f.process(t, unmatched))
	assert.Equal(t, postgres.InboxProcessed, f.event(t, unmatched).Status())
	assert.Equal(t, "past_due", f.account(t, id).Status)

	// The worker does not apply a dismissed row, should its task run.
	require.NoError(t, f.process(t, dismissed))
	assert.Equal(t, postgres.InboxDismissed, f.event(t, dismissed).Status())
}

// What the runbook says: deleting the archived task of a failed event
// neither drops the event nor brings it back; it waits, failed, for a replay
// or a dismissal.
func TestRedriveLeavesFailedRowWhoseArchivedTaskWasDeleted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	opt, client, insp := f.withQueue(t)
	f.opts.RedriveMinAge = 0
	f.withTasks(t, opt)
	f.startWorker(t, opt)
	eventID := f.recordRaw(t, []byte(`{"id":"evt_poison","type":"invoice.payment_failed","created":1700000000,"data":{}}`))
	enqueue(t, client, f.event(t, eventID), 3)
	waitArchived(t, insp, eventID)
	require.Eventually(t, func() bool { return f.event(t, eventID).Status() == postgres.InboxFailed }, 10*time.Second, 20*time.Millisecond)

	require.NoError(t, insp.DeleteTask(tasks.QueueCritical, eventID))
	res, err := f.handler.Redrive(context.Background())

	require.NoError(t, err)
	assert.Equal(t, billing.RedriveResult{}, res)
	_, err = insp.GetTaskInfo(tasks.QueueCritical, eventID)
	assert.ErrorIs(t, err, asynq.ErrTaskNotFound, "not enqueued again")
	assert.Equal(t, postgres.InboxFailed, f.event(t, eventID).Status(), "not lost either")
}

// A task archived while the database was down leaves its row pending; the
// sweep finds the archived task and marks the row failed with its reason,
// instead of counting it as queued forever.
func TestRedriveMarksRowsOfArchivedTasksFailed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	opt, client, insp := f.withQueue(t)
	f.opts.RedriveMinAge = 0
	f.withTasks(t, opt)
	id := f.record(t, stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated, CustomerID: "cus_nobody"})
	task, err := tasks.NewStripeEvent(tasks.StripeEventPayload{EventID: id, Type: tasks.EventSubscriptionUpdated})
	require.NoError(t, err)
	_, err = client.Enqueue(task)
	require.NoError(t, err)
	require.NoError(t, insp.ArchiveTask(tasks.QueueCritical, id))

	res, err := f.handler.Redrive(context.Background())
	require.NoError(t, err)
	assert.Equal(t, billing.RedriveResult{Archived: 1}, res)
	ev := f.event(t, id)
	assert.Equal(t, postgres.InboxFailed, ev.Status())
	assert.Contains(t, ev.LastError, "task archived")

	// Now failed, the row is out of the sweep.
	res, err = f.handler.Redrive(context.Background())
	require.NoError(t, err)
	assert.Equal(t, billing.RedriveResult{}, res)
}

func TestRedriveWaitsForMinAge(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.withQueue(t)
	f.record(t, stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated})

	res, err := f.handler.Redrive(context.Background())
	require.NoError(t, err)
	assert.Equal(t, billing.RedriveResult{}, res, "the web process enqueued a fresh row itself")
}

// TestRedriveAfterRedisLoss is the sweep's reason to exist: the event was
// recorded and its task lost, and the sweep plus a worker still apply it.
func TestRedriveAfterRedisLoss(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	opt, client, insp := f.withQueue(t)
	f.opts.RedriveMinAge = 0
	f.rebuild()
	id := f.createAccount(t, "acme", "cus_acme")
	eventID := f.record(t, stripetest.EventOptions{Type: tasks.EventInvoicePaymentFailed, CustomerID: "cus_acme"})
	enqueue(t, client, f.event(t, eventID), 3)
	// Lose the task as a flushed Redis would (a real FLUSHDB would also drop
	// redistest's reservation of this database).
	require.NoError(t, insp.DeleteTask(tasks.QueueCritical, eventID))

	task, err := tasks.NewInboxRedrive(tasks.InboxRedrivePayload{Slot: time.Now()})
	require.NoError(t, err)
	_, err = client.Enqueue(task)
	require.NoError(t, err)
	f.startWorker(t, opt)

	require.Eventually(t, func() bool { return f.event(t, eventID).ProcessedAt != nil }, 20*time.Second, 20*time.Millisecond)
	assert.Equal(t, "past_due", f.account(t, id).Status)
}

func TestRedriveTaskRejectsBadPayload(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	err := f.handler.ProcessInboxRedrive(context.Background(), asynq.NewTask(tasks.TypeInboxRedrive, []byte("{")))
	require.Error(t, err)
	assert.True(t, errors.Is(err, asynq.SkipRetry))
}

// TestEndToEndSignedWebhookToAccount drives the whole path: a signed request
// into the web process's handler, the inbox row and task it records, a real
// worker, and the account row; then Stripe delivering the same event again.
func TestEndToEndSignedWebhookToAccount(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	opt, client, _ := f.withQueue(t)
	f.startWorker(t, opt)
	f.addPlan(t, "pro", "price_pro_monthly")
	id := f.createAccount(t, "acme", "cus_acme")
	intake := &web.Server{
		Store: f.store, Queue: client, StripeSecrets: []string{"whsec_old", "whsec_e2e"}, StripeTolerance: 5 * time.Minute,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	srv := httptest.NewServer(intake.Handler())
	t.Cleanup(srv.Close)
	payload, err := stripetest.BuildEvent(stripetest.EventOptions{
		Type: tasks.EventSubscriptionCreated, Shape: stripetest.Shape2025, Expand: true,
		CustomerID: "cus_acme", SubscriptionID: "sub_acme", PriceID: "price_pro_monthly", PeriodEnd: base,
	})
	require.NoError(t, err)
	ev, err := billing.DecodeEvent(payload)
	require.NoError(t, err)

	for range 2 {
		req, err := stripetest.SignedRequest(context.Background(), srv.URL+"/billing/webhooks/stripe/", payload, "whsec_e2e", time.Now())
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}

	require.Eventually(t, func() bool { return f.event(t, ev.ID).ProcessedAt != nil }, 20*time.Second, 20*time.Millisecond)
	a := f.account(t, id)
	assert.Equal(t, "sub_acme", a.StripeSubscriptionID)
	assert.Equal(t, "pro", a.Plan)
	require.NotNil(t, a.SubscriptionEndDate)
	assert.True(t, base.Equal(*a.SubscriptionEndDate))
	assert.Equal(t, 1, f.event(t, ev.ID).Attempts)
	assert.Equal(t, []notification{{Kind: "subscription_created", AccountID: id, ObjectID: "sub_acme"}}, f.notifier.Calls())
}
