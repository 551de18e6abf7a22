//go:build drills

package drill

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// postMany posts subscription updates from..to-1 of prefix with 16 clients
// and fails unless every one is accepted.
func postMany(ctx context.Context, c *Case, prefix string, from, to int, created time.Time) error {
	var next atomic.Int64
	next.Store(int64(from))
	var bad atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to || ctx.Err() != nil {
					return
				}
				_, body := subscriptionUpdate(prefix, i, created)
				if a := c.Post(ctx, body); a.Status != http.StatusOK {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		return fmt.Errorf("%d of %d events were not accepted", n, to-from)
	}
	return ctx.Err()
}

// Drill 4: PostgreSQL restarted while the worker applies a backlog: tasks
// fail, retry and succeed, and no event is marked processed without its
// effect.
func drillPostgres(ctx context.Context, c *Case) error {
	const prefix = "pg"
	const n = 3000
	if err := c.SeedAccounts(ctx, prefix, n); err != nil {
		return err
	}
	if _, err := c.Start(ctx, "web", "web", nil); err != nil {
		return err
	}
	created := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := postMany(ctx, c, prefix, 0, n, created); err != nil {
		return err
	}
	if _, err := c.Start(ctx, "worker", "worker", nil); err != nil {
		return err
	}
	done := func() int64 { return c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE processed_at IS NOT NULL`) }
	if !c.Until(ctx, time.Minute, func() bool { return done() >= n/10 }) {
		return fmt.Errorf("worker did not start applying the backlog")
	}
	before := done()
	if err := c.W.PG.Restart(ctx); err != nil {
		return err
	}
	c.Injected("PostgreSQL restarted (pg_ctl restart -m fast: connections cut, open transactions rolled back) with %d of %d events applied", before, n)
	c.Check(before < n, "the restart hit the worker mid-backlog (%d of %d applied before it)", before, n)

	finished := c.Until(ctx, 3*time.Minute, func() bool { return done() == n })
	c.Check(finished, "every event processed after the restart (%d of %d)", done(), n)
	c.Check(applied(ctx, c, prefix) == n, "every account shows its event's effect (%d of %d)", applied(ctx, c, prefix), n)
	const orphan = `
SELECT count(*) FROM stripe_events e
JOIN accounts a ON a.stripe_customer_id = e.payload -> 'data' -> 'object' ->> 'customer'
WHERE e.processed_at IS NOT NULL AND a.stripe_subscription_id IS DISTINCT FROM e.payload -> 'data' -> 'object' ->> 'id'`
	c.Check(c.Int(ctx, orphan) == 0, "no event marked processed without its effect")
	c.Check(c.Int(ctx, `SELECT count(*) FROM stripe_events WHERE failed_at IS NOT NULL`) == 0, "no event failed")
	logged := strings.Count(c.Proc("worker").LogTail(100000), `"task failed"`)
	c.Verified("the worker logged %d failed attempts during the restart and retried them", logged)
	return nil
}
