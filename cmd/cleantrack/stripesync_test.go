package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/billing"
	"github.com/cleantrack/jobs/internal/stripetest"
	"github.com/cleantrack/jobs/tasks"
)

// withAPI points the fixture's CLI at a fake Stripe API.
func (f *stripeCLIFixture) withAPI(t *testing.T) *stripetest.API {
	t.Helper()
	api := stripetest.NewAPI()
	t.Cleanup(api.Close)
	f.env["STRIPE_SECRET_KEY"] = "sk_test_cli"
	f.env["STRIPE_API_BASE"] = api.URL()
	return api
}

func TestStripeSyncRecordsWhatTheWebhookMissed(t *testing.T) {
	t.Parallel()
	f := newStripeCLIFixture(t)
	api := f.withAPI(t)
	f.account(t, "acme", "cus_acme")
	now := time.Now().Truncate(time.Second)
	var ids []string
	for i := range 5 {
		raw := stripetest.MustBuildEvent(stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated, ID: fmt.Sprintf("evt_cli_%d", i),
			CustomerID: "cus_acme", SubscriptionID: "sub_acme", Created: now.Add(time.Duration(i-10) * time.Hour)})
		require.NoError(t, api.AddEvent(raw))
		ids = append(ids, fmt.Sprintf("evt_cli_%d", i))
	}
	// The webhook had the first; Stripe answers the first page with a 429.
	f.record(t, stripetest.EventOptions{Type: tasks.EventSubscriptionUpdated, ID: ids[0], CustomerID: "cus_acme", SubscriptionID: "sub_acme", Created: now.Add(-10 * time.Hour)})
	api.ReplyTo(2, stripetest.Reply{Status: 429, RetryAfter: "1"})

	out, stderr, err := cli(t, f.env, "stripe", "sync", "--since", "24h", "--dry-run")
	require.NoError(t, err, stderr)
	assert.Contains(t, out, "listed 5 events since ")
	assert.Contains(t, out, "1 already in the inbox, 4 missing (not recorded: dry run), 0 refused")
	assert.Contains(t, stderr, "Stripe answered 429 rate_limit, Retry-After: 1 to GET /v1/events; waiting 1s before attempt 2", "the wait is shown")
	reqs := api.Requests()
	require.GreaterOrEqual(t, len(reqs), 3)
	assert.GreaterOrEqual(t, reqs[2].At.Sub(reqs[1].At), 900*time.Millisecond, "the 429 was waited out")

	out, stderr, err = cli(t, f.env, "stripe", "sync", "--since", "24h")
	require.NoError(t, err, stderr)
	assert.Contains(t, out, "1 already in the inbox, 4 recorded, 0 refused")
	// No event before the window: read newest first, recorded oldest first.
	assert.Contains(t, stderr, "page 1 (newest first): 5 events\nrecording 5 listed events, oldest first\n")
	assert.Contains(t, stderr, "listing Stripe events since ")

	out, _, err = cli(t, f.env, "stripe", "events", "--json")
	require.NoError(t, err)
	var rows []stripeEventView
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	sources := map[string]string{}
	for _, r := range rows {
		sources[r.ID] = r.Source
		assert.Equal(t, "snapshot", r.Kind)
	}
	assert.Equal(t, map[string]string{ids[0]: "webhook", ids[1]: "sync", ids[2]: "sync", ids[3]: "sync", ids[4]: "sync"}, sources)
	out, _, err = cli(t, f.env, "stripe", "events")
	require.NoError(t, err)
	assert.Regexp(t, `evt_cli_3\s+customer\.subscription\.updated\s+snapshot\s+sync\s`, out)

	out, _, err = cli(t, f.env, "stripe", "sync", "--since", "24h", "--json")
	require.NoError(t, err)
	var res billing.SyncResult
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Equal(t, 5, res.Listed)
	assert.Equal(t, 5, res.AlreadyInInbox)
	assert.Equal(t, []billing.SyncRefusal{}, res.Refused)
}

func TestStripeSyncUsage(t *testing.T) {
	t.Parallel()
	f := newStripeCLIFixture(t)
	_, _, err := cli(t, f.env, "stripe", "sync")
	assert.ErrorContains(t, err, "STRIPE_SECRET_KEY is not set: stripe sync reads Stripe's List Events API with it")
	assert.Equal(t, 1, exitCode(err))
	f.withAPI(t)
	for _, since := range []string{"31d", "800h", "2020-01-01T00:00:00Z"} {
		_, _, err = cli(t, f.env, "stripe", "sync", "--since", since)
		assert.ErrorContains(t, err, "Stripe keeps events for 30 days only", since)
		assert.Equal(t, 2, exitCode(err), since)
	}
	_, _, err = cli(t, f.env, "stripe", "sync", "--since", "yesterday")
	assert.Equal(t, 2, exitCode(err))
}

func TestStripeReconcileReportsAndFixes(t *testing.T) {
	t.Parallel()
	f := newStripeCLIFixture(t)
	api := f.withAPI(t)
	id := f.account(t, "drifty", "cus_drifty")
	f.account(t, "steady", "cus_steady")
	end := time.Now().AddDate(0, 1, 0).Truncate(time.Second).UTC()
	_, err := f.store.DB.Exec(`UPDATE accounts SET stripe_subscription_id = 'sub_steady', status = 'active', subscription_end_date = $1 WHERE slug = 'steady'`, end)
	require.NoError(t, err)
	api.PutSubscription(stripetest.Subscription{ID: "sub_drifty", Customer: "cus_drifty", Status: "active", PeriodEnd: end})
	api.PutSubscription(stripetest.Subscription{ID: "sub_steady", Customer: "cus_steady", Status: "active", PeriodEnd: end})

	out, stderr, err := cli(t, f.env, "stripe", "reconcile")
	require.Error(t, err)
	assert.Equal(t, 1, exitCode(err), "differences remain")
	assert.Equal(t, "1 account still differs from Stripe", err.Error())
	assert.Contains(t, out, "drifty (cus_drifty): subscription: account has none, Stripe has sub_drifty\n")
	assert.Contains(t, out, "drifty (cus_drifty): status: account has trialing, Stripe has active\n")
	assert.Contains(t, out, "drifty (cus_drifty): period_end: account has none, Stripe has "+end.Format(time.RFC3339)+"\n")
	assert.NotContains(t, out, "steady (")
	assert.Contains(t, out, "checked 2 accounts: 1 differ, 1 still differ")
	assert.Contains(t, stderr, "steady (cus_steady): 0 differences")

	out, _, err = cli(t, f.env, "stripe", "reconcile", "--account", "drifty", "--fix")
	require.NoError(t, err, out)
	assert.Contains(t, out, "drifty (cus_drifty): fix applied: inbox row reconcile_")
	assert.Contains(t, out, "checked 1 account: 1 differ, 1 fixed, 0 still differ")

	out, _, err = cli(t, f.env, "stripe", "reconcile", "--json")
	require.NoError(t, err)
	var rep billing.ReconcileReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, 2, rep.Checked)
	assert.Zero(t, rep.Remaining)

	out, _, err = cli(t, f.env, "stripe", "events", "--json")
	require.NoError(t, err)
	var rows []stripeEventView
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	require.Len(t, rows, 1)
	assert.Equal(t, "reconcile", rows[0].Source)
	assert.Equal(t, "processed", rows[0].Status)
	assert.Contains(t, rows[0].Note, "reconcile: subscription none -> sub_drifty; status trialing -> active")
	a, err := f.store.AccountByID(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, "active", a.Status)

	_, _, err = cli(t, f.env, "stripe", "reconcile", "--account", "nobody")
	assert.Equal(t, 2, exitCode(err))
	f.account(t, "unlinked", "")
	_, _, err = cli(t, f.env, "stripe", "reconcile", "--account", "unlinked")
	assert.ErrorContains(t, err, "has no Stripe customer")
	assert.Equal(t, 2, exitCode(err))
}

// What a new user sees with STRIPE_API_BASE pointing at stripe-mock: its
// one fixture event is of a type CleanTrack does not apply, and its
// fixture subscription belongs to another customer. Both commands say so.
func TestStripeSyncAndReconcileAgainstStripeMock(t *testing.T) {
	t.Parallel()
	base := stripetest.StartMock(t)
	f := newStripeCLIFixture(t)
	f.env["STRIPE_SECRET_KEY"] = "sk_test_123"
	f.env["STRIPE_API_BASE"] = base
	_, _, err := cli(t, f.env, "seed", "demo")
	require.NoError(t, err)

	out, stderr, err := cli(t, f.env, "stripe", "sync", "--since", "24h")
	require.NoError(t, err, stderr)
	t.Logf("stripe sync --since 24h\nstdout:\n%sstderr:\n%s", out, stderr)
	assert.Contains(t, out, "listed 1 event since ")
	assert.Contains(t, out, "0 already in the inbox, 0 recorded, 1 refused")
	assert.Regexp(t, `refused evt_\w+ \(plan\.created\): type plan\.created is not one CleanTrack applies`, out)

	out, stderr, err = cli(t, f.env, "stripe", "reconcile")
	t.Logf("stripe reconcile\nstdout:\n%sstderr:\n%s", out, stderr)
	require.NoError(t, err, "the demo account has no subscription and Stripe lists none of its own")
	assert.Regexp(t, `demo-hospital \(cus_demo_hospital\): note: Stripe listed subscription sub_\w+ of another customer \(cus_\w+\); ignored`, out)
	assert.Contains(t, out, "checked 1 account: 0 differ, 0 still differ")
	assert.False(t, strings.Contains(out, "fix "), "nothing fixed")
}
