//go:build drills

package drill

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/stripetest"
)

// maxWorkerCPU is the share of one core the worker may use while Redis is
// unreachable; an Asynq fetch loop that spins uses most of one.
const maxWorkerCPU = 10.0

// subscriptionUpdate is the event drills use to change account i of prefix.
func subscriptionUpdate(prefix string, i int, created time.Time) (id string, body []byte) {
	s := strconv.Itoa(i)
	id = "evt_" + prefix + "_" + s
	return id, stripetest.MustBuildEvent(stripetest.EventOptions{
		Type: "customer.subscription.updated", ID: id, Created: created, Shape: stripetest.Shapes[i%2],
		SubscriptionID: "sub_" + prefix + "_" + s, CustomerID: "cus_" + prefix + "_" + s, Status: "active",
		PriceID: "price_trial_monthly", PeriodEnd: created.AddDate(0, 1, 0),
	})
}

// applied counts the accounts of prefix whose subscription event took effect.
func applied(ctx context.Context, c *Case, prefix string) int64 {
	const q = `SELECT count(*) FROM accounts WHERE status = 'active' AND stripe_subscription_id = 'sub_' || $1 || '_' || substr(stripe_customer_id, length($1) + 6)`
	return c.Int(ctx, q, prefix)
}

// Drill 3: Redis killed (it has no persistence, so its queue is gone) with
// accepted events not yet processed, then flushed the same way: webhooks
// answer 503 while it is down, the worker does not spin, and the inbox sweep
// applies every accepted event once it is back.
func drillRedis(ctx context.Context, c *Case) error {
	const prefix = "rd"
	const total = 35
	if err := c.SeedAccounts(ctx, prefix, total); err != nil {
		return err
	}
	if _, err := c.Start(ctx, "web", "web", nil); err != nil {
		return err
	}
	if _, err := c.Start(ctx, "scheduler", "scheduler", map[string]string{"INBOX_REDRIVE_CRON": "* * * * *"}); err != nil {
		return err
	}
	created := time.Now().Add(-time.Hour).Truncate(time.Second)
	var accepted []string
	post := func(from, to int, want int) error {
		for i := from; i < to; i++ {
			id, body := subscriptionUpdate(prefix, i, created)
			a := c.Post(ctx, body)
			if a.Err != nil {
				return a.Err
			}
			if a.Status == http.StatusOK {
				accepted = append(accepted, id)
			}
			if a.Status != want {
				c.Check(false, "%s answered %d %s, want %d", id, a.Status, a.Body, want)
			}
		}
		return nil
	}

	// Accepted, queued, and then lost with Redis, before any worker ran.
	if err := post(0, 10, http.StatusOK); err != nil {
		return err
	}
	c.W.Redis.Kill()
	c.Injected("10 events accepted with no worker running, then Redis killed (no persistence: the queued tasks are gone)")
	if err := post(10, 15, http.StatusServiceUnavailable); err != nil {
		return err
	}
	c.Verified("5 webhooks while Redis was down answered 503 (Stripe retries those)")

	worker, err := c.Start(ctx, "worker", "worker", nil)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	cpu, err := proctest.CPUPercentOver(ctx, worker.Pid(), 10*time.Second)
	if err != nil {
		return err
	}
	c.Injected("worker started while Redis refuses connections")
	c.Check(cpu < maxWorkerCPU, "worker CPU while Redis refuses connections: %.1f%% of a core over 10 s (limit %.0f%%)", cpu, maxWorkerCPU)

	// Redis back, but answering every command with an error.
	if err := c.W.Redis.Start("--requirepass", "drill-password"); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	cpu, err = proctest.CPUPercentOver(ctx, worker.Pid(), 10*time.Second)
	if err != nil {
		return err
	}
	c.Injected("Redis up but answering NOAUTH to every command (a password change the worker does not know)")
	c.Check(cpu < maxWorkerCPU, "worker CPU while Redis answers errors: %.1f%% of a core over 10 s (limit %.0f%%)", cpu, maxWorkerCPU)
	c.W.Redis.Kill()
	if err := c.W.Redis.Start(); err != nil {
		return err
	}
	c.Injected("Redis restarted, empty")
	if !c.Until(ctx, 20*time.Second, func() bool {
		_, body := subscriptionUpdate(prefix, 15, created)
		return c.Post(ctx, body).Status == http.StatusOK
	}) {
		return fmt.Errorf("web did not accept webhooks again after Redis came back")
	}
	accepted = append(accepted, "evt_"+prefix+"_15")
	if err := post(16, 25, http.StatusOK); err != nil {
		return err
	}

	// Accepted, queued, then flushed.
	c.Stop("worker")
	if err := post(25, total, http.StatusOK); err != nil {
		return err
	}
	rc := redis.NewClient(&redis.Options{Addr: c.W.Redis.Addr()})
	err = rc.FlushAll(ctx).Err()
	rc.Close()
	if err != nil {
		return err
	}
	c.Injected("10 more events accepted with the worker stopped, then FLUSHALL")
	if _, err := c.Start(ctx, "worker", "worker", nil); err != nil {
		return err
	}

	pending := func() int64 {
		return c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE id = ANY($1) AND processed_at IS NULL`, pqArray(accepted))
	}
	done := c.Until(ctx, 4*time.Minute, func() bool { return pending() == 0 })
	c.Check(done, "every accepted event (%d) processed after Redis came back, through the inbox sweep (%d still pending)", len(accepted), pending())
	var want int64
	for _, id := range accepted {
		var i int
		fmt.Sscanf(id, "evt_"+prefix+"_%d", &i)
		want += c.Int(ctx, `SELECT count(*) FROM accounts WHERE stripe_customer_id = $1 AND status = 'active' AND stripe_subscription_id = $2`,
			"cus_"+prefix+"_"+strconv.Itoa(i), "sub_"+prefix+"_"+strconv.Itoa(i))
	}
	c.Check(want == int64(len(accepted)), "every accepted event took effect on its account (%d of %d)", want, len(accepted))
	c.Check(c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE failed_at IS NOT NULL`) == 0, "no event failed")
	recorded503 := c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE id = ANY($1)`, pqArray([]string{"evt_rd_10", "evt_rd_11", "evt_rd_12", "evt_rd_13", "evt_rd_14"}))
	c.Verified("%d of the 5 events answered 503 had been recorded anyway (the sweep applies those; Stripe's retry finds them as duplicates)", recorded503)
	return nil
}
