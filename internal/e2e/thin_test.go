package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/stripetest"
)

// runCLI runs the cleantrack binary with env and returns its output; it
// must succeed.
func runCLI(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "cleantrack"), args...)
	cmd.Env = proctest.Environ(env)
	cmd.Dir = t.TempDir() // no .env there
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "cleantrack %v: %s", args, out)
	return string(out)
}

// A thin event goes through the real web process to the inbox; the real
// worker fetches the subscription it names from the Stripe API
// (STRIPE_API_BASE, here the shared fake) and applies it. Then its snapshot
// twin arrives and changes nothing.
func TestThinEventThroughTheBinaries(t *testing.T) {
	t.Parallel()
	api := stripetest.NewAPI()
	t.Cleanup(api.Close)
	s := newSystem(t)
	s.env["STRIPE_SECRET_KEY"] = "sk_test_e2e"
	s.env["STRIPE_API_BASE"] = api.URL()
	s.startWeb(t)
	s.startWorker(t)

	id := s.account(t, "thin-clinic", "cus_thin_e2e")
	end := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second).UTC()
	api.PutSubscription(stripetest.Subscription{ID: "sub_thin_e2e", Customer: "cus_thin_e2e", Status: "past_due", PeriodEnd: end})
	snapshot := stripetest.MustBuildEvent(stripetest.EventOptions{Type: "customer.subscription.updated", ID: "evt_snap_e2e",
		CustomerID: "cus_thin_e2e", SubscriptionID: "sub_thin_e2e", Status: "past_due", PeriodEnd: end, Created: time.Now().Add(-time.Minute)})
	thin := stripetest.MustBuildThinEvent(stripetest.ThinEventOptions{Type: "v1.customer.subscription.updated", ID: "evt_test_thin_e2e",
		ObjectID: "sub_thin_e2e", SnapshotEvent: "evt_snap_e2e"})

	status, out := s.post(t, thin)
	require.Equal(t, 200, status, "%v", out)
	eventually(t, 20*time.Second, "the account to turn past_due", func() bool { return s.accountState(t, id).Status == "past_due" })
	a := s.accountState(t, id)
	require.NotNil(t, a.SubscriptionID)
	assert.Equal(t, "sub_thin_e2e", *a.SubscriptionID)
	require.NotNil(t, a.EndDate)
	assert.True(t, end.Equal(*a.EndDate))
	var calls []string
	for _, r := range api.Requests() {
		calls = append(calls, r.Method+" "+r.Path)
	}
	assert.Equal(t, []string{"GET /v1/subscriptions/sub_thin_e2e"}, calls)

	status, _ = s.post(t, snapshot)
	require.Equal(t, 200, status)
	eventually(t, 20*time.Second, "the snapshot twin to be processed", func() bool { return s.processed(t, "evt_snap_e2e") })
	var twinOf string
	require.NoError(t, s.store.DB.Get(&twinOf, `SELECT COALESCE(twin_of, '') FROM stripe_events WHERE id = 'evt_snap_e2e'`))
	assert.Equal(t, "evt_test_thin_e2e", twinOf)
}

// "cleantrack stripe sync" records what the webhook never delivered, and
// the worker applies it.
func TestSyncThroughTheBinaries(t *testing.T) {
	t.Parallel()
	api := stripetest.NewAPI()
	t.Cleanup(api.Close)
	s := newSystem(t)
	s.env["STRIPE_SECRET_KEY"] = "sk_test_e2e"
	s.env["STRIPE_API_BASE"] = api.URL()
	s.startWorker(t)
	id := s.account(t, "missed-clinic", "cus_missed")
	require.NoError(t, api.AddEvent(stripetest.MustBuildEvent(stripetest.EventOptions{Type: "customer.subscription.updated", ID: "evt_missed",
		CustomerID: "cus_missed", SubscriptionID: "sub_missed", Status: "unpaid", Created: time.Now().Add(-2 * time.Hour)})))

	out := runCLI(t, s.env, "stripe", "sync", "--since", "24h")
	assert.Contains(t, out, "listed 1 event since ")
	assert.Contains(t, out, "0 already in the inbox, 1 recorded, 0 refused")
	eventually(t, 20*time.Second, "the account to turn unpaid", func() bool { return s.accountState(t, id).Status == "unpaid" })
}
