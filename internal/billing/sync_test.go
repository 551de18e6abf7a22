package billing_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/billing"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/stripeapi"
	"github.com/cleantrack/jobs/internal/stripetest"
	"github.com/cleantrack/jobs/tasks"
)

// syncWorld is a fake Stripe API holding the events of one account, and a
// syncer over f's database and queue.
type syncWorld struct {
	f      *fixture
	api    *stripetest.API
	syncer *billing.Syncer
	now    time.Time
	waits  *[]time.Duration
	redis  asynq.RedisConnOpt
	insp   *asynq.Inspector
}

func newSyncWorld(t *testing.T, f *fixture) *syncWorld {
	t.Helper()
	opt, client, insp := f.withQueue(t)
	api := stripetest.NewAPI()
	t.Cleanup(api.Close)
	var mu sync.Mutex
	waits := &[]time.Duration{}
	c, err := stripeapi.New(stripeapi.Config{Key: "sk_test_sync", BaseURL: api.URL(), Sleep: func(_ context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		*waits = append(*waits, d)
		return nil
	}})
	require.NoError(t, err)
	now := time.Now().Truncate(time.Second)
	return &syncWorld{f: f, api: api, now: now, waits: waits, redis: opt, insp: insp,
		syncer: &billing.Syncer{API: c, Store: f.store, Queue: client, Now: func() time.Time { return now }}}
}

// addEvents puts n subscription updates of cus into the API, one a minute
// from start, and returns their ids, oldest first.
func (w *syncWorld) addEvents(t *testing.T, prefix, cus string, start time.Time, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s_%02d", prefix, i)
		raw, err := stripetest.BuildEvent(stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated, ID: id, CustomerID: cus,
			SubscriptionID: "sub_" + cus, Status: []string{"active", "past_due"}[i%2], Created: start.Add(time.Duration(i) * time.Minute),
			Shape: stripetest.Shapes[i%2]})
		require.NoError(t, err)
		require.NoError(t, w.api.AddEvent(raw))
		ids = append(ids, id)
	}
	return ids
}

// receivedOrder lists the ids recorded with source sync, in the order they
// were recorded.
func receivedOrder(t *testing.T, store *postgres.Store) []string {
	t.Helper()
	var ids []string
	require.NoError(t, store.DB.Select(&ids, `SELECT id FROM stripe_events WHERE source = 'sync' ORDER BY received_at, stripe_created_at`))
	return ids
}

// A sync over three pages with some events already in the inbox records
// only the missing ones, oldest first, and the worker applies them.
func TestSyncRecordsOnlyMissingEventsOverThreePages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := newSyncWorld(t, f)
	acct := f.createAccount(t, "synced", "cus_sync")
	since := w.now.Add(-24 * time.Hour)
	// One event before the window: the anchor the walk starts from.
	w.addEvents(t, "evt_before", "cus_sync", since.Add(-2*time.Hour), 1)
	ids := w.addEvents(t, "evt_in", "cus_sync", since.Add(time.Hour), 13)
	// The webhook delivered four of them.
	for _, i := range []int{0, 5, 6, 12} {
		raw := stripetest.MustBuildEvent(stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated, ID: ids[i], CustomerID: "cus_sync",
			SubscriptionID: "sub_cus_sync", Status: []string{"active", "past_due"}[i%2], Created: since.Add(time.Hour + time.Duration(i)*time.Minute)})
		f.recordRaw(t, raw)
	}
	var lines []string
	res, err := w.syncer.Run(context.Background(), billing.SyncOptions{Since: since, PageSize: 5, Progress: func(s string) { lines = append(lines, s) }})
	require.NoError(t, err)
	assert.Equal(t, 3, res.Pages)
	assert.Equal(t, 13, res.Listed)
	assert.Equal(t, 4, res.AlreadyInInbox)
	assert.Equal(t, 9, res.Recorded)
	assert.Empty(t, res.Refused)
	assert.True(t, w.now.Equal(res.Reached))

	var missing []string
	for i, id := range ids {
		if i != 0 && i != 5 && i != 6 && i != 12 {
			missing = append(missing, id)
		}
	}
	assert.Equal(t, missing, receivedOrder(t, f.store), "only the missing ones, oldest first")

	// The walk: the anchor (the newest event before the window), then
	// forward with ending_before.
	reqs := w.api.Requests()
	require.Len(t, reqs, 4)
	assert.Equal(t, fmt.Sprint(since.Unix()), reqs[0].Query.Get("created[lt]"))
	assert.Equal(t, "evt_before_00", reqs[1].Query.Get("ending_before"))
	assert.Equal(t, ids[4], reqs[2].Query.Get("ending_before"))
	assert.Equal(t, ids[9], reqs[3].Query.Get("ending_before"))
	assert.Equal(t, []string{"page 1: 5 events", "page 2: 5 events", "page 3: 3 events"}, lines)

	// Applied, in whatever order: the newest event's state wins.
	for _, id := range missing {
		require.NoError(t, f.process(t, id))
	}
	for _, id := range []string{ids[0], ids[5], ids[6], ids[12]} {
		require.NoError(t, f.process(t, id))
	}
	a := f.account(t, acct)
	assert.Equal(t, "active", a.Status, "the newest event's state")
	require.NotNil(t, a.BillingEventAt)
	assert.True(t, since.Add(time.Hour+12*time.Minute).Equal(*a.BillingEventAt))

	// A second run finds everything in the inbox.
	res, err = w.syncer.Run(context.Background(), billing.SyncOptions{Since: since, PageSize: 5})
	require.NoError(t, err)
	assert.Equal(t, 13, res.AlreadyInInbox)
	assert.Zero(t, res.Recorded)
}

// The sync records through the webhook's intake: the queued task is the
// webhook's, and the worker applies it.
func TestSyncedEventsAreAppliedByTheWorker(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := newSyncWorld(t, f)
	acct := f.createAccount(t, "applied", "cus_applied")
	since := w.now.Add(-3 * time.Hour)
	ids := w.addEvents(t, "evt_applied", "cus_applied", since.Add(time.Minute), 3)
	_, err := w.syncer.Run(context.Background(), billing.SyncOptions{Since: since})
	require.NoError(t, err)
	for _, id := range ids {
		info, err := w.insp.GetTaskInfo(tasks.QueueCritical, id)
		require.NoError(t, err, id)
		assert.Equal(t, tasks.TypeStripeEvent, info.Type)
	}
	f.startWorker(t, w.redis)
	require.Eventually(t, func() bool {
		for _, id := range ids {
			if f.event(t, id).ProcessedAt == nil {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond)
	assert.Equal(t, "active", f.account(t, acct).Status, "the newest event's state (evt_applied_02)")
}

// With no event before the window (a new account), the window is read
// newest first and recorded oldest first.
func TestSyncWithoutAnAnchorRecordsOldestFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := newSyncWorld(t, f)
	since := w.now.Add(-6 * time.Hour)
	ids := w.addEvents(t, "evt_fresh", "cus_fresh", since.Add(time.Minute), 11)
	res, err := w.syncer.Run(context.Background(), billing.SyncOptions{Since: since, PageSize: 4})
	require.NoError(t, err)
	assert.Equal(t, 11, res.Recorded)
	assert.Equal(t, ids, receivedOrder(t, f.store))
	reqs := w.api.Requests()
	require.Len(t, reqs, 4, "the anchor query and three pages")
	assert.Equal(t, fmt.Sprint(since.Unix()), reqs[1].Query.Get("created[gte]"))
	assert.Equal(t, ids[7], reqs[2].Query.Get("starting_after"))
}

// A 429 during a sync is waited out, as Retry-After asks.
func TestSyncWaitsOutARateLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := newSyncWorld(t, f)
	since := w.now.Add(-time.Hour)
	w.addEvents(t, "evt_before", "cus_rl", since.Add(-time.Minute), 1)
	ids := w.addEvents(t, "evt_rl", "cus_rl", since.Add(time.Minute), 6)
	w.api.ReplyTo(3, stripetest.Reply{Status: 429, RetryAfter: "2"})
	w.api.ReplyTo(4, stripetest.Reply{Status: 429, RetryAfter: "1"})
	res, err := w.syncer.Run(context.Background(), billing.SyncOptions{Since: since, PageSize: 3})
	require.NoError(t, err)
	assert.Equal(t, 6, res.Recorded)
	assert.Equal(t, ids, receivedOrder(t, f.store))
	assert.Equal(t, []time.Duration{2 * time.Second, time.Second}, *w.waits)
	var statuses []int
	for _, r := range w.api.Requests() {
		statuses = append(statuses, r.Status)
	}
	assert.Equal(t, []int{200, 200, 429, 429, 200}, statuses)
}

// Refusals come with their reasons; a dry run records nothing.
func TestSyncRefusalsAndDryRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := newSyncWorld(t, f)
	since := w.now.Add(-time.Hour)
	w.addEvents(t, "evt_ok", "cus_dry", since.Add(time.Minute), 2)
	created := since.Add(5 * time.Minute).Unix()
	require.NoError(t, w.api.AddEvent([]byte(fmt.Sprintf(`{"id":"evt_noobj","object":"event","type":"invoice.payment_failed","created":%d,"data":{}}`, created))))
	require.NoError(t, w.api.AddEvent([]byte(fmt.Sprintf(`{"id":"evt_%s","object":"event","type":"customer.created","created":%d,"data":{"object":{"id":"cus_1"}}}`, strings.Repeat("l", 260), created+1))))

	dry, err := w.syncer.Run(context.Background(), billing.SyncOptions{Since: since, DryRun: true})
	require.NoError(t, err)
	assert.True(t, dry.DryRun)
	assert.Equal(t, 4, dry.Listed)
	assert.Equal(t, 2, dry.Missing)
	assert.Zero(t, dry.Recorded)
	assert.Len(t, dry.Refused, 2)
	assert.Empty(t, receivedOrder(t, f.store), "a dry run records nothing")

	res, err := w.syncer.Run(context.Background(), billing.SyncOptions{Since: since})
	require.NoError(t, err)
	assert.Equal(t, 2, res.Recorded)
	require.Len(t, res.Refused, 2)
	assert.Equal(t, billing.SyncRefusal{EventID: "evt_noobj", Type: "invoice.payment_failed", Reason: "event evt_noobj (invoice.payment_failed) has no data.object"}, res.Refused[0])
	assert.Equal(t, "event id is 264 characters long; Stripe's are at most 255", res.Refused[1].Reason)
	assert.Equal(t, dry.Refused, res.Refused, "the dry run predicts the refusals")
}

func TestSyncRefusesMoreThan30Days(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := newSyncWorld(t, f)
	_, err := w.syncer.Run(context.Background(), billing.SyncOptions{Since: w.now.Add(-31 * 24 * time.Hour)})
	assert.ErrorIs(t, err, billing.ErrSyncTooOld)
	assert.Empty(t, w.api.Requests())
}

// The scheduled sync starts 72 hours back the first time, then an hour
// before where the last complete run got.
func TestScheduledSyncMovesItsMark(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := newSyncWorld(t, f)
	clock := w.now
	f.opts.Stripe = w.syncer.API
	f.opts.Now = func() time.Time { return clock }
	f.rebuild()
	run := func(slot time.Time) {
		task, err := tasks.NewStripeSync(tasks.StripeSyncPayload{Slot: slot})
		require.NoError(t, err)
		require.NoError(t, f.handler.ProcessStripeSync(context.Background(), task))
	}
	run(clock)
	first := w.api.Requests()[0].Query.Get("created[lt]")
	assert.Equal(t, fmt.Sprint(clock.Add(-72*time.Hour).Unix()), first)

	start := clock
	clock = clock.Add(30 * time.Minute)
	run(clock)
	reqs := w.api.Requests()
	assert.Equal(t, fmt.Sprint(start.Add(-time.Hour).Unix()), reqs[len(reqs)-2].Query.Get("created[lt]"), "an hour before the last run's start")

	reached, err := f.store.StripeSyncReached(context.Background(), "events")
	require.NoError(t, err)
	assert.True(t, clock.Equal(reached))

	// Without a key the task fails naming the variable.
	f.opts.Stripe = nil
	f.rebuild()
	task, err := tasks.NewStripeSync(tasks.StripeSyncPayload{Slot: clock})
	require.NoError(t, err)
	assert.ErrorContains(t, f.handler.ProcessStripeSync(context.Background(), task), "STRIPE_SECRET_KEY")
}
