package billing_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/billing"
	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/stripetest"
	"github.com/cleantrack/jobs/internal/testfactory"
	"github.com/cleantrack/jobs/tasks"
)

// notification is one call a recordingNotifier received.
type notification struct {
	Kind      string // "subscription_created" or "payment_failed"
	AccountID int64
	ObjectID  string // subscription or invoice id
	Attempt   int
}

// recordingNotifier remembers every call; it fails while failWith is set.
type recordingNotifier struct {
	mu       sync.Mutex
	calls    []notification
	failWith error
}

func (n *recordingNotifier) SubscriptionCreated(_ context.Context, accountID int64, subscriptionID string, _ time.Time) error {
	return n.record(notification{Kind: "subscription_created", AccountID: accountID, ObjectID: subscriptionID})
}

func (n *recordingNotifier) PaymentFailed(_ context.Context, accountID int64, invoiceID string, attempt int) error {
	return n.record(notification{Kind: "payment_failed", AccountID: accountID, ObjectID: invoiceID, Attempt: attempt})
}

func (n *recordingNotifier) record(c notification) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failWith != nil {
		return n.failWith
	}
	n.calls = append(n.calls, c)
	return nil
}

func (n *recordingNotifier) setFailure(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.failWith = err
}

func (n *recordingNotifier) Calls() []notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]notification(nil), n.calls...)
}

type fixture struct {
	store    *postgres.Store
	notifier *recordingNotifier
	handler  *billing.Handler

	// What handler was built with; change them, then call rebuild.
	notify billing.Notifier
	enq    queue.Enqueuer
	opts   billing.Options
}

// newFixture gives a test its own database and a handler over it, with the
// production minimum age for the sweep. The handler has no enqueuer; tests of
// the sweep set one.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, _ := pgtest.NewStore(t)
	n := &recordingNotifier{}
	f := &fixture{store: store, notifier: n, notify: n, opts: billing.Options{RedriveMinAge: time.Minute}}
	f.rebuild()
	return f
}

// rebuild replaces the handler with one built from f.notify, f.enq and f.opts.
func (f *fixture) rebuild() {
	f.handler = billing.New(f.store, f.notify, f.enq, slog.New(slog.NewTextHandler(io.Discard, nil)), f.opts)
}

// fresh returns a fixture on f's database with a notifier and handler of
// its own, for subtests that share one database.
func (f *fixture) fresh() *fixture {
	n := &recordingNotifier{}
	g := &fixture{store: f.store, notifier: n, notify: n, opts: billing.Options{RedriveMinAge: time.Minute}}
	g.rebuild()
	return g
}

// createAccount inserts an owner and an account with slug, linked to
// customerID unless it is empty, and returns the account id.
func (f *fixture) createAccount(t *testing.T, slug, customerID string) int64 {
	t.Helper()
	return testfactory.Account(t, f.store, &testfactory.AccountOpts{Slug: slug, StripeCustomerID: customerID}).ID
}

// addPlan adds a plan sold at priceID.
func (f *fixture) addPlan(t *testing.T, code, priceID string) {
	t.Helper()
	_, err := f.store.DB.ExecContext(context.Background(),
		`INSERT INTO plans (code, name, stripe_price_id, max_locations, max_users) VALUES ($1, $2, $3, 50, 100)`,
		code, "Plan "+code, priceID)
	require.NoError(t, err)
}

func (f *fixture) setStatus(t *testing.T, accountID int64, status string) {
	t.Helper()
	_, err := f.store.DB.ExecContext(context.Background(), `UPDATE accounts SET status = $2 WHERE id = $1`, accountID, status)
	require.NoError(t, err)
}

func (f *fixture) account(t *testing.T, id int64) postgres.Account {
	t.Helper()
	a, err := f.store.AccountByID(context.Background(), id)
	require.NoError(t, err)
	return a
}

func (f *fixture) event(t *testing.T, id string) postgres.InboxEvent {
	t.Helper()
	e, err := f.store.StripeEventByID(context.Background(), id)
	require.NoError(t, err)
	return e
}

// record builds an event with opts and stores it in the inbox as the web
// process would, returning its id.
func (f *fixture) record(t *testing.T, opts stripetest.EventOptions) string {
	t.Helper()
	payload, err := stripetest.BuildEvent(opts)
	require.NoError(t, err)
	return f.recordRaw(t, payload)
}

// recordRaw stores payload in the inbox; its envelope must carry id, type and
// created.
func (f *fixture) recordRaw(t *testing.T, payload []byte) string {
	t.Helper()
	var ev struct {
		ID         string `json:"id"`
		Type       string `json:"type"`
		APIVersion string `json:"api_version"`
		Created    int64  `json:"created"`
	}
	require.NoError(t, json.Unmarshal(payload, &ev))
	created := time.Unix(ev.Created, 0)
	if ev.Created == 0 {
		created = time.Now()
	}
	dup, err := f.store.InsertStripeEvent(context.Background(), postgres.StripeEvent{
		ID: ev.ID, Type: ev.Type, APIVersion: ev.APIVersion, CreatedAt: created, Payload: payload,
	})
	require.NoError(t, err)
	require.False(t, dup, "event %s recorded twice", ev.ID)
	return ev.ID
}

// process runs the stripe:event handler for the inbox row, as the worker would
// (without Asynq's retry bookkeeping in ctx).
func (f *fixture) process(t *testing.T, eventID string) error {
	t.Helper()
	ev := f.event(t, eventID)
	task, err := tasks.NewStripeEvent(tasks.StripeEventPayload{EventID: ev.ID, Type: ev.Type})
	require.NoError(t, err)
	return f.handler.ProcessStripeEvent(context.Background(), task)
}

func isSkipRetry(err error) bool { return errors.Is(err, asynq.SkipRetry) }
