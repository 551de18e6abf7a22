//go:build drills

package drill

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cleantrack/jobs/internal/bench"
	"github.com/cleantrack/jobs/internal/resendtest"
	"github.com/cleantrack/jobs/internal/stripetest"
)

// Drill 5: the worker SIGKILLed while a billing task waits inside its
// transaction and while an email request is in flight at Resend: after
// recovery (Asynq's lease expiry), the billing effect happened once and the
// email was requested with one idempotency key.
func drillKill(ctx context.Context, c *Case) error {
	fake := resendtest.NewServer()
	defer fake.Close()
	if _, err := c.SeedAccount(ctx, "kill", "cus_kill"); err != nil {
		return err
	}
	if err := startSystem(ctx, c, fake); err != nil {
		return err
	}

	// Hold the account row so the billing task blocks mid-transaction.
	tx, err := c.SQL.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT id FROM accounts WHERE slug = 'kill' FOR UPDATE`); err != nil {
		return err
	}
	created := time.Now().Add(-time.Minute).Truncate(time.Second)
	body := stripetest.MustBuildEvent(stripetest.EventOptions{
		Type: "invoice.payment_failed", ID: "evt_kill_failed", Created: created, Shape: stripetest.Shape2025,
		InvoiceID: "in_kill", CustomerID: "cus_kill", SubscriptionID: "sub_kill", Amount: 4900, Currency: "usd",
		AttemptCount: 1, NextAttempt: created.Add(72 * time.Hour),
	})
	if a := c.Post(ctx, body); a.Status != http.StatusOK {
		return fmt.Errorf("post invoice.payment_failed: %d %s %v", a.Status, a.Body, a.Err)
	}
	const waiting = `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`
	if !c.Until(ctx, 30*time.Second, func() bool { return c.Int(ctx, waiting) >= 1 }) {
		return fmt.Errorf("the billing task never reached the locked account row")
	}

	// And one email whose request Resend holds.
	fake.SetDelay(time.Minute)
	if err := bench.EnqueueWelcomeEmails(ctx, c.W.Redis.URL(), "drill5/welcome", 1); err != nil {
		return err
	}
	if !c.Until(ctx, 30*time.Second, func() bool { return fake.InFlight() >= 1 }) {
		return fmt.Errorf("the email request never reached Resend")
	}

	c.Kill("worker")
	c.Injected("worker SIGKILLed while invoice.payment_failed waited on the account row inside its transaction and while an email request was in flight at Resend")
	if err := tx.Rollback(); err != nil {
		return err
	}
	fake.SetDelay(0)
	c.Check(c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE id = 'evt_kill_failed' AND processed_at IS NULL`) == 1, "after the kill the event is not marked processed")
	c.Check(c.Str(ctx, `SELECT status FROM accounts WHERE slug = 'kill'`) == "trialing", "after the kill the account is unchanged (the transaction rolled back)")

	if _, err := c.Start(ctx, "worker", "worker", bench.ResendEnv(fake.URL(), 1000)); err != nil {
		return err
	}
	c.Injected("worker restarted; Asynq recovers the two leased tasks once their 30 s lease expires")
	paymentKeys := func() []string {
		var ks []string
		for _, e := range fake.Delivered() {
			if strings.Contains(e.Key, "payment_failed") {
				ks = append(ks, e.Key)
			}
		}
		return ks
	}
	recovered := c.Until(ctx, 3*time.Minute, func() bool {
		return processed(ctx, c, "evt_kill_failed") && len(paymentKeys()) >= 1 && fake.DeliveredCount() >= 2
	})
	c.Check(recovered, "both tasks ran again and finished")
	time.Sleep(3 * time.Second) // room for a wrong second effect to show

	got := c.Str(ctx, `SELECT status FROM accounts WHERE slug = 'kill'`)
	c.Check(got == "past_due", "account is past_due (got %q)", got)
	c.Check(c.Int(ctx, `SELECT count(*) FROM invoice_payment_failures WHERE invoice_id = 'in_kill'`) == 1, "one recorded payment failure for in_kill attempt 1")
	keys := fake.Keys()
	c.Check(keys["drill5/welcome/0"] >= 2 && len(keys) == 1+len(paymentKeys()), "the interrupted email was requested %d times, always with idempotency key drill5/welcome/0 (keys seen: %v)", keys["drill5/welcome/0"], keys)
	c.Check(c.Str(ctx, `SELECT string_agg(status, ',') FROM email_deliveries WHERE idempotency_key = 'drill5/welcome/0'`) == "sent", "one delivery row for it, sent")
	pk := paymentKeys()
	c.Check(len(pk) == 1, "one payment-failed email to the owner, once: %v", pk)
	return nil
}
