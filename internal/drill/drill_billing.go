//go:build drills

package drill

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/cleantrack/jobs/internal/bench"
	"github.com/cleantrack/jobs/internal/resendtest"
	"github.com/cleantrack/jobs/internal/stripetest"
)

// startSystem starts web and a worker whose email goes to fake.
func startSystem(ctx context.Context, c *Case, fake *resendtest.Server) error {
	if _, err := c.Start(ctx, "web", "web", nil); err != nil {
		return err
	}
	_, err := c.Start(ctx, "worker", "worker", bench.ResendEnv(fake.URL(), 1000))
	return err
}

func processed(ctx context.Context, c *Case, id string) bool {
	return c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE id = $1 AND processed_at IS NOT NULL`, id) == 1
}

// Drill 1: the same event 50 times at once, then Stripe-style redeliveries
// after it was applied: one inbox row, one account change, one email.
func drillDuplicateStorm(ctx context.Context, c *Case) error {
	fake := resendtest.NewServer()
	defer fake.Close()
	if _, err := c.SeedAccount(ctx, "storm", "cus_storm"); err != nil {
		return err
	}
	if err := startSystem(ctx, c, fake); err != nil {
		return err
	}
	created := time.Now().Add(-time.Minute).Truncate(time.Second)
	periodEnd := created.AddDate(0, 1, 0)
	body := stripetest.MustBuildEvent(stripetest.EventOptions{
		Type: "customer.subscription.created", ID: "evt_storm_created", Created: created, Shape: stripetest.Shape2025,
		SubscriptionID: "sub_storm", CustomerID: "cus_storm", Status: "active", PriceID: "price_trial_monthly", PeriodEnd: periodEnd,
	})

	answers := c.PostConcurrently(ctx, body, 50)
	c.Injected("customer.subscription.created evt_storm_created posted 50 times concurrently")
	ok, first := 0, 0
	for _, a := range answers {
		if a.Status == http.StatusOK {
			ok++
			if !a.Duplicate {
				first++
			}
		}
	}
	c.Check(ok == 50, "%d of 50 deliveries answered 200", ok)
	c.Check(first == 1, "exactly one answer said duplicate=false (got %d)", first)

	c.Check(c.Until(ctx, 30*time.Second, func() bool { return processed(ctx, c, "evt_storm_created") }), "event processed")
	c.Check(c.Until(ctx, 30*time.Second, func() bool { return fake.DeliveredCount() >= 1 }), "welcome email reached Resend")
	updatedAt := c.Str(ctx, `SELECT updated_at::text FROM accounts WHERE slug = 'storm'`)
	processedAt := c.Str(ctx, `SELECT processed_at::text FROM stripe_events WHERE id = 'evt_storm_created'`)

	// Stripe redelivers with a fresh signature timestamp, minutes apart: the
	// last one comes after an inbox sweep has run over the processed row.
	for i, wait := range []time.Duration{0, 30 * time.Second, 40 * time.Second} {
		time.Sleep(wait)
		a := c.Post(ctx, body)
		c.Check(a.Status == http.StatusOK && a.Duplicate, "redelivery %d answered 200 duplicate=true (got %d %s)", i+1, a.Status, a.Body)
	}
	c.Injected("3 Stripe-style redeliveries after the event was applied, over 70 s (past an inbox sweep)")
	time.Sleep(3 * time.Second) // room for a wrong second run to show

	c.Check(c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE id = 'evt_storm_created'`) == 1, "one inbox row")
	c.Check(c.Str(ctx, `SELECT processed_at::text FROM stripe_events WHERE id = 'evt_storm_created'`) == processedAt, "processed once: processed_at unchanged by redeliveries")
	c.Check(c.Str(ctx, `SELECT updated_at::text FROM accounts WHERE slug = 'storm'`) == updatedAt, "one account change: updated_at unchanged by redeliveries")
	got := c.Str(ctx, `SELECT status || ' ' || coalesce(stripe_subscription_id, '-') || ' ' || (subscription_end_date = to_timestamp($1))::text FROM accounts WHERE slug = 'storm'`, periodEnd.Unix())
	c.Check(got == "active sub_storm true", "account active on sub_storm with the period end (got %q)", got)
	keys := fake.Keys()
	c.Check(fake.DeliveredCount() == 1 && len(keys) == 1, "one email: %d delivered, %d idempotency key(s) %v", fake.DeliveredCount(), len(keys), keys)
	return nil
}

// Drill 2: created, updated, deleted delivered newest first: the final state
// is the newest, the older events are processed with a note.
func drillOutOfOrder(ctx context.Context, c *Case) error {
	fake := resendtest.NewServer()
	defer fake.Close()
	if _, err := c.SeedAccount(ctx, "order", "cus_order"); err != nil {
		return err
	}
	if err := startSystem(ctx, c, fake); err != nil {
		return err
	}
	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	end := t0.AddDate(0, 1, 0)
	event := func(id, typ, status, shape string, created time.Time) []byte {
		return stripetest.MustBuildEvent(stripetest.EventOptions{
			Type: typ, ID: id, Created: created, Shape: shape, EndedAt: created,
			SubscriptionID: "sub_order", CustomerID: "cus_order", Status: status, PriceID: "price_trial_monthly", PeriodEnd: end,
		})
	}
	events := []struct {
		id, typ string
		body    []byte
	}{
		{"evt_order_3_deleted", "customer.subscription.deleted", event("evt_order_3_deleted", "customer.subscription.deleted", "canceled", stripetest.Shape2025, t0.Add(2*time.Minute))},
		{"evt_order_2_updated", "customer.subscription.updated", event("evt_order_2_updated", "customer.subscription.updated", "past_due", stripetest.Shape2023, t0.Add(time.Minute))},
		{"evt_order_1_created", "customer.subscription.created", event("evt_order_1_created", "customer.subscription.created", "trialing", stripetest.Shape2025, t0)},
	}
	c.Injected("deleted (t0+2m), updated (t0+1m), created (t0) delivered in that order, each applied before the next")
	for _, ev := range events {
		a := c.Post(ctx, ev.body)
		if a.Status != http.StatusOK {
			return fmt.Errorf("post %s: %d %s %v", ev.id, a.Status, a.Body, a.Err)
		}
		c.Check(c.Until(ctx, 30*time.Second, func() bool { return processed(ctx, c, ev.id) }), "%s processed", ev.id)
	}
	got := c.Str(ctx, `SELECT status || ' ' || (billing_event_at = to_timestamp($1))::text || ' ' || (subscription_end_date = to_timestamp($1))::text FROM accounts WHERE slug = 'order'`, t0.Add(2*time.Minute).Unix())
	c.Check(got == "canceled true true", "final state is the newest: canceled, billing_event_at and end date = deletion time (got %q)", got)
	stale := c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE id IN ('evt_order_1_created', 'evt_order_2_updated') AND processed_at IS NOT NULL AND coalesce(note, '') <> ''`)
	c.Check(stale == 2, "the two older events are processed with a note saying why nothing changed (%d of 2)", stale)
	c.Check(c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE failed_at IS NOT NULL`) == 0, "no event failed")
	return nil
}
