package billing_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/billing"
	"github.com/cleantrack/jobs/internal/metrics"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/stripetest"
	"github.com/cleantrack/jobs/tasks"
)

// reconcileWorld: three accounts with a Stripe customer. "drifted" missed
// the events that made it active on the pro plan; "calm" agrees with
// Stripe; "orphan" has a subscription Stripe no longer lists.
type reconcileWorld struct {
	f                       *fixture
	api                     *stripetest.API
	drifted, calm, orphan   int64
	periodEnd, oldPeriodEnd time.Time
}

func newReconcileWorld(t *testing.T, f *fixture) *reconcileWorld {
	t.Helper()
	f.addPlan(t, "pro", "price_pro_monthly")
	api := f.withStripe(t)
	w := &reconcileWorld{f: f, api: api, periodEnd: base.AddDate(0, 1, 0).Truncate(time.Second), oldPeriodEnd: base.Truncate(time.Second)}
	w.drifted = f.createAccount(t, "drifted", "cus_drifted")
	w.calm = f.createAccount(t, "calm", "cus_calm")
	w.orphan = f.createAccount(t, "orphan", "cus_orphan")
	f.createAccount(t, "no-stripe", "")
	ctx := context.Background()
	_, err := f.store.DB.ExecContext(ctx, `UPDATE accounts SET stripe_subscription_id = 'sub_drift', status = 'past_due', subscription_end_date = $1, billing_event_at = $2 WHERE id = $3`,
		w.oldPeriodEnd, base.Add(-time.Hour), w.drifted)
	require.NoError(t, err)
	_, err = f.store.DB.ExecContext(ctx, `UPDATE accounts SET stripe_subscription_id = 'sub_calm', status = 'active', subscription_end_date = $1 WHERE id = $2`,
		w.periodEnd, w.calm)
	require.NoError(t, err)
	_, err = f.store.DB.ExecContext(ctx, `UPDATE accounts SET stripe_subscription_id = 'sub_vanished', status = 'active' WHERE id = $1`, w.orphan)
	require.NoError(t, err)

	// Stripe: drifted's old subscription was canceled and replaced.
	api.PutSubscription(stripetest.Subscription{ID: "sub_drift", Customer: "cus_drifted", Status: "canceled", EndedAt: base.Add(-2 * time.Hour), Created: base.Add(-48 * time.Hour)})
	api.PutSubscription(stripetest.Subscription{ID: "sub_drift_new", Customer: "cus_drifted", Status: "active", PriceID: "price_pro_monthly", PeriodEnd: w.periodEnd, Created: base.Add(-time.Hour)})
	api.PutSubscription(stripetest.Subscription{ID: "sub_calm", Customer: "cus_calm", Status: "active", PeriodEnd: w.periodEnd})
	return w
}

// Reconcile reports the drift, and --fix repairs it with an audit row.
func TestReconcileReportsDriftAndFixRepairsIt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := newReconcileWorld(t, f)
	r := &billing.Reconciler{API: f.opts.Stripe, Store: f.store, Now: func() time.Time { return fetchTime }}
	ctx := context.Background()

	rep, err := r.Run(ctx, billing.ReconcileOptions{})
	require.NoError(t, err)
	assert.Equal(t, 3, rep.Checked, "accounts with a Stripe customer")
	assert.Equal(t, 2, rep.Drifted)
	assert.Equal(t, 2, rep.Remaining)
	assert.Zero(t, rep.Fixed)
	require.Len(t, rep.Accounts, 2)
	drift := rep.Accounts[0]
	assert.Equal(t, "drifted", drift.Slug)
	assert.Equal(t, "sub_drift_new", drift.SubscriptionID, "the live subscription, not the account's canceled one")
	assert.Equal(t, []billing.Difference{
		{Field: "subscription", Account: "sub_drift", Stripe: "sub_drift_new"},
		{Field: "status", Account: "past_due", Stripe: "active"},
		{Field: "period_end", Account: w.oldPeriodEnd.UTC().Format(time.RFC3339), Stripe: w.periodEnd.UTC().Format(time.RFC3339)},
		{Field: "plan", Account: "trial", Stripe: "pro"},
	}, drift.Differences)
	assert.Nil(t, drift.Fix)
	orphan := rep.Accounts[1]
	assert.Equal(t, "orphan", orphan.Slug)
	assert.Equal(t, []billing.Difference{{Field: "subscription", Account: "sub_vanished", Stripe: "none"}}, orphan.Differences)
	assert.Equal(t, "past_due", f.account(t, w.drifted).Status, "a report changes nothing")

	rep, err = r.Run(ctx, billing.ReconcileOptions{Fix: true})
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Fixed)
	assert.Equal(t, 1, rep.Remaining, "the orphan cannot be fixed from Stripe")
	fix := rep.Accounts[0].Fix
	require.NotNil(t, fix)
	assert.Equal(t, "applied", fix.Outcome)

	a := f.account(t, w.drifted)
	assert.Equal(t, "sub_drift_new", a.StripeSubscriptionID)
	assert.Equal(t, "active", a.Status)
	assert.Equal(t, "pro", a.Plan)
	require.NotNil(t, a.SubscriptionEndDate)
	assert.True(t, w.periodEnd.Equal(*a.SubscriptionEndDate))
	require.NotNil(t, a.BillingEventAt)
	assert.True(t, fetchTime.Equal(*a.BillingEventAt), "the fetched state is as of the fetch")

	// The audit row: source reconcile, processed, with a note saying what changed.
	row := f.event(t, fix.EventID)
	assert.Equal(t, postgres.SourceReconcile, row.Source)
	assert.NotNil(t, row.ProcessedAt)
	assert.Equal(t, tasks.EventSubscriptionUpdated, row.Type)
	assert.Contains(t, row.Note, "reconcile: subscription sub_drift -> sub_drift_new; status past_due -> active; period_end ")
	assert.Contains(t, row.Note, "plan trial -> pro (subscription sub_drift_new as fetched at ")
	require.NotNil(t, row.FetchedAt)
	assert.NotEmpty(t, row.FetchedObject)
	assert.Equal(t, "calm", f.account(t, w.calm).Slug)
	assert.Equal(t, "active", f.account(t, w.calm).Status, "the calm account is untouched")

	// Once fixed, a report finds nothing on it.
	rep, err = r.Run(ctx, billing.ReconcileOptions{AccountSlug: "drifted"})
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Checked)
	assert.Zero(t, rep.Remaining)
	assert.Empty(t, rep.Accounts)

	_, err = r.Run(ctx, billing.ReconcileOptions{AccountSlug: "no-stripe"})
	assert.ErrorIs(t, err, billing.ErrNoStripeCustomer)
	_, err = r.Run(ctx, billing.ReconcileOptions{AccountSlug: "nobody"})
	assert.ErrorIs(t, err, postgres.ErrNotFound)
}

// The scheduled run logs each difference and sets the drift gauge; it
// fixes only when told to.
func TestScheduledReconcileReportsAndFixesWhenAllowed(t *testing.T) {
	f := newFixture(t)
	w := newReconcileWorld(t, f)
	var logs bytes.Buffer
	f.opts.Now = func() time.Time { return fetchTime }
	run := func(fix bool) {
		f.opts.ReconcileFix = fix
		f.handler = billing.New(f.store, f.notify, f.enq, slog.New(slog.NewJSONHandler(&logs, nil)), f.opts)
		task, err := tasks.NewStripeReconcile(tasks.StripeReconcilePayload{Slot: base})
		require.NoError(t, err)
		require.NoError(t, f.handler.ProcessStripeReconcile(context.Background(), task))
	}
	run(false)
	assert.Equal(t, float64(2), driftGauge(t))
	assert.Contains(t, logs.String(), `"msg":"billing differs from Stripe"`)
	assert.Contains(t, logs.String(), `"field":"status","account_value":"past_due","stripe_value":"active"`)
	assert.Equal(t, "past_due", f.account(t, w.drifted).Status, "no fix without STRIPE_RECONCILE_FIX")

	run(true)
	assert.Equal(t, "active", f.account(t, w.drifted).Status)
	assert.Equal(t, float64(1), driftGauge(t), "the orphan remains")
}

func driftGauge(t *testing.T) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, metrics.BillingDriftAccounts.Write(&m))
	return m.GetGauge().GetValue()
}
