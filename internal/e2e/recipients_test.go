package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/email"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/resendtest"
	"github.com/cleantrack/jobs/internal/stripetest"
	"github.com/cleantrack/jobs/internal/testfactory"
)

// long241 is a valid address of 241 bytes (the most is 254).
func long241() string {
	local := strings.Repeat("o", 64)
	domain := strings.Repeat("d", 63) + "." + strings.Repeat("e", 63) + "." + strings.Repeat("f", 44) + ".com"
	return local + "@" + domain
}

// An owner with a long but valid address never heard of a failed payment,
// and neither did the admins: the key embedded the address (284 bytes), the
// send task refused it, the notifier stopped and the event retried for hours.
// A stored address with a CR/LF did the same. Now each recipient stands
// alone: the long address is sent to, the broken one gets a failed row with
// the reason, the admin is sent to, and the event is processed at once.
func TestPaymentFailedReachesEveryRecipientItCan(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	fake := resendtest.New(t)
	s.env["RESEND_API_KEY"] = "re_test_key"
	s.env["RESEND_BASE_URL"] = fake.URL()
	s.env["EMAIL_RATE_PER_SECOND"] = "50"
	s.startWeb(t)
	s.startWorker(t)
	owner := long241()
	require.Len(t, owner, 241)
	acc := testfactory.Account(t, s.store, &testfactory.AccountOpts{Slug: "long", Name: "Clinic long", StripeCustomerID: "cus_long",
		Owner: &testfactory.UserOpts{Email: owner, FirstName: "Olivia"}})
	testfactory.Member(t, s.store, acc.ID, postgres.RoleAdmin, &testfactory.UserOpts{Email: "admin@long.example", FirstName: "Ada"})
	broken := testfactory.Member(t, s.store, acc.ID, postgres.RoleAdmin, &testfactory.UserOpts{Email: "broken@long.example", FirstName: "Bo"})
	testfactory.LegacyAddress(t, s.store, broken, "broken@long.example\r\nBcc: attacker@example.com")

	evt := stripetest.EventOptions{Type: "invoice.payment_failed", ID: stripetest.NewID("evt_"), CustomerID: "cus_long",
		SubscriptionID: "sub_long", InvoiceID: "in_long", AttemptCount: 1, Amount: 4900, Currency: "usd"}
	payload, err := stripetest.BuildEvent(evt)
	require.NoError(t, err)
	status, out := s.post(t, payload)
	require.Equal(t, 200, status, "%v", out)

	eventually(t, 30*time.Second, "two emails at the Resend fake", func() bool { return fake.DeliveredCount() >= 2 })
	eventually(t, 10*time.Second, "the event processed", func() bool { return s.processed(t, evt.ID) })
	time.Sleep(time.Second) // a late duplicate or a third email would show up now
	var to []string
	for _, e := range fake.Delivered() {
		to = append(to, e.To...)
		assert.LessOrEqual(t, len(e.Key), 256)
	}
	assert.ElementsMatch(t, []string{owner, "admin@long.example"}, to)
	for _, r := range fake.Requests() {
		assert.NotContains(t, string(r.Raw), "attacker@example.com")
	}

	for _, c := range []struct{ to, status, reason string }{
		{owner, postgres.EmailSent, ""},
		{"admin@long.example", postgres.EmailSent, ""},
		{"broken@long.example\r\nBcc: attacker@example.com", postgres.EmailFailed, "control character"},
	} {
		d, err := s.store.EmailDeliveryByKey(t.Context(), email.PaymentFailedKey("in_long", 1, c.to))
		require.NoError(t, err, c.to)
		assert.Equal(t, c.status, d.Status, c.to)
		assert.Contains(t, d.LastError.String, c.reason, c.to)
	}
	var attempts int
	require.NoError(t, s.store.DB.Get(&attempts, `SELECT attempts FROM stripe_events WHERE id = $1`, evt.ID))
	assert.Equal(t, 1, attempts, "the event succeeded at its first attempt")
}
