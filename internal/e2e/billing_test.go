package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/redistest"
	"github.com/cleantrack/jobs/internal/resendtest"
	"github.com/cleantrack/jobs/internal/stripetest"
	"github.com/cleantrack/jobs/internal/testfactory"
)

const secret = "whsec_e2e_secret"

// system is one isolated installation: its own database, Redis database,
// ports and outbox.
type system struct {
	store    *postgres.Store
	redisURL string
	env      map[string]string
	webURL   string
	adminURL string
	outbox   string
}

func newSystem(t *testing.T) *system {
	t.Helper()
	store, dbURL := pgtest.NewStore(t)
	redisURL := redistest.NewURL(t)
	webAddr := proctest.FreeAddrT(t)
	adminAddr := proctest.FreeAddrT(t)
	outbox := t.TempDir()
	env := map[string]string{
		"DATABASE_URL":           dbURL,
		"REDIS_URL":              redisURL,
		"PORT":                   strings.Split(webAddr, ":")[1],
		"STRIPE_WEBHOOK_SECRET":  secret,
		"ADMIN_ADDR":             adminAddr,
		"WORKER_METRICS_ADDR":    proctest.FreeAddrT(t),
		"SCHEDULER_METRICS_ADDR": proctest.FreeAddrT(t),
		"LOG_FORMAT":             "json",
		"EMAIL_OUTBOX_DIR":       outbox,
		"INBOX_REDRIVE_MIN_AGE":  "0s",
		"LOG_LEVEL":              "debug",
		"WORKER_CONCURRENCY":     "4",
	}
	return &system{store: store, redisURL: redisURL, env: env, webURL: "http://" + webAddr, adminURL: "http://" + adminAddr, outbox: outbox}
}

func (s *system) startWeb(t *testing.T) *proctest.Proc {
	t.Helper()
	p := start(t, "web", s.env)
	proctest.WaitHTTPT(t, s.webURL+"/healthz", p)
	return p
}

// startWorker starts a worker and waits until its /readyz (PostgreSQL and
// Redis reachable) answers 200.
func (s *system) startWorker(t *testing.T) *proctest.Proc {
	t.Helper()
	p := start(t, "worker", s.env)
	proctest.WaitHTTPT(t, "http://"+s.env["WORKER_METRICS_ADDR"]+"/readyz", p)
	return p
}

// startScheduler starts a scheduler and waits until its /readyz answers 200.
func (s *system) startScheduler(t *testing.T) *proctest.Proc {
	t.Helper()
	p := start(t, "scheduler", s.env)
	proctest.WaitHTTPT(t, "http://"+s.env["SCHEDULER_METRICS_ADDR"]+"/readyz", p)
	return p
}

// account creates an owner and an account linked to a Stripe customer.
func (s *system) account(t *testing.T, slug, customerID string) int64 {
	t.Helper()
	return testfactory.Account(t, s.store, &testfactory.AccountOpts{Slug: slug, Name: "Clinic " + slug, StripeCustomerID: customerID}).ID
}

// post sends payload to the Stripe endpoint, signed, and returns the answer.
func (s *system) post(t *testing.T, payload []byte) (int, map[string]any) {
	t.Helper()
	req, err := stripetest.SignedRequest(context.Background(), s.webURL+"/billing/webhooks/stripe/", payload, secret, time.Time{})
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(body, &out)
	return resp.StatusCode, out
}

type accountRow struct {
	Status         string     `db:"status"`
	SubscriptionID *string    `db:"stripe_subscription_id"`
	EndDate        *time.Time `db:"subscription_end_date"`
}

func (s *system) accountState(t *testing.T, id int64) accountRow {
	t.Helper()
	var a accountRow
	require.NoError(t, s.store.DB.Get(&a, `SELECT status, stripe_subscription_id, subscription_end_date FROM accounts WHERE id = $1`, id))
	return a
}

func (s *system) processed(t *testing.T, eventID string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, s.store.DB.Get(&ok, `SELECT processed_at IS NOT NULL FROM stripe_events WHERE id = $1`, eventID))
	return ok
}

// A signed webhook goes through the web process, Redis and a real worker to
// the account row, for both API shapes.
func TestWebhookToAccount(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.startWeb(t)
	s.startWorker(t)

	for _, shape := range []string{stripetest.Shape2023, stripetest.Shape2025} {
		// Not parallel: on a Redis Cluster this test holds the whole
		// cluster, and a parallel subtest would wait for a slot that a test
		// waiting for the cluster holds.
		t.Run(shape, func(t *testing.T) {
			cus := "cus_e2e_" + shape
			id := s.account(t, "clinic-"+shape, cus)
			end := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second).UTC()
			evt := stripetest.NewID("evt_")
			payload, err := stripetest.BuildEvent(stripetest.EventOptions{
				Type: "customer.subscription.created", ID: evt, Shape: shape,
				CustomerID: cus, SubscriptionID: "sub_e2e_" + shape, Status: "active", PeriodEnd: end,
			})
			require.NoError(t, err)
			status, out := s.post(t, payload)
			require.Equal(t, 200, status, "%v", out)
			assert.Equal(t, false, out["duplicate"])

			eventually(t, 20*time.Second, "the account to turn active", func() bool {
				return s.accountState(t, id).Status == "active"
			})
			a := s.accountState(t, id)
			require.NotNil(t, a.SubscriptionID)
			assert.Equal(t, "sub_e2e_"+shape, *a.SubscriptionID)
			require.NotNil(t, a.EndDate)
			assert.True(t, end.Equal(*a.EndDate), "period end %v, got %v", end, *a.EndDate)
			eventually(t, 5*time.Second, "processed_at", func() bool { return s.processed(t, evt) })

			// Stripe delivering it again changes nothing and says so.
			status, out = s.post(t, payload)
			require.Equal(t, 200, status)
			assert.Equal(t, true, out["duplicate"])
		})
	}
}

// Redis loses the queued task after the web process answered 200: the
// scheduler's inbox sweep re-drives the event from PostgreSQL.
func TestRedisFlushedAfterAcceptIsRedriven(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.startWeb(t)
	id := s.account(t, "flushed", "cus_flushed")
	evt := stripetest.NewID("evt_")
	payload, err := stripetest.BuildEvent(stripetest.EventOptions{
		Type: "customer.subscription.updated", ID: evt, Shape: stripetest.Shape2025,
		CustomerID: "cus_flushed", SubscriptionID: "sub_flushed", Status: "past_due",
	})
	require.NoError(t, err)
	status, _ := s.post(t, payload)
	require.Equal(t, 200, status)

	// Every key gone, on every master of a cluster too.
	redistest.Flush(t, s.redisURL)

	s.startWorker(t)
	s.startScheduler(t)
	eventually(t, 30*time.Second, "the re-driven event to be applied", func() bool {
		return s.accountState(t, id).Status == "past_due"
	})
	assert.True(t, s.processed(t, evt))
}

// Billing events trigger their emails end to end: one welcome per
// subscription and one payment-failed email per invoice attempt and
// recipient, however often Stripe delivers the events.
func TestBillingEmailsEndToEnd(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	fake := resendtest.New(t)
	s.env["RESEND_API_KEY"] = "re_test_key"
	s.env["RESEND_BASE_URL"] = fake.URL()
	s.env["EMAIL_RATE_PER_SECOND"] = "50"
	s.startWeb(t)
	s.startWorker(t)
	id := s.account(t, "mailed", "cus_mailed")
	testfactory.Member(t, s.store, id, postgres.RoleAdmin, &testfactory.UserOpts{Email: "admin@mailed.example", FirstName: "Ada"})

	send := func(o stripetest.EventOptions) {
		t.Helper()
		o.CustomerID, o.SubscriptionID = "cus_mailed", "sub_mailed"
		payload, err := stripetest.BuildEvent(o)
		require.NoError(t, err)
		status, out := s.post(t, payload)
		require.Equal(t, 200, status, "%v", out)
	}
	// The same subscription announced by two distinct events (Stripe can
	// resend a logical event under a new id), each delivered twice.
	created := time.Now().Add(-time.Minute)
	for i := 0; i < 2; i++ {
		o := stripetest.EventOptions{Type: "customer.subscription.created", ID: stripetest.NewID("evt_"), Created: created, Status: "active", Shape: stripetest.Shape2025}
		send(o)
		send(o)
	}
	// Attempt 1 of an invoice, delivered twice; then attempt 2.
	fail1 := stripetest.EventOptions{Type: "invoice.payment_failed", ID: stripetest.NewID("evt_"), InvoiceID: "in_mailed", AttemptCount: 1, Amount: 12900, Currency: "eur"}
	send(fail1)
	send(fail1)
	send(stripetest.EventOptions{Type: "invoice.payment_failed", ID: stripetest.NewID("evt_"), InvoiceID: "in_mailed", AttemptCount: 2, Amount: 12900, Currency: "eur"})

	// 1 welcome (owner) + 2 attempts x 2 recipients (owner, admin).
	eventually(t, 30*time.Second, "five emails at the Resend fake", func() bool { return fake.DeliveredCount() >= 5 })
	time.Sleep(2 * time.Second) // a late duplicate would show up now
	require.Equal(t, 5, fake.RequestCount(), "one request per email: %v", fake.Keys())
	keys := map[string]int{}
	var welcome int
	for _, e := range fake.Delivered() {
		keys[e.Key]++
		if strings.Contains(e.Subject, "Welcome to CleanTrack") {
			welcome++
			assert.Equal(t, []string{"mailed-owner@example.com"}, e.To)
		}
	}
	assert.Equal(t, 1, welcome)
	assert.Len(t, keys, 5, "each email has its own idempotency key: %v", keys)
	var sent int
	require.NoError(t, s.store.DB.Get(&sent, `SELECT count(*) FROM email_deliveries WHERE status = 'sent'`))
	assert.Equal(t, 5, sent)
	assertKeysHashTagged(t, s.redisURL)
}

// asynqGlobals are Asynq's keys outside any queue: each is read and written
// alone, never with another key, so it needs no hash tag.
var asynqGlobals = map[string]bool{"asynq:servers": true, "asynq:workers": true, "asynq:schedulers": true, "asynq:queues": true}

// assertKeysHashTagged checks that every key the processes left in Redis
// carries a Redis Cluster hash tag ({...}) or is one of Asynq's global keys,
// so that whatever touches several keys at once stays in one slot.
func assertKeysHashTagged(t *testing.T, redisURL string) {
	t.Helper()
	keys := redistest.Keys(t, redisURL)
	require.NotEmpty(t, keys)
	for _, k := range keys {
		open := strings.IndexByte(k, '{')
		tagged := open >= 0 && strings.IndexByte(k[open:], '}') > 1
		assert.True(t, tagged || asynqGlobals[k], "key %q has no hash tag", k)
	}
}

// Without a Resend key the same trigger lands in the outbox directory.
func TestWelcomeEmailInOutbox(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.startWeb(t)
	s.startWorker(t)
	s.account(t, "outboxed", "cus_outboxed")
	payload, err := stripetest.BuildEvent(stripetest.EventOptions{Type: "customer.subscription.created", CustomerID: "cus_outboxed", SubscriptionID: "sub_outboxed", Status: "trialing"})
	require.NoError(t, err)
	status, _ := s.post(t, payload)
	require.Equal(t, 200, status)
	var files []string
	eventually(t, 20*time.Second, "the welcome email in the outbox", func() bool {
		files, _ = filepath.Glob(filepath.Join(s.outbox, "*welcome*"))
		return len(files) >= 2
	})
	var html string
	for _, f := range files {
		if strings.HasSuffix(f, ".html") {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			html = string(b)
		}
	}
	assert.Contains(t, html, "Clinic outboxed")
}
